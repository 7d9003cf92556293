//! The audit trail of accounts and sessions: typed events in `audit_events` with actor, role,
//! device, request id and before/after, recorded in the same transaction as the change.

use foodcheck::audit::{Actor, Ctx};
use foodcheck::auth::Role;
use foodcheck::ops::accounts::{self, Target};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{assert_error, TestApp};

both_backends!(
    user_lifecycle_is_audited,
    account_use_cases_check_the_role,
    logins_are_audited_without_the_password,
    refresh_reuse_and_logout_are_audited,
);

/// One row of `audit_events`.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub device_id: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub record_type: String,
    pub record_id: String,
    pub changes: Value,
}

impl AuditRow {
    /// `(before, after)` of a changed field.
    #[track_caller]
    pub fn change(&self, field: &str) -> (Value, Value) {
        let c = self
            .changes
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["field"] == field)
            .unwrap_or_else(|| panic!("no change of {field} in {self:?}"));
        (c["before"].clone(), c["after"].clone())
    }

    pub fn fields(&self) -> Vec<String> {
        self.changes
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// The events whose `where_sql` (over the table's columns, `$1` bound to `arg`) holds, oldest
/// first.
pub async fn audit_where(app: &TestApp, where_sql: &str, arg: &str) -> Vec<AuditRow> {
    type Row = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        String,
        String,
        String,
    );
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT actor_id, actor_role, device_id, request_id, action, record_type, record_id, \
         changes FROM audit_events WHERE {where_sql} ORDER BY id"
    ))
    .bind(arg)
    .fetch_all(app.db().pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|r| AuditRow {
            actor_id: r.0,
            actor_role: r.1,
            device_id: r.2,
            request_id: r.3,
            action: r.4,
            record_type: r.5,
            record_id: r.6,
            changes: serde_json::from_str(&r.7).unwrap(),
        })
        .collect()
}

/// The events of one action, oldest first.
pub async fn audit_of(app: &TestApp, action: &str) -> Vec<AuditRow> {
    audit_where(app, "action = $1", action).await
}

/// A JSON request carrying an `x-request-id`.
pub async fn call_with_id(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Value,
    request_id: &str,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("x-request-id", request_id)
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, value)
}

async fn login(
    app: &TestApp,
    user: &str,
    password: &str,
    device: &str,
    rid: &str,
) -> (StatusCode, Value) {
    call_with_id(
        app,
        Method::POST,
        "/api/v1/auth/login",
        None,
        json!({"username": user, "password": password, "device_id": device}),
        rid,
    )
    .await
}

async fn user_lifecycle_is_audited(app: TestApp) {
    let admin = app.token_for("boss", Role::Admin).await;
    let admin_id = app.get("/api/v1/me", &admin).await.1["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, created) = call_with_id(
        &app,
        Method::POST,
        "/api/v1/users",
        Some(&admin),
        json!({"username":"Chen.Yi","password":"long-enough-pw","role":"inspector","name":"陈一","badge_no":"12010001","phone":"13900000000"}),
        "rid-create-1",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    let events = audit_where(&app, "record_id = $1", &id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.action, "user_created");
    assert_eq!(e.record_type, "user");
    assert_eq!(e.actor_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(e.actor_role.as_deref(), Some("admin"));
    assert_eq!(e.device_id.as_deref(), Some("test-device"));
    assert_eq!(e.request_id.as_deref(), Some("rid-create-1"));
    assert_eq!(e.change("username"), (Value::Null, json!("chen.yi")));
    assert_eq!(e.change("role"), (Value::Null, json!("inspector")));
    assert_eq!(e.change("badge_no"), (Value::Null, json!("12010001")));
    assert_eq!(e.change("disabled"), (Value::Null, json!(false)));
    let text = e.changes.to_string();
    assert!(
        !e.fields().iter().any(|f| f.contains("password")) && !text.contains("$argon2"),
        "the password hash leaked into the audit log: {text}"
    );

    // The new user has a session; disabling revokes it, in the same transaction.
    let (s, _) = login(&app, "chen.yi", "long-enough-pw", "phone-9", "rid-login").await;
    assert_eq!(s, StatusCode::OK);
    let session = audit_of(&app, "login_succeeded")
        .await
        .last()
        .unwrap()
        .change("session_id")
        .1;
    let (s, _) = call_with_id(
        &app,
        Method::POST,
        &format!("/api/v1/users/{id}/disable"),
        Some(&admin),
        json!({}),
        "rid-disable-1",
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let disabled = audit_of(&app, "user_disabled").await;
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0].record_id, id);
    assert_eq!(disabled[0].actor_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(disabled[0].request_id.as_deref(), Some("rid-disable-1"));
    assert_eq!(disabled[0].changes.as_array().unwrap().len(), 1);
    assert_eq!(disabled[0].change("disabled"), (json!(false), json!(true)));
    let revoked = audit_where(&app, "record_id = $1", session.as_str().unwrap()).await;
    let revoked: Vec<_> = revoked
        .iter()
        .filter(|e| e.action == "session_revoked")
        .collect();
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0].record_type, "session");
    assert_eq!(revoked[0].request_id.as_deref(), Some("rid-disable-1"));
    assert_eq!(revoked[0].change("revoked"), (json!(false), json!(true)));
    assert_eq!(revoked[0].change("reason").1, "account_disabled");

    // Disabling again changes nothing and records nothing.
    let (s, _) = app
        .post(&format!("/api/v1/users/{id}/disable"), &admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(audit_of(&app, "user_disabled").await.len(), 1);

    // An admin cannot disable themselves: 409 and no event.
    let (s, b) = app
        .post(
            &format!("/api/v1/users/{admin_id}/disable"),
            &admin,
            json!({}),
        )
        .await;
    assert_error(s, &b, 409, "conflict");
    assert_eq!(audit_of(&app, "user_disabled").await.len(), 1);

    let (s, _) = call_with_id(
        &app,
        Method::POST,
        &format!("/api/v1/users/{id}/enable"),
        Some(&admin),
        json!({}),
        "rid-enable-1",
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let enabled = audit_of(&app, "user_enabled").await;
    assert_eq!(enabled.len(), 1);
    assert_eq!(enabled[0].request_id.as_deref(), Some("rid-enable-1"));
    assert_eq!(enabled[0].change("disabled"), (json!(true), json!(false)));

    // The shell acts as the system: no user, no role, no request.
    accounts::disable_user(app.db(), &Ctx::system(), Target::Username("chen.yi"))
        .await
        .unwrap();
    let by_system = audit_of(&app, "user_disabled").await;
    assert_eq!(by_system.len(), 2);
    assert_eq!(by_system[1].actor_id, None);
    assert_eq!(by_system[1].actor_role, None);
    assert_eq!(by_system[1].request_id, None);
}

async fn account_use_cases_check_the_role(app: TestApp) {
    let inspector_id = app.user("insp", Role::Inspector).await;
    app.user("victim", Role::Reviewer).await;
    let inspector = Ctx::new(
        Actor::user(&inspector_id, Role::Inspector, Some("d")),
        Some("rid".into()),
    );
    let err = accounts::disable_user(app.db(), &inspector, Target::Username("victim"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, foodcheck::ops::Error::Forbidden(_)),
        "{err:?}"
    );
    let new = foodcheck::auth::NewUser::parse("sneaky", Role::Admin, "x", None, None).unwrap();
    let err = accounts::create_user(app.db(), &inspector, &new, "long-enough-pw".into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, foodcheck::ops::Error::Forbidden(_)),
        "{err:?}"
    );
    assert!(audit_of(&app, "user_disabled").await.is_empty());
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE username = 'sneaky'")
        .fetch_one(app.db().pool())
        .await
        .unwrap();
    assert_eq!(n, 0);
    // Checklist changes too.
    let err = foodcheck::ops::checklists::publish(
        app.db(),
        &inspector,
        foodcheck::store::checklists::DEFAULT_TEMPLATE_ID,
        1,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, foodcheck::ops::Error::Forbidden(_)),
        "{err:?}"
    );
    let err = accounts::disable_user(app.db(), &Ctx::system(), Target::Username("nobody"))
        .await
        .unwrap_err();
    assert!(matches!(err, foodcheck::ops::Error::NotFound(_)), "{err:?}");
}

async fn logins_are_audited_without_the_password(app: TestApp) {
    let id = app.user("li.si", Role::Reviewer).await;
    let secret = "guess-Xy7-not-it";
    let (s, b) = login(&app, "li.si", secret, "laptop-1", "rid-fail-1").await;
    assert_error(s, &b, 401, "invalid_credentials");
    // An unknown account: the same answer, nothing to attach an event to.
    let (s, b) = login(&app, "nobody", secret, "laptop-1", "rid-fail-2").await;
    assert_error(s, &b, 401, "invalid_credentials");

    let failed = audit_of(&app, "login_failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    let f = &failed[0];
    assert_eq!(f.record_type, "user");
    assert_eq!(f.record_id, id);
    // The password proved nothing: the actor stays unauthenticated, with the claimed device.
    assert_eq!(f.actor_id, None);
    assert_eq!(f.actor_role, None);
    assert_eq!(f.device_id.as_deref(), Some("laptop-1"));
    assert_eq!(f.request_id.as_deref(), Some("rid-fail-1"));
    assert_eq!(f.change("reason").1, "wrong_password");
    assert_eq!(f.change("device_id").1, "laptop-1");
    assert!(f.change("client_ip").1.is_string());
    // The failure was counted and committed with its event (the attempt's own settlement).
    let (failures,): (i64,) =
        sqlx::query_as("SELECT failures FROM login_throttle WHERE scope_key = 'user:li.si'")
            .fetch_one(app.db().pool())
            .await
            .unwrap();
    assert_eq!(failures, 1);

    let (s, _) = login(&app, "li.si", "password-li.si", "laptop-1", "rid-ok-1").await;
    assert_eq!(s, StatusCode::OK);
    let ok = audit_of(&app, "login_succeeded").await;
    let ok: Vec<_> = ok.iter().filter(|e| e.record_id == id).collect();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].actor_id.as_deref(), Some(id.as_str()));
    assert_eq!(ok[0].actor_role.as_deref(), Some("reviewer"));
    assert_eq!(ok[0].device_id.as_deref(), Some("laptop-1"));
    assert_eq!(ok[0].request_id.as_deref(), Some("rid-ok-1"));
    let first_session = ok[0].change("session_id").1;
    assert!(first_session.is_string());

    // A second login on the device replaces its session: recorded as revoked.
    let (s, _) = login(&app, "li.si", "password-li.si", "laptop-1", "rid-ok-2").await;
    assert_eq!(s, StatusCode::OK);
    let revoked = audit_where(&app, "record_id = $1", first_session.as_str().unwrap()).await;
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0].action, "session_revoked");
    assert_eq!(revoked[0].request_id.as_deref(), Some("rid-ok-2"));
    assert_eq!(revoked[0].change("reason").1, "new_login");

    // The right password for a disabled account is refused and recorded as such.
    accounts::disable_user(app.db(), &Ctx::system(), Target::Id(&id))
        .await
        .unwrap();
    let (s, b) = login(&app, "li.si", "password-li.si", "laptop-2", "rid-dis").await;
    assert_error(s, &b, 401, "account_disabled");
    let failed = audit_of(&app, "login_failed").await;
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[1].change("reason").1, "account_disabled");
    assert_eq!(failed[1].request_id.as_deref(), Some("rid-dis"));

    // No password, attempted or real, is anywhere in the log.
    let rows: Vec<(String,)> = sqlx::query_as("SELECT changes FROM audit_events")
        .fetch_all(app.db().pool())
        .await
        .unwrap();
    let all: String = rows.into_iter().map(|(c,)| c).collect();
    assert!(
        !all.contains(secret) && !all.contains("password-li.si"),
        "{all}"
    );
}

async fn refresh_reuse_and_logout_are_audited(app: TestApp) {
    let id = app.user("sun.ba", Role::Inspector).await;
    let (s, first) = login(&app, "sun.ba", "password-sun.ba", "phone", "rid-l").await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let session = audit_of(&app, "login_succeeded").await[0]
        .change("session_id")
        .1;
    let session = session.as_str().unwrap();
    let r1 = first["refresh_token"].as_str().unwrap();
    let refresh = |token: &str, rid: &str| {
        let (token, rid) = (token.to_owned(), rid.to_owned());
        let app = &app;
        async move {
            call_with_id(
                app,
                Method::POST,
                "/api/v1/auth/refresh",
                None,
                json!({"refresh_token": token}),
                &rid,
            )
            .await
        }
    };
    let (s, second) = refresh(r1, "rid-r1").await;
    assert_eq!(s, StatusCode::OK, "{second}");
    let refreshed = audit_of(&app, "session_refreshed").await;
    assert_eq!(refreshed.len(), 1);
    assert_eq!(refreshed[0].record_type, "session");
    assert_eq!(refreshed[0].record_id, session);
    assert_eq!(refreshed[0].actor_id.as_deref(), Some(id.as_str()));
    assert_eq!(refreshed[0].actor_role.as_deref(), Some("inspector"));
    assert_eq!(refreshed[0].device_id.as_deref(), Some("phone"));
    assert_eq!(refreshed[0].request_id.as_deref(), Some("rid-r1"));
    assert_eq!(refreshed[0].change("retry").1, false);

    // Replaying the spent token revokes the session: recorded, with whose session it was.
    let (s, b) = refresh(r1, "rid-replay").await;
    assert_error(s, &b, 401, "refresh_token_reused");
    let reused = audit_of(&app, "refresh_token_reused").await;
    assert_eq!(reused.len(), 1);
    let r = &reused[0];
    assert_eq!(r.record_id, session);
    assert_eq!(
        r.actor_id, None,
        "a replayed token proves nothing about who sent it"
    );
    assert_eq!(r.request_id.as_deref(), Some("rid-replay"));
    assert_eq!(r.change("revoked"), (json!(false), json!(true)));
    assert_eq!(r.change("user_id").1, json!(id));
    assert_eq!(r.change("device_id").1, "phone");
    // Once more: the session is already gone, so nothing changes (no before/after of revoked).
    let (s, b) = refresh(r1, "rid-replay-2").await;
    assert_error(s, &b, 401, "refresh_token_reused");
    let reused = audit_of(&app, "refresh_token_reused").await;
    assert_eq!(reused.len(), 2);
    assert!(!reused[1].fields().contains(&"revoked".to_owned()));

    // Logout: recorded once, as the session's owner.
    let (s, t) = login(&app, "sun.ba", "password-sun.ba", "pc", "rid-l2").await;
    assert_eq!(s, StatusCode::OK);
    let pc_session = audit_of(&app, "login_succeeded").await[1]
        .change("session_id")
        .1;
    let body = json!({"refresh_token": t["refresh_token"]});
    let logout = |rid: &'static str| {
        call_with_id(
            &app,
            Method::POST,
            "/api/v1/auth/logout",
            None,
            body.clone(),
            rid,
        )
    };
    let (s, _) = logout("rid-out").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = logout("rid-out-again").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let out = audit_where(&app, "record_id = $1", pc_session.as_str().unwrap()).await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].action, "session_revoked");
    assert_eq!(out[0].actor_id.as_deref(), Some(id.as_str()));
    assert_eq!(out[0].actor_role.as_deref(), Some("inspector"));
    assert_eq!(out[0].device_id.as_deref(), Some("pc"));
    assert_eq!(out[0].request_id.as_deref(), Some("rid-out"));
    assert_eq!(out[0].change("reason").1, "logout");
    assert_eq!(out[0].change("revoked"), (json!(false), json!(true)));
}
