//! The real binary: `serve` creates its database and key on first start, answers /readyz, and
//! shuts down gracefully on SIGTERM; `user add/list/disable` read the same configuration.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The binary in `dir` with none of the caller's settings: every `FOODCHECK_*` variable (a user
/// may have exported any key of the README's table, or `FOODCHECK_CONFIG`) and `RUST_LOG` are
/// removed; a test sets what it means to test.
fn foodcheck(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_foodcheck"));
    c.current_dir(dir).env_remove("RUST_LOG");
    for key in foodcheck_vars() {
        c.env_remove(key);
    }
    c
}

fn foodcheck_vars() -> Vec<std::ffi::OsString> {
    std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| k.to_string_lossy().starts_with("FOODCHECK_"))
        .collect()
}

/// Run with `FOODCHECK_LISTEN=… FOODCHECK_CONFIG=… cargo test` (as CI does) this checks that
/// every ambient setting is taken away from the child.
#[test]
fn the_binary_inherits_no_foodcheck_setting() {
    let dir = tempfile::tempdir().unwrap();
    let c = foodcheck(dir.path());
    let removed: Vec<_> = c
        .get_envs()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.to_os_string())
        .collect();
    for key in foodcheck_vars() {
        assert!(removed.contains(&key), "{key:?} would reach the binary");
    }
}

#[test]
fn serve_creates_database_and_key_then_shuts_down_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = foodcheck(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("FOODCHECK_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut addr = None;
    while addr.is_none() && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("log line is not JSON: {line}"));
        assert!(!line.contains("Secret(") || line.contains("[redacted]"));
        if v["fields"]["message"] == "listening" {
            addr = v["fields"]["addr"].as_str().map(String::from);
        }
    }
    let addr = addr.expect("server did not report its address");
    assert!(dir.path().join("data/foodcheck.db").exists());
    assert!(dir.path().join("data/jwt-signing.key").exists());

    let body = http_get(&addr, "/readyz");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"sqlite\""));

    // SIGTERM: graceful shutdown, exit code 0.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = wait_timeout(&mut child, Duration::from_secs(20))
        .expect("server did not exit after SIGTERM");
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn user_commands_share_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("elsewhere");
    std::fs::write(
        dir.path().join("foodcheck.toml"),
        format!("data_dir = {:?}\n", data.display().to_string()),
    )
    .unwrap();
    let mut add = foodcheck(dir.path())
        .args([
            "user",
            "add",
            "--username",
            "Li.Lei",
            "--role",
            "inspector",
            "--name",
            "李雷",
            "--badge-no",
            "12010099",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"a-long-password\n")
        .unwrap();
    let out = add.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        data.join("foodcheck.db").exists(),
        "the toml's data_dir was not used"
    );

    let list = foodcheck(dir.path())
        .args(["user", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(
        text.contains("li.lei") && text.contains("12010099") && text.contains("active"),
        "{text}"
    );

    // An inspector without a badge, a short password, a duplicate: refused with a message.
    let out = foodcheck(dir.path())
        .args([
            "user",
            "add",
            "--username",
            "nobadge",
            "--role",
            "inspector",
            "--name",
            "x",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("badge"));
    let mut dup = foodcheck(dir.path())
        .args([
            "user",
            "add",
            "--username",
            "li.lei",
            "--role",
            "admin",
            "--name",
            "dup",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    dup.stdin
        .take()
        .unwrap()
        .write_all(b"a-long-password\n")
        .unwrap();
    let out = dup.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    let out = foodcheck(dir.path())
        .args(["user", "disable", "--username", "li.lei"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list = foodcheck(dir.path())
        .args(["user", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8(list.stdout).unwrap().contains("disabled"));
    let out = foodcheck(dir.path())
        .args(["user", "disable", "--username", "nobody"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such user"));

    // The shell's writes are audited like the API's, as the system (no user, no request).
    let url = format!("sqlite://{}", data.join("foodcheck.db").display());
    let rows: Vec<(String, Option<String>, Option<String>, String)> =
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let db = foodcheck::store::Db::connect(&url, 2).await.unwrap();
            sqlx::query_as(
                "SELECT action, actor_id, request_id, changes FROM audit_events \
                 WHERE record_type = 'user' ORDER BY id",
            )
            .fetch_all(db.pool())
            .await
            .unwrap()
        });
    let actions: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(actions, ["user_created", "user_disabled"], "{rows:?}");
    assert!(
        rows.iter().all(|r| r.1.is_none() && r.2.is_none()),
        "{rows:?}"
    );
    assert!(rows[0].3.contains("\"li.lei\"") && !rows[0].3.contains("argon2"));
    assert!(rows[1].3.contains("\"disabled\""));
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn wait_timeout(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

#[test]
fn demo_data_and_import_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let out = foodcheck(dir.path())
        .args(["demo-data", "--establishments", "40"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for role in ["admin", "reviewer", "inspector", "lab"] {
        assert!(text.contains(role), "no {role} account printed: {text}");
    }
    // A second run refuses: the database is not empty.
    let again = foodcheck(dir.path()).args(["demo-data"]).output().unwrap();
    assert!(!again.status.success());

    let csv = dir.path().join("registry.csv");
    std::fs::write(
        &csv,
        "\u{feff}牌匾名称,营业执照名称,食品经营许可证编号,业态,经营地址,街道乡镇,风险等级\n\
         新店,新店餐饮有限公司,JY21201159999991,小吃店,宝坻区某路1号,周良街道,C\n",
    )
    .unwrap();
    let dry = foodcheck(dir.path())
        .args(["import", "establishments"])
        .arg(&csv)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert!(dry.status.success(), "{dry:?}");
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("1 created")
            && String::from_utf8_lossy(&dry.stdout).contains("dry run")
    );
    let real = foodcheck(dir.path())
        .args(["import", "establishments"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(real.status.success(), "{real:?}");
    // Importing the same file again updates the row (matched by licence number).
    let again = foodcheck(dir.path())
        .args(["import", "establishments"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("0 created, 1 updated"),
        "{again:?}"
    );
    // A bad row: listed with its row and column, exit code 1, nothing written.
    std::fs::write(&csv, "牌匾名称,营业执照名称,食品经营许可证编号,业态,经营地址,街道乡镇,风险等级\n坏店,坏店公司,JY1,小吃店,地址,周良街道,Z\n").unwrap();
    let bad = foodcheck(dir.path())
        .args(["import", "establishments"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("row 2") && err.contains("风险等级"), "{err}");
}
