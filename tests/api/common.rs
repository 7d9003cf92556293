//! The test harness: the real server on port 0 over a fresh database (a new SQLite file, or a
//! new PostgreSQL database), driven over HTTP.

use std::sync::atomic::{AtomicU32, Ordering};

use foodcheck::auth::{password, Role};
use foodcheck::config::{Config, Secret};
use foodcheck::http::AppState;
use foodcheck::store::{Backend, Db};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Runs each listed async test fn (taking a `TestApp`) on both backends.
/// Runs each listed async test fn (taking a `TestApp`) on both backends. With `@spawn f;` the
/// app comes from the sibling `async fn f(Kind) -> TestApp` (for tests needing other settings).
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $crate::both_backends!(@inner $crate::common::TestApp::spawn; $($name),*);
    };
    (@spawn $spawn:ident; $($name:ident),* $(,)?) => {
        $crate::both_backends!(@inner super::$spawn; $($name),*);
    };
    (@inner $spawn:path; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($spawn($crate::common::Kind::Sqlite).await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(foodcheck_pg_tests), ignore = "set FOODCHECK_TEST_POSTGRES_URL to run on PostgreSQL")]
                async fn $name() {
                    super::$name($spawn($crate::common::Kind::Postgres).await).await
                }
            )*
        }
    };
}

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Creates a fresh PostgreSQL database and returns its URL.
async fn fresh_postgres_database() -> String {
    let base = std::env::var("FOODCHECK_TEST_POSTGRES_URL")
        .expect("FOODCHECK_TEST_POSTGRES_URL must be set for PostgreSQL tests");
    sqlx::any::install_default_drivers();
    let name = format!(
        "fc_t_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .get(..8)
            .unwrap_or("x")
    );
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&base)
        .await
        .expect("connect to FOODCHECK_TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (prefix, query) = match base.split_once('?') {
        Some((p, q)) => (p.to_string(), format!("?{q}")),
        None => (base.clone(), String::new()),
    };
    let server = prefix
        .rsplit_once('/')
        .map(|(s, _)| s.to_string())
        .unwrap_or(prefix);
    format!("{server}/{name}{query}")
}

impl TestApp {
    pub async fn spawn(kind: Kind) -> TestApp {
        Self::spawn_with(kind, |_| {}).await
    }

    pub async fn spawn_with(kind: Kind, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = match kind {
            Kind::Sqlite => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("foodcheck.db").display()
            ),
            Kind::Postgres => fresh_postgres_database().await,
        };
        // Built from the defaults, never `Config::load`: the caller's `FOODCHECK_*` variables
        // (only FOODCHECK_TEST_POSTGRES_URL is read, above) never reach a test server.
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_path_buf(),
            database_url: Some(Secret::new(database_url)),
            db_max_connections: 8,
            log_level: "warn".into(),
            ..Config::default()
        };
        tweak(&mut config);
        Self::start(config, dir).await
    }

    /// Stops the server and starts a new one over the same database and data directory.
    pub async fn restart(mut self) -> TestApp {
        let config = (*self.state.config).clone();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.state.db.close().await;
        drop(self);
        Self::start(config, dir).await
    }

    /// Another API instance over the same database and data directory (keys, photos), as
    /// several stateless instances serve one PostgreSQL database in production. It stops when
    /// dropped; `self` stays up.
    pub async fn second_instance(&self) -> TestApp {
        let config = (*self.state.config).clone();
        Self::start(config, tempfile::tempdir().expect("tempdir")).await
    }

    /// Another API instance over the same database with a data directory of its own: the same
    /// secrets (the signing keys are copied), nothing else on disk shared, as instances on
    /// other machines (with local storage its files are its own too). It stops when dropped.
    pub async fn instance_with_own_disk(&self) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        for key in ["jwt-signing.key", "audit-checkpoint-ed25519.key"] {
            let from = self.state.config.data_dir.join(key);
            if from.exists() {
                std::fs::copy(&from, dir.path().join(key)).expect("copy key");
            }
        }
        let mut config = (*self.state.config).clone();
        config.data_dir = dir.path().to_path_buf();
        Self::start(config, dir).await
    }

    async fn start(config: Config, dir: tempfile::TempDir) -> TestApp {
        let state = foodcheck::app::state(config).await.expect("app state");
        let server = foodcheck::app::Server::bind(state.clone())
            .await
            .expect("bind");
        let addr = server.addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = server
                .run(async {
                    let _ = rx.await;
                })
                .await;
        });
        TestApp {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            state,
            dir,
            shutdown: Some(tx),
        }
    }

    pub fn db(&self) -> &Db {
        &self.state.db
    }

    pub fn backend(&self) -> Backend {
        self.state.db.backend()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Creates a user directly in the store and returns its id; the password is `password-<username>`.
    pub async fn user(&self, username: &str, role: Role) -> String {
        let hash = password::hash_password(format!("password-{username}"))
            .await
            .unwrap();
        let badge = format!("TJ-{username}");
        let new = foodcheck::auth::NewUser::parse(
            username,
            role,
            &format!("Name of {username}"),
            (role == Role::Inspector).then_some(badge.as_str()),
            Some("13800138000"),
        )
        .unwrap();
        foodcheck::ops::accounts::create_user_with_hash(
            self.db(),
            &foodcheck::audit::Ctx::system(),
            &new,
            &hash,
        )
        .await
        .unwrap()
        .id
    }

    pub async fn login_full(&self, username: &str, device: &str) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(serde_json::json!({"username": username, "password": format!("password-{username}"), "device_id": device})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {username}: {body}");
        body
    }

    /// Creates the user and returns an access token.
    pub async fn token_for(&self, username: &str, role: Role) -> String {
        self.user(username, role).await;
        self.login_full(username, "test-device").await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Sends a JSON request and returns the status and the JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("non-JSON body for {path}: {text}"))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }
}

/// Asserts the error envelope with the given status and code.
#[track_caller]
pub fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(
        status.as_u16(),
        want_status,
        "unexpected status; body: {body}"
    );
    assert_eq!(
        body["error"]["code"], want_code,
        "unexpected code; body: {body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message: {body}"
    );
}

/// POSTs `len` bytes over a raw socket and reads the answer even if the server closes early:
/// for testing size limits without racing the server's early close.
pub async fn raw_post(base: &str, path: &str, content_type: &str, len: usize) -> (u16, Value) {
    raw_post_with(base, path, content_type, "", len).await
}

/// [`raw_post`] with a bearer token.
pub async fn raw_post_auth(base: &str, path: &str, token: &str, len: usize) -> (u16, Value) {
    raw_post_with(
        base,
        path,
        "application/octet-stream",
        &format!("Authorization: Bearer {token}\r\n"),
        len,
    )
    .await
}

/// [`raw_post`] of a JSON body with a bearer token.
pub async fn raw_post_json_auth(base: &str, path: &str, token: &str, len: usize) -> (u16, Value) {
    raw_post_with(
        base,
        path,
        "application/json",
        &format!("Authorization: Bearer {token}\r\n"),
        len,
    )
    .await
}

async fn raw_post_with(
    base: &str,
    path: &str,
    content_type: &str,
    extra: &str,
    len: usize,
) -> (u16, Value) {
    use tokio::io::AsyncWriteExt;
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n{extra}Content-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    // The server may stop reading once past its limit; a failed write is expected then.
    let _ = stream.write_all(&vec![b' '; len]).await;
    read_raw_response(stream).await
}

/// Reads a raw HTTP/1.1 answer to its end (at most 10 s): the status and the JSON object in its
/// body (chunked or not), `Value::Null` when there is none.
pub async fn read_raw_response(mut stream: tokio::net::TcpStream) -> (u16, Value) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut buf),
    )
    .await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body_start = text.find("\r\n\r\n").map(|i| i + 4).unwrap_or(text.len());
    // The body may be chunked; take the JSON object inside it.
    let raw = &text[body_start..];
    let json = match (raw.find('{'), raw.rfind('}')) {
        (Some(a), Some(b)) if b > a => serde_json::from_str(&raw[a..=b]).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, json)
}

/// A drawn task as the tests use it: (task id, establishment id, the team's usernames in draw
/// order), from `GET /api/v1/tasks?plan_id=` as `admin`; `inspectors` are (username, user id).
pub async fn drawn_tasks(
    app: &TestApp,
    admin: &str,
    plan: &str,
    inspectors: &[(String, String)],
) -> Vec<(String, String, Vec<String>)> {
    let (_, tasks) = app
        .get(&format!("/api/v1/tasks?plan_id={plan}"), admin)
        .await;
    tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let members = t["team"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    inspectors
                        .iter()
                        .find(|(_, id)| m["user_id"] == id.as_str())
                        .unwrap()
                        .0
                        .clone()
                })
                .collect();
            (
                t["id"].as_str().unwrap().to_string(),
                t["establishment"]["id"].as_str().unwrap().to_string(),
                members,
            )
        })
        .collect()
}

/// Tests that approve over HTTP count deadlines from the real date; the bundled calendar ends
/// with its last State Council notice. Adds this year and the next (New Year's Day off only)
/// when the calendar lacks them, so such tests keep passing after the bundled years.
pub async fn cover_this_and_next_year(app: &TestApp, admin: &str) {
    let (_, have) = app.get("/api/v1/calendar/years", admin).await;
    let have: Vec<i64> = have["years"]
        .as_array()
        .unwrap()
        .iter()
        .map(|y| y["year"].as_i64().unwrap())
        .collect();
    let this = chrono::Utc::now()
        .format("%Y")
        .to_string()
        .parse::<i64>()
        .unwrap();
    for year in [this, this + 1] {
        if !have.contains(&year) {
            let (s, b) = app
                .call(
                    reqwest::Method::PUT,
                    &format!("/api/v1/calendar/years/{year}"),
                    Some(admin),
                    Some(serde_json::json!({"off": {"元旦": [format!("{year}-01-01")]}, "source": "测试"})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
        }
    }
}
