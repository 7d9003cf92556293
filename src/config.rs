//! Layered configuration: built-in defaults < `foodcheck.toml` < `FOODCHECK_*` environment <
//! command-line flags. Secrets are wrapped in [`Secret`] so they never reach logs or Debug output.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

/// A value that must never be printed (database URLs with passwords, signing keys).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: String,
    /// Directory for the SQLite database, the generated signing key and (later) files.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; default: `sqlite://<data_dir>/foodcheck.db`.
    pub database_url: Option<Secret>,
    /// Maximum database connections in the pool.
    pub db_max_connections: u32,
    /// HS256 signing secret for access tokens (at least 32 bytes). When unset, a random key is
    /// generated once and kept in `<data_dir>/jwt-signing.key`. Several API instances must share
    /// one key: set it here or point them at one data directory.
    pub jwt_secret: Option<Secret>,
    /// Access token lifetime, seconds.
    pub access_token_ttl_secs: u64,
    /// Refresh token lifetime, days.
    pub refresh_token_ttl_days: u64,
    /// A refresh token presented again this many seconds after its rotation, by the same
    /// device and before its successor was used, gets the successor again (the first answer
    /// was lost) instead of revoking the session. 0 turns this off.
    pub refresh_retry_grace_secs: u64,
    /// Failed logins allowed per username within `login_window_secs` before 429.
    pub login_max_failures_per_user: u32,
    /// Failed logins allowed per client address within `login_window_secs` before 429.
    pub login_max_failures_per_ip: u32,
    /// Window of the login throttle, seconds.
    pub login_window_secs: u64,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted reverse proxy).
    pub trust_forwarded_for: bool,
    /// Maximum JSON request body, bytes.
    pub max_json_body_bytes: usize,
    /// Memory for rendered public list pages in this instance, MiB (0 = no page cache).
    pub public_page_cache_mb: usize,
    /// Maximum bulk-import body (CSV/XLSX), bytes.
    pub max_import_body_bytes: usize,
    /// Maximum body of a sync push (`POST /api/v1/sync`), bytes: sized for a week offline.
    pub max_sync_body_bytes: usize,
    /// Maximum records (created, updated and deleted, all tables) in one sync push.
    pub max_sync_records: usize,
    /// Where photo files are stored: unset = the data directory; `s3://bucket/prefix` =
    /// S3-compatible object storage (credentials and endpoint from the `AWS_*` environment).
    pub storage_url: Option<String>,
    /// Run background jobs (photo processing) in this process. Several instances may all run
    /// them (jobs are claimed safely); set false for API-only instances.
    pub run_workers: bool,
    /// Photos farther than this from the establishment (metres) are flagged for reviewers.
    pub geofence_radius_m: f64,
    /// Largest photo or evidence file accepted by the upload endpoint, bytes.
    pub max_photo_bytes: usize,
    /// Declared bytes one user's unfinished uploads may reserve at once (their parts are stored in the database).
    pub max_open_upload_bytes_per_user: u64,
    /// Deleted records' tombstones are kept this many days; a device whose cursor is older
    /// gets a full replacement on its next pull.
    pub tombstone_retention_days: u64,
    /// A client must send a request's whole header block within this many seconds, or the
    /// connection is closed (slow clients must not hold connections open).
    pub header_read_timeout_secs: u64,
    /// A request's whole body must arrive within this many seconds of its headers, or the answer
    /// is 408 `request_timeout` and the connection is closed. Generous for 25 MB photos over a
    /// weak uplink; a tus client resumes a cut PATCH from the offset it reached.
    pub body_read_timeout_secs: u64,
    /// The bureau's time zone: every calendar date (due dates, overdue counts) is a day there,
    /// whatever the host's zone. `Asia/Shanghai` (default), `UTC` or a fixed offset `+08:00`.
    pub time_zone: crate::clock::BureauZone,
    /// Names the audit log in its signed checkpoints (their first line) and names the
    /// checkpoint signing key. One word, no spaces or `+`, e.g. `scjg.example.gov.cn/audit`.
    pub audit_origin: String,
    /// The Ed25519 checkpoint signing key (a 32-byte seed in hex). When unset, one is generated
    /// once into `<data_dir>/audit-checkpoint-ed25519.key` (mode 0600). A configured file must
    /// exist: a missing one is an error, never silently replaced.
    pub audit_signing_key_file: Option<PathBuf>,
    /// Pending audit entries are integrated (sequenced, chained, added to the Merkle tree)
    /// every this many milliseconds by a background task; 0 = not in this process.
    pub audit_integrate_interval_ms: u64,
    /// A new signed checkpoint is made at most this often, and only when the log grew.
    pub audit_checkpoint_interval_secs: u64,
    /// Default 整改期限 of a 书面限期整改 order, in working days on the bureau's calendar (a
    /// reviewer may give another period with the approval).
    pub rectification_period_working_days: u32,
    /// A recheck task (复查) is due this many working days after it is created.
    pub recheck_due_working_days: u32,
    /// Follow-ups whose deadline has come get their recheck task from a background sweep this
    /// often, seconds; 0 = not in this process (another instance, or the CLI's
    /// `followup create-due-rechecks` from cron, must).
    pub recheck_sweep_interval_secs: u64,
    /// The public site's base URL (scheme and host, optional path, no trailing slash needed):
    /// the printed result record's QR code points to `{public_base_url}/public/establishments/{id}`.
    pub public_base_url: String,
    /// Prefix of the 抽样单编号 the server generates when a sample comes without a national
    /// number: `{prefix}-{YYYYMMDD}-{seq}` (1–12 upper-case letters or digits, from a letter).
    pub sample_no_prefix: String,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// tracing filter, e.g. `info,foodcheck=debug`.
    pub log_level: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            db_max_connections: 16,
            jwt_secret: None,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_days: 30,
            refresh_retry_grace_secs: 60,
            login_max_failures_per_user: 5,
            login_max_failures_per_ip: 30,
            login_window_secs: 15 * 60,
            trust_forwarded_for: false,
            max_json_body_bytes: 2 * 1024 * 1024,
            public_page_cache_mb: 32,
            max_import_body_bytes: 20 * 1024 * 1024,
            max_sync_body_bytes: crate::sync::push::DEFAULT_MAX_BODY_BYTES,
            max_sync_records: crate::sync::push::DEFAULT_MAX_RECORDS,
            max_photo_bytes: 25 * 1024 * 1024,
            max_open_upload_bytes_per_user: 256 * 1024 * 1024,
            geofence_radius_m: 300.0,
            run_workers: true,
            storage_url: None,
            tombstone_retention_days: 90,
            header_read_timeout_secs: 30,
            body_read_timeout_secs: 300,
            time_zone: crate::clock::BureauZone::default(),
            audit_origin: "foodcheck/audit".into(),
            audit_signing_key_file: None,
            audit_integrate_interval_ms: 1000,
            audit_checkpoint_interval_secs: 60,
            rectification_period_working_days: 10,
            recheck_due_working_days: 5,
            recheck_sweep_interval_secs: 300,
            public_base_url: "http://127.0.0.1:8080".into(),
            sample_no_prefix: "FC".into(),
            log_format: LogFormat::Text,
            log_level: "info".into(),
        }
    }
}

impl Config {
    /// Loads defaults, then `config_file` (default `./foodcheck.toml`, optional), then the
    /// `FOODCHECK_*` environment.
    pub fn load(config_file: Option<&Path>) -> anyhow::Result<Config> {
        let file = config_file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("FOODCHECK_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("foodcheck.toml"));
        if config_file.is_some() && !file.exists() {
            anyhow::bail!("configuration file {} does not exist", file.display());
        }
        let figment = Figment::new()
            .merge(Toml::file(&file))
            // Only our own keys: FOODCHECK_TEST_* and FOODCHECK_CONFIG are not settings.
            .merge(
                Env::prefixed("FOODCHECK_")
                    .ignore(&["config"])
                    .filter(|k| !k.as_str().starts_with("test_")),
            );
        let config: Config = figment.extract()?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.listen
            .parse::<SocketAddr>()
            .map_err(|e| anyhow::anyhow!("listen address {:?}: {e}", self.listen))?;
        if let Some(s) = &self.jwt_secret {
            if s.expose().len() < 32 {
                anyhow::bail!("jwt_secret must be at least 32 bytes");
            }
        }
        if self.access_token_ttl_secs == 0 || self.refresh_token_ttl_days == 0 {
            anyhow::bail!("token lifetimes must be positive");
        }
        if self.header_read_timeout_secs == 0 || self.body_read_timeout_secs == 0 {
            anyhow::bail!("header_read_timeout_secs and body_read_timeout_secs must be positive");
        }
        if !(1..=crate::followup::MAX_PERIOD_WORKING_DAYS)
            .contains(&self.rectification_period_working_days)
            || !(1..=crate::followup::MAX_PERIOD_WORKING_DAYS)
                .contains(&self.recheck_due_working_days)
        {
            anyhow::bail!(
                "rectification_period_working_days and recheck_due_working_days must be 1 to {}",
                crate::followup::MAX_PERIOD_WORKING_DAYS
            );
        }
        let base = self.public_base_url.as_str();
        if !(base.starts_with("https://") || base.starts_with("http://"))
            || base.len() > 200
            || base
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "\"'<>".contains(c))
        {
            anyhow::bail!(
                "public_base_url must be an http:// or https:// URL of at most 200 characters, \
                 without spaces or quotes"
            );
        }
        crate::sampling::number::Prefix::parse(&self.sample_no_prefix)
            .map_err(|e| anyhow::anyhow!("sample_no_prefix: {e}"))?;
        if self.audit_checkpoint_interval_secs == 0 {
            anyhow::bail!("audit_checkpoint_interval_secs must be positive");
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.expose().to_string(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("foodcheck.db").display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = Config {
            database_url: Some(Secret::new("postgres://u:hunter2@db/x")),
            jwt_secret: Some(Secret::new("0123456789abcdef0123456789abcdef")),
            ..Config::default()
        };
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"));
        assert!(!s.contains("0123456789abcdef"));
    }

    /// Removes every `FOODCHECK_*` variable of the caller's environment for the life of the
    /// jail (the jail restores them on drop), so a user who exported settings from the README's
    /// table still gets a green `cargo test`. Only our own prefix: other tests of this process
    /// may read `TMPDIR`, `TZ` and friends concurrently.
    fn without_foodcheck_env(jail: &mut figment::Jail) {
        let ours: Vec<_> = std::env::vars_os()
            .map(|(k, _)| k)
            .filter(|k| k.to_string_lossy().starts_with("FOODCHECK_"))
            .collect();
        for key in ours {
            // set_env records the caller's value for the jail to restore; then it goes away.
            jail.set_env(key.to_string_lossy(), "");
            std::env::remove_var(&key);
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Error is large; it is a test.
    fn caller_environment_does_not_reach_config_tests() {
        figment::Jail::expect_with(|jail| {
            // What a user following the configuration table may have exported.
            jail.set_env("FOODCHECK_LISTEN", "127.0.0.1:18999");
            jail.set_env("FOODCHECK_LOG_LEVEL", "trace");
            jail.set_env("FOODCHECK_DATA_DIR", "/nonexistent");
            jail.set_env("FOODCHECK_CONFIG", "/nonexistent/foodcheck.toml");
            without_foodcheck_env(jail);
            assert!(
                std::env::vars_os().all(|(k, _)| !k.to_string_lossy().starts_with("FOODCHECK_"))
            );
            let c = Config::load(None).map_err(|e| e.to_string())?;
            let d = Config::default();
            assert_eq!(c.listen, d.listen);
            assert_eq!(c.log_level, d.log_level);
            assert_eq!(c.data_dir, d.data_dir);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Error is large; it is a test.
    fn layering_file_then_env() {
        figment::Jail::expect_with(|jail| {
            without_foodcheck_env(jail);
            jail.create_file(
                "foodcheck.toml",
                "listen = \"127.0.0.1:9000\"\nlog_level = \"debug\"",
            )?;
            jail.set_env("FOODCHECK_LOG_LEVEL", "warn");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.listen, "127.0.0.1:9000");
            assert_eq!(c.log_level, "warn");
            assert_eq!(c.access_token_ttl_secs, 900);
            Ok(())
        });
    }

    #[test]
    fn short_jwt_secret_is_refused() {
        let c = Config {
            jwt_secret: Some(Secret::new("short")),
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }
}
