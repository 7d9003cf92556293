use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use foodcheck::auth::token::SigningKey;
use foodcheck::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{assert_error, Kind, TestApp};

both_backends!(
    login_me_and_tokens,
    wrong_password_and_unknown_user_look_the_same,
    missing_and_malformed_tokens_are_401,
    expired_token_is_401,
    tampered_signature_is_401,
    alg_none_and_wrong_algorithm_are_refused,
    refresh_rotates_and_reuse_revokes_the_family,
    logout_revokes,
    disabling_a_user_revokes_everything,
    wrong_role_is_403,
    admin_manages_users,
    concurrent_logins_all_succeed,
    concurrent_refresh_of_one_token_lets_one_win,
    new_login_on_same_device_replaces_session,
    parallel_wrong_passwords_are_throttled_across_instances,
    lost_refresh_response_retry_gets_the_same_tokens,
    retry_outside_the_window_or_from_another_device_revokes,
    revoked_sessions_refuse_their_access_tokens,
    concurrent_refresh_from_the_device_all_get_one_successor,
    concurrent_refresh_across_instances_rotates_once,
);

async fn login_me_and_tokens(app: TestApp) {
    app.user("zhang.san", Role::Inspector).await;
    // Usernames are case-insensitive.
    let (status, tokens) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "Zhang.San", "password": "password-zhang.san", "device_id": "phone-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert_eq!(tokens["refresh_expires_in"], 30 * 86400);
    let access = tokens["access_token"].as_str().unwrap();
    let (status, me) = app.get("/api/v1/me", access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "zhang.san");
    assert_eq!(me["role"], "inspector");
    assert_eq!(me["badge_no"], "TJ-zhang.san");
    assert!(me["id"].as_str().is_some());
    // The header carries the key id.
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(access.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["kid"], app.state.keys.kid());
}

async fn wrong_password_and_unknown_user_look_the_same(app: TestApp) {
    app.user("li.si", Role::Reviewer).await;
    let (s1, b1) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username":"li.si","password":"nope-nope-nope","device_id":"d"})),
        )
        .await;
    let (s2, b2) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username":"nobody","password":"nope-nope-nope","device_id":"d"})),
        )
        .await;
    assert_error(s1, &b1, 401, "invalid_credentials");
    assert_error(s2, &b2, 401, "invalid_credentials");
    assert_eq!(b1, b2);
}

async fn missing_and_malformed_tokens_are_401(app: TestApp) {
    let (s, b) = app.call(Method::GET, "/api/v1/me", None, None).await;
    assert_error(s, &b, 401, "missing_token");
    let (s, b) = app.get("/api/v1/me", "not-a-jwt").await;
    assert_error(s, &b, 401, "invalid_token");
    let res = app
        .client
        .get(app.url("/api/v1/me"))
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().get("www-authenticate").is_some());
}

/// The claims of an access token, unverified.
fn claims(access: &str) -> serde_json::Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(access.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}

async fn expired_token_is_401(app: TestApp) {
    let id = app.user("wang.wu", Role::Admin).await;
    let sid = claims(
        app.login_full("wang.wu", "pc").await["access_token"]
            .as_str()
            .unwrap(),
    )["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let key = SigningKey::load_or_generate(app.dir.path()).unwrap();
    let long_ago = chrono::Utc::now().timestamp_millis() - 2 * 3_600_000;
    let token = key
        .issue_for_session(&id, Role::Admin, Some(("pc", &sid)), long_ago, 900)
        .unwrap();
    let (s, b) = app.get("/api/v1/me", &token).await;
    assert_error(s, &b, 401, "token_expired");
    // The same key with a fresh time works: the failure above is the expiry alone.
    let now = chrono::Utc::now().timestamp_millis();
    let token = key
        .issue_for_session(&id, Role::Admin, Some(("pc", &sid)), now, 900)
        .unwrap();
    let (s, _) = app.get("/api/v1/me", &token).await;
    assert_eq!(s, StatusCode::OK);
}

async fn tampered_signature_is_401(app: TestApp) {
    let token = app.token_for("zhao.liu", Role::Inspector).await;
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    // Forge the payload into an admin, keep the signature.
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["role"] = json!("admin");
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let (s, b) = app.get("/api/v1/me", &parts.join(".")).await;
    assert_error(s, &b, 401, "invalid_token");
    // Flip one character of the signature.
    let mut sig = token.split('.').nth(2).unwrap().to_string();
    let c = if sig.starts_with('A') { "B" } else { "A" };
    sig.replace_range(0..1, c);
    let forged = format!(
        "{}.{}.{}",
        token.split('.').next().unwrap(),
        token.split('.').nth(1).unwrap(),
        sig
    );
    let (s, b) = app.get("/api/v1/me", &forged).await;
    assert_error(s, &b, 401, "invalid_token");
}

async fn alg_none_and_wrong_algorithm_are_refused(app: TestApp) {
    let id = app.user("qian.qi", Role::Admin).await;
    let sid = claims(
        app.login_full("qian.qi", "pc").await["access_token"]
            .as_str()
            .unwrap(),
    )["sid"]
        .clone();
    let kid = app.state.keys.kid().to_string();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": id, "role": "admin", "iat": now, "exp": now + 600, "iat_ms": now * 1000, "typ": "access", "sid": sid});
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    for alg in ["none", "None", "NONE"] {
        let header =
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{kid}"}}"#));
        let (s, b) = app.get("/api/v1/me", &format!("{header}.{payload}.")).await;
        assert_error(s, &b, 401, "invalid_token");
    }
    // HS512 with the very same secret: right key, wrong algorithm.
    let secret = hex::decode(
        std::fs::read_to_string(app.dir.path().join("jwt-signing.key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512);
    header.kid = Some(kid.clone());
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .unwrap();
    let (s, b) = app.get("/api/v1/me", &token).await;
    assert_error(s, &b, 401, "invalid_token");
    // HS256 with that secret is accepted: the refusals above are about the algorithm.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid);
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .unwrap();
    let (s, _) = app.get("/api/v1/me", &token).await;
    assert_eq!(s, StatusCode::OK);
}

async fn refresh(app: &TestApp, token: &str) -> (StatusCode, serde_json::Value) {
    app.call(
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": token})),
    )
    .await
}

async fn refresh_rotates_and_reuse_revokes_the_family(app: TestApp) {
    app.user("sun.ba", Role::Inspector).await;
    let first = app.login_full("sun.ba", "phone").await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let (s, second) = refresh(&app, r1).await;
    assert_eq!(s, StatusCode::OK, "{second}");
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2);
    let (s, me) = app
        .get("/api/v1/me", second["access_token"].as_str().unwrap())
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["username"], "sun.ba");
    // Replaying the rotated token revokes the family, including the live r2.
    let (s, b) = refresh(&app, r1).await;
    assert_error(s, &b, 401, "refresh_token_reused");
    let (s, b) = refresh(&app, r2).await;
    assert_error(s, &b, 401, "invalid_refresh_token");
    let (s, b) = refresh(&app, "garbage").await;
    assert_error(s, &b, 401, "invalid_refresh_token");
}

async fn logout_revokes(app: TestApp) {
    app.user("zhou.jiu", Role::Reviewer).await;
    let t = app.login_full("zhou.jiu", "pc").await;
    let r = t["refresh_token"].as_str().unwrap();
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(json!({"refresh_token": r})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = refresh(&app, r).await;
    assert_error(s, &b, 401, "invalid_refresh_token");
    // Idempotent, reveals nothing.
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(json!({"refresh_token": "unknown"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

async fn disabling_a_user_revokes_everything(app: TestApp) {
    app.user("wu.shi", Role::Inspector).await;
    let t = app.login_full("wu.shi", "phone").await;
    let access = t["access_token"].as_str().unwrap();
    let (s, _) = app.get("/api/v1/me", access).await;
    assert_eq!(s, StatusCode::OK);
    let system = foodcheck::audit::Ctx::system();
    let wu = foodcheck::ops::accounts::Target::Username("wu.shi");
    let disabled = foodcheck::ops::accounts::disable_user(app.db(), &system, wu)
        .await
        .unwrap();
    assert!(disabled.disabled);
    let (s, b) = app.get("/api/v1/me", access).await;
    assert_error(s, &b, 401, "account_disabled");
    let (s, b) = refresh(&app, t["refresh_token"].as_str().unwrap()).await;
    assert_error(s, &b, 401, "invalid_refresh_token");
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username":"wu.shi","password":"password-wu.shi","device_id":"x"})),
        )
        .await;
    assert_error(s, &b, 401, "account_disabled");
    // Re-enabling does not resurrect the old access token.
    let enabled = foodcheck::ops::accounts::enable_user(app.db(), &system, wu)
        .await
        .unwrap();
    assert!(!enabled.disabled);
    let (s, b) = app.get("/api/v1/me", access).await;
    assert_error(s, &b, 401, "invalid_token");
    let fresh = app.login_full("wu.shi", "phone").await;
    let (s, _) = app
        .get("/api/v1/me", fresh["access_token"].as_str().unwrap())
        .await;
    assert_eq!(s, StatusCode::OK);
}

async fn wrong_role_is_403(app: TestApp) {
    for (name, role) in [
        ("insp", Role::Inspector),
        ("rev", Role::Reviewer),
        ("labby", Role::Lab),
    ] {
        let token = app.token_for(name, role).await;
        let (s, b) = app.get("/api/v1/users", &token).await;
        assert_error(s, &b, 403, "forbidden");
        let (s, b) = app
            .post(
                "/api/v1/users",
                &token,
                json!({"username":"x-new","password":"0123456789ab","role":"admin","name":"X"}),
            )
            .await;
        assert_error(s, &b, 403, "forbidden");
    }
}

async fn admin_manages_users(app: TestApp) {
    let admin = app.token_for("boss", Role::Admin).await;
    let (s, created) = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username":"Chen.Yi","password":"long-enough-pw","role":"inspector","name":"陈一","badge_no":"12010001"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["username"], "chen.yi");
    let (s, b) = app
        .post("/api/v1/users", &admin, json!({"username":"chen.yi","password":"long-enough-pw","role":"reviewer","name":"dup"}))
        .await;
    assert_error(s, &b, 409, "duplicate");
    let (s, b) = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username":"nobadge","password":"long-enough-pw","role":"inspector","name":"x"}),
        )
        .await;
    assert_error(s, &b, 422, "validation_failed");
    let (s, b) = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username":"shortpw","password":"short","role":"lab","name":"x"}),
        )
        .await;
    assert_error(s, &b, 422, "validation_failed");
    let (s, b) = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username":"badrole","password":"long-enough-pw","role":"root","name":"x"}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_body");
    let id = created["id"].as_str().unwrap();
    let (s, _) = app
        .post(&format!("/api/v1/users/{id}/disable"), &admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, list) = app.get("/api/v1/users", &admin).await;
    let chen = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "chen.yi")
        .unwrap();
    assert_eq!(chen["disabled"], true);
    let (s, b) = app
        .post("/api/v1/users/no-such-id/disable", &admin, json!({}))
        .await;
    assert_error(s, &b, 404, "not_found");
}

async fn concurrent_logins_all_succeed(app: TestApp) {
    app.user("busy", Role::Inspector).await;
    let futures = (0..12).map(|i| {
        let client = app.client.clone();
        let url = app.url("/api/v1/auth/login");
        async move {
            client
                .post(url)
                .json(&json!({"username":"busy","password":"password-busy","device_id": format!("device-{i}")}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures::future::join_all(futures).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
}

async fn concurrent_refresh_of_one_token_lets_one_win(app: TestApp) {
    app.user("racer", Role::Inspector).await;
    let t = app.login_full("racer", "phone").await;
    let r = t["refresh_token"].as_str().unwrap().to_string();
    let futures = (0..6).map(|_| {
        let client = app.client.clone();
        let url = app.url("/api/v1/auth/refresh");
        let r = r.clone();
        async move {
            client
                .post(url)
                .json(&json!({"refresh_token": r}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures::future::join_all(futures).await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{statuses:?}");
}

async fn new_login_on_same_device_replaces_session(app: TestApp) {
    app.user("zheng", Role::Inspector).await;
    let a = app.login_full("zheng", "phone").await;
    let b = app.login_full("zheng", "phone").await;
    let other = app.login_full("zheng", "tablet").await;
    let (s, body) = refresh(&app, a["refresh_token"].as_str().unwrap()).await;
    assert_error(s, &body, 401, "invalid_refresh_token");
    assert_eq!(
        refresh(&app, b["refresh_token"].as_str().unwrap()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        refresh(&app, other["refresh_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::OK
    );
}

/// A second API instance over the same database and data directory (same signing key), as
/// behind a load balancer. It stops when the returned sender is dropped.
async fn second_instance(app: &TestApp) -> (String, tokio::sync::oneshot::Sender<()>) {
    let config = (*app.state.config).clone();
    let state = foodcheck::app::state(config)
        .await
        .expect("second instance");
    let server = foodcheck::app::Server::bind(state).await.expect("bind");
    let base = format!("http://{}", server.addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = server
            .run(async {
                let _ = rx.await;
            })
            .await;
    });
    (base, tx)
}

async fn parallel_wrong_passwords_are_throttled_across_instances(app: TestApp) {
    app.user("victim", Role::Inspector).await;
    let (other, _stop) = second_instance(&app).await;
    // 20 guesses at once, half through each instance; the limit is 5 per username.
    let futures = (0..20).map(|i| {
        let client = app.client.clone();
        let url = format!(
            "{}/api/v1/auth/login",
            if i % 2 == 0 { &app.base } else { &other }
        );
        async move {
            client
                .post(url)
                .json(&json!({"username":"victim","password":"wrong-password","device_id":"d"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures::future::join_all(futures).await;
    let wrong = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((wrong, throttled), (5, 15), "{statuses:?}");
    // The right password is refused too until the window ends.
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username":"victim","password":"password-victim","device_id":"d"})),
        )
        .await;
    assert_error(s, &b, 429, "too_many_requests");
}

async fn refresh_from(app: &TestApp, token: &str, device: &str) -> (StatusCode, serde_json::Value) {
    app.call(
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": token, "device_id": device})),
    )
    .await
}

fn s(v: &serde_json::Value, key: &str) -> String {
    v[key].as_str().unwrap().to_string()
}

async fn lost_refresh_response_retry_gets_the_same_tokens(app: TestApp) {
    app.user("field", Role::Inspector).await;
    let first = app.login_full("field", "phone-7").await;
    let r1 = s(&first, "refresh_token");
    // The server rotates r1; the answer never reaches the phone.
    let (st, lost) = refresh_from(&app, &r1, "phone-7").await;
    assert_eq!(st, StatusCode::OK, "{lost}");
    // The phone retries with r1, seconds later.
    let (st, retry) = refresh_from(&app, &r1, "phone-7").await;
    assert_eq!(st, StatusCode::OK, "{retry}");
    assert_eq!(retry["refresh_token"], lost["refresh_token"]);
    let (st, me) = app
        .get("/api/v1/me", retry["access_token"].as_str().unwrap())
        .await;
    assert_eq!(st, StatusCode::OK, "{me}");
    // Nothing was revoked: the session goes on.
    let (st, next) = refresh_from(&app, &s(&retry, "refresh_token"), "phone-7").await;
    assert_eq!(st, StatusCode::OK, "{next}");
    let (st, _) = app
        .get("/api/v1/me", next["access_token"].as_str().unwrap())
        .await;
    assert_eq!(st, StatusCode::OK);
}

async fn retry_outside_the_window_or_from_another_device_revokes(app: TestApp) {
    app.user("late", Role::Inspector).await;
    // Outside the window (the rotation is moved 61 s into the past).
    let r1 = s(&app.login_full("late", "phone").await, "refresh_token");
    let (_, second) = refresh_from(&app, &r1, "phone").await;
    sqlx::query("UPDATE refresh_tokens SET used_at = used_at - 61000 WHERE used_at IS NOT NULL")
        .execute(app.db().pool())
        .await
        .unwrap();
    let (st, b) = refresh_from(&app, &r1, "phone").await;
    assert_error(st, &b, 401, "refresh_token_reused");
    let (st, b) = refresh_from(&app, &s(&second, "refresh_token"), "phone").await;
    assert_error(st, &b, 401, "invalid_refresh_token");
    // From another device, within the window.
    let r1 = s(&app.login_full("late", "phone").await, "refresh_token");
    let (_, second) = refresh_from(&app, &r1, "phone").await;
    let (st, b) = refresh_from(&app, &r1, "laptop").await;
    assert_error(st, &b, 401, "invalid_refresh_token");
    let (st, b) = refresh_from(&app, &s(&second, "refresh_token"), "phone").await;
    assert_error(st, &b, 401, "invalid_refresh_token");
    // Without a device_id a retry cannot be told from a replay.
    let r1 = s(&app.login_full("late", "phone").await, "refresh_token");
    let (_, second) = refresh_from(&app, &r1, "phone").await;
    let (st, b) = refresh(&app, &r1).await;
    assert_error(st, &b, 401, "refresh_token_reused");
    let (st, _) = refresh_from(&app, &s(&second, "refresh_token"), "phone").await;
    assert_eq!(st, 401);
    // After the successor was used, the old token is a replay even within the window.
    let r1 = s(&app.login_full("late", "phone").await, "refresh_token");
    let (_, second) = refresh_from(&app, &r1, "phone").await;
    let (_, third) = refresh_from(&app, &s(&second, "refresh_token"), "phone").await;
    let (st, b) = refresh_from(&app, &r1, "phone").await;
    assert_error(st, &b, 401, "refresh_token_reused");
    let (st, b) = refresh_from(&app, &s(&third, "refresh_token"), "phone").await;
    assert_error(st, &b, 401, "invalid_refresh_token");
}

async fn revoked_sessions_refuse_their_access_tokens(app: TestApp) {
    app.user("sess", Role::Inspector).await;
    // Logout.
    let t = app.login_full("sess", "phone").await;
    let access = s(&t, "access_token");
    assert_eq!(app.get("/api/v1/me", &access).await.0, StatusCode::OK);
    let (st, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(json!({"refresh_token": s(&t, "refresh_token")})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, b) = app.get("/api/v1/me", &access).await;
    assert_error(st, &b, 401, "invalid_token");
    // Refresh-token reuse: every access token of the session goes.
    let t = app.login_full("sess", "phone").await;
    let (_, second) = refresh(&app, &s(&t, "refresh_token")).await;
    let other = app.login_full("sess", "tablet").await;
    let (st, b) = refresh(&app, &s(&t, "refresh_token")).await;
    assert_error(st, &b, 401, "refresh_token_reused");
    for a in [s(&t, "access_token"), s(&second, "access_token")] {
        let (st, b) = app.get("/api/v1/me", &a).await;
        assert_error(st, &b, 401, "invalid_token");
    }
    // Other sessions of the user are untouched.
    assert_eq!(
        app.get("/api/v1/me", &s(&other, "access_token")).await.0,
        StatusCode::OK
    );
    // A new login on the tablet ends the tablet's earlier session.
    let again = app.login_full("sess", "tablet").await;
    let (st, b) = app.get("/api/v1/me", &s(&other, "access_token")).await;
    assert_error(st, &b, 401, "invalid_token");
    assert_eq!(
        app.get("/api/v1/me", &s(&again, "access_token")).await.0,
        StatusCode::OK
    );
}

async fn concurrent_refresh_from_the_device_all_get_one_successor(app: TestApp) {
    app.user("twice", Role::Inspector).await;
    let r = s(&app.login_full("twice", "phone").await, "refresh_token");
    let futures = (0..6).map(|_| {
        let client = app.client.clone();
        let url = app.url("/api/v1/auth/refresh");
        let r = r.clone();
        async move {
            let res = client
                .post(url)
                .json(&json!({"refresh_token": r, "device_id": "phone"}))
                .send()
                .await
                .unwrap();
            (res.status(), res.json::<serde_json::Value>().await.unwrap())
        }
    });
    let answers = futures::future::join_all(futures).await;
    assert!(
        answers.iter().all(|(st, _)| *st == StatusCode::OK),
        "{answers:?}"
    );
    let successor = answers[0].1["refresh_token"].clone();
    assert!(
        answers.iter().all(|(_, b)| b["refresh_token"] == successor),
        "{answers:?}"
    );
    let (st, _) = refresh_from(&app, successor.as_str().unwrap(), "phone").await;
    assert_eq!(st, StatusCode::OK);
}

/// The same refresh token presented at the same moment to two instances (a retry behind a
/// round-robin proxy): it is rotated once, both answers carry the one successor.
async fn concurrent_refresh_across_instances_rotates_once(app: TestApp) {
    app.user("both", Role::Inspector).await;
    let r = s(&app.login_full("both", "phone").await, "refresh_token");
    let (other, _stop) = second_instance(&app).await;
    let futures = (0..8).map(|i| {
        let client = app.client.clone();
        let url = format!(
            "{}/api/v1/auth/refresh",
            if i % 2 == 0 { &app.base } else { &other }
        );
        let r = r.clone();
        async move {
            let res = client
                .post(url)
                .json(&json!({"refresh_token": r, "device_id": "phone"}))
                .send()
                .await
                .unwrap();
            (res.status(), res.json::<serde_json::Value>().await.unwrap())
        }
    });
    let answers = futures::future::join_all(futures).await;
    assert!(
        answers.iter().all(|(st, _)| *st == StatusCode::OK),
        "{answers:?}"
    );
    let successor = answers[0].1["refresh_token"].clone();
    assert!(
        answers.iter().all(|(_, b)| b["refresh_token"] == successor),
        "{answers:?}"
    );
    // One rotation: the presented token used once, one successor issued.
    let (tokens, used): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COUNT(used_at) AS BIGINT) FROM refresh_tokens t \
         JOIN users u ON u.id = t.user_id WHERE u.username = 'both'",
    )
    .fetch_one(app.db().pool())
    .await
    .unwrap();
    assert_eq!((tokens, used), (2, 1));
    let (st, _) = refresh_from(&app, successor.as_str().unwrap(), "phone").await;
    assert_eq!(st, StatusCode::OK);
}

mod throttling {
    use super::*;

    async fn spawn(kind: Kind) -> TestApp {
        TestApp::spawn_with(kind, |c| {
            c.login_max_failures_per_user = 3;
            c.login_max_failures_per_ip = 8;
        })
        .await
    }

    async fn attempt(app: &TestApp, user: &str, pw: &str) -> reqwest::Response {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"username": user, "password": pw, "device_id": "d"}))
            .send()
            .await
            .unwrap()
    }

    async fn per_username(app: TestApp) {
        app.user("target", Role::Inspector).await;
        for _ in 0..3 {
            assert_eq!(
                attempt(&app, "target", "wrong-password").await.status(),
                401
            );
        }
        // Now blocked even with the right password, with Retry-After.
        let res = attempt(&app, "target", "password-target").await;
        assert_eq!(res.status(), 429);
        let retry: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry > 0 && retry <= 15 * 60, "{retry}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "too_many_requests");
        // Another user from the same address is not blocked yet.
        app.user("bystander", Role::Inspector).await;
        assert_eq!(
            attempt(&app, "bystander", "password-bystander")
                .await
                .status(),
            200
        );
    }

    async fn per_address(app: TestApp) {
        // One address guessing many usernames is stopped by the address limit.
        for i in 0..8 {
            assert_eq!(
                attempt(&app, &format!("guess{i}"), "wrong-password")
                    .await
                    .status(),
                401
            );
        }
        app.user("innocent", Role::Inspector).await;
        assert_eq!(
            attempt(&app, "innocent", "password-innocent")
                .await
                .status(),
            429
        );
    }

    both_backends!(@spawn spawn; per_username, per_address);
}
