//! Hostile input and hostile environments (issue 9, items 18–21, 23, 24): the caller's
//! environment, zip bombs, formula cells, slow clients, published redraw reasons, the bureau's
//! time zone.

use foodcheck::auth::Role;
use foodcheck::config::Config;

use crate::common::{assert_error, TestApp};

#[path = "../support/xlsx_bomb.rs"]
mod xlsx_bomb;

both_backends!(
    test_servers_take_nothing_from_the_caller_environment,
    xlsx_zip_bomb_is_refused_as_too_large,
);

/// Under `FOODCHECK_LISTEN=… FOODCHECK_LOG_LEVEL=… cargo test` (CI runs it so) the harness's
/// server still has exactly the harness settings and the defaults.
async fn test_servers_take_nothing_from_the_caller_environment(app: TestApp) {
    let c = &app.state.config;
    assert_eq!(c.listen, "127.0.0.1:0");
    assert_eq!(c.log_level, "warn");
    assert_eq!(c.data_dir, app.dir.path());
    let d = Config::default();
    // Everything the harness does not set is the built-in default.
    let rest = |c: &Config| Config {
        listen: String::new(),
        log_level: String::new(),
        data_dir: Default::default(),
        database_url: None,
        db_max_connections: 0,
        ..c.clone()
    };
    assert_eq!(format!("{:?}", rest(c)), format!("{:?}", rest(&d)));
}

/// A 1 MiB XLSX whose sheet unpacks to a GiB: 413, nothing written (the memory side is
/// measured in tests/xlsx_bomb.rs).
async fn xlsx_zip_bomb_is_refused_as_too_large(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let bomb = xlsx_bomb::huge_cell_text(xlsx_bomb::GIB);
    assert!(bomb.len() < app.state.config.max_import_body_bytes);
    for dry_run in [true, false] {
        let res = app
            .client
            .post(app.url(&format!("/api/v1/establishments/import?dry_run={dry_run}")))
            .bearer_auth(&admin)
            .header("content-type", "application/octet-stream")
            .body(bomb.clone())
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap();
        assert_error(status, &body, 413, "payload_too_large");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unpacked"),
            "{body}"
        );
    }
    let (_, list) = app.get("/api/v1/establishments", &admin).await;
    assert_eq!(list["total_count"], 0, "{list}");
}

/// Slow clients (item 20): headers or a body trickling in at 2 bytes/s are cut off once the
/// configured timeouts (1 s here) pass, long before they are complete. The bound asserted is
/// generous (20 s, against ≥ 50 s that the trickle would take); it is a behaviour test.
mod slow {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::common::{Kind, TestApp};

    both_backends!(@spawn spawn; trickled_headers_are_cut_off, trickled_body_gets_408);

    async fn spawn(kind: Kind) -> TestApp {
        TestApp::spawn_with(kind, |c| {
            c.header_read_timeout_secs = 1;
            c.body_read_timeout_secs = 1;
        })
        .await
    }

    /// Sends `head` at once, then `slow` a byte every 500 ms, reading meanwhile. Returns what
    /// the server sent and whether it closed the connection within 20 s.
    async fn trickle(app: &TestApp, head: String, slow: Vec<u8>) -> (String, bool) {
        let addr = app.base.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (mut rd, mut wr) = stream.into_split();
        let writer = tokio::spawn(async move {
            wr.write_all(head.as_bytes()).await?;
            for b in slow {
                tokio::time::sleep(Duration::from_millis(500)).await;
                wr.write_all(&[b]).await?;
            }
            Ok::<_, std::io::Error>(wr)
        });
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(20), rd.read_to_end(&mut buf))
            .await
            .is_ok();
        writer.abort();
        (String::from_utf8_lossy(&buf).into_owned(), closed)
    }

    async fn trickled_headers_are_cut_off(app: TestApp) {
        let head = "GET /healthz HTTP/1.1\r\nHost: x\r\n".to_string();
        let slow = format!("X-Slow: {}\r\n\r\n", "a".repeat(100)).into_bytes();
        let (text, closed) = trickle(&app, head, slow).await;
        assert!(closed, "the connection is still open; got {text:?}");
        // hyper closes without an answer, or with 408; never a 200 for the unfinished request.
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
        // The server still serves others.
        let (s, _) = app.call(reqwest::Method::GET, "/healthz", None, None).await;
        assert_eq!(s, reqwest::StatusCode::OK);
    }

    async fn trickled_body_gets_408(app: TestApp) {
        let body = format!(
            r#"{{"username":"{}","password":"x","device_id":"d"}}"#,
            "a".repeat(100)
        );
        let head = format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let (text, closed) = trickle(&app, head, body.into_bytes()).await;
        assert!(closed, "the connection is still open; got {text:?}");
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("request_timeout"), "{text}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
    }
}
