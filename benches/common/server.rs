//! The release server as a child process of a benchmark: started on a free port with only the
//! settings given (the caller's `FOODCHECK_*` are removed), its CPU time and RSS read from
//! /proc, stopped with SIGTERM.

use std::path::Path;
use std::time::{Duration, Instant};

pub struct Server {
    child: tokio::process::Child,
    pub pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

pub fn status_kib(pid: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl Server {
    pub async fn start(url: &str, dir: &Path) -> anyhow::Result<Server> {
        Self::start_with(url, dir, &[]).await
    }

    /// With extra settings (`FOODCHECK_*` pairs).
    pub async fn start_with(url: &str, dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(dir.join("server.log"))?;
        // FOODCHECK_BENCH_SERVER_BIN runs another build (e.g. the one before a change, kept
        // with its own benchmark binary, for a before/after in one sitting).
        let bin = std::env::var("FOODCHECK_BENCH_SERVER_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_foodcheck").to_string());
        let mut cmd = tokio::process::Command::new(bin);
        for (k, _) in std::env::vars() {
            if k.starts_with("FOODCHECK_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("serve")
            .env("FOODCHECK_LISTEN", format!("127.0.0.1:{port}"))
            .env("FOODCHECK_DATA_DIR", dir.join("data"))
            .env("FOODCHECK_DATABASE_URL", url)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let pid = child.id().ok_or_else(|| anyhow::anyhow!("no pid"))?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if let Some(status) = child.try_wait()? {
                anyhow::bail!(
                    "the server exited ({status}): {}",
                    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
                );
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "the server did not answer"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Server { child, pid, base })
    }

    /// Resets the server's peak-RSS mark; returns its RSS now (KiB).
    pub fn reset_peak(&self) -> u64 {
        let pid = self.pid.to_string();
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the server's VmHWM");
        status_kib(&pid, "VmRSS:")
    }

    /// The server's CPU time so far (user + system), in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // The fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    }

    pub fn peak(&self) -> u64 {
        status_kib(&self.pid.to_string(), "VmHWM:")
    }

    pub async fn stop(mut self) {
        // SIGTERM: the server finishes in-flight requests and closes its pool.
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Clock ticks per second (for [`Server::cpu_ticks`]).
pub fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
