//! Every error is the envelope: bad JSON, wrong types, oversized bodies, unknown routes.

use foodcheck::auth::Role;
use reqwest::StatusCode;

use crate::common::{assert_error, TestApp};

both_backends!(
    malformed_bodies_get_envelopes,
    unknown_routes_and_methods,
    health_and_readiness
);

async fn malformed_bodies_get_envelopes(app: TestApp) {
    let admin = app.token_for("admin1", Role::Admin).await;
    let url = app.url("/api/v1/auth/login");
    let send = |body: Vec<u8>, ct: Option<&'static str>| {
        let mut req = app.client.post(url.clone()).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            (status, res.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (s, b) = send(b"{\"username\": ".to_vec(), Some("application/json")).await;
    assert_error(s, &b, 400, "invalid_json");
    let (s, b) = send(
        b"{\"username\": 5, \"password\": [], \"device_id\": 1}".to_vec(),
        Some("application/json"),
    )
    .await;
    assert_error(s, &b, 422, "invalid_body");
    let (s, b) = send(b"{}".to_vec(), Some("application/json")).await;
    assert_error(s, &b, 422, "invalid_body");
    let (s, b) = send(
        b"username=a".to_vec(),
        Some("application/x-www-form-urlencoded"),
    )
    .await;
    assert_error(s, &b, 415, "unsupported_media_type");
    let (s, b) = send(b"{}".to_vec(), None).await;
    assert_error(s, &b, 415, "unsupported_media_type");
    // 3 MB of JSON against the 2 MB limit. Sent over a raw socket: the server answers 413 as
    // soon as it sees the declared length, and an HTTP client still writing would see a
    // broken pipe instead of the answer.
    let (status, body) = crate::common::raw_post(
        &app.base,
        "/api/v1/auth/login",
        "application/json",
        3 * 1024 * 1024,
    )
    .await;
    assert_error(
        StatusCode::from_u16(status).unwrap(),
        &body,
        413,
        "payload_too_large",
    );
    // Non-UTF-8 bytes.
    let (s, b) = send(vec![0xff, 0xfe, 0x00, 0x7b], Some("application/json")).await;
    assert_eq!(s.as_u16() / 100, 4, "{b}");
    assert!(b["error"]["code"].is_string());
    // Authenticated endpoints validate too.
    let res = app
        .client
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("[1,2,3]")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
}

async fn unknown_routes_and_methods(app: TestApp) {
    let (s, b) = app
        .call(reqwest::Method::GET, "/api/v1/nope", None, None)
        .await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app
        .call(reqwest::Method::DELETE, "/api/v1/auth/login", None, None)
        .await;
    assert_error(s, &b, 405, "method_not_allowed");
    let (s, b) = app
        .call(reqwest::Method::GET, "/api/v1/users/x/disable", None, None)
        .await;
    assert_error(s, &b, 405, "method_not_allowed");
}

async fn health_and_readiness(app: TestApp) {
    let (s, b) = app.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["status"], "ok");
    let (s, b) = app.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["database"], app.backend().name());
    // With the database gone, readiness fails with the envelope while liveness holds.
    app.db().close().await;
    let (s, b) = app.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_error(s, &b, 503, "unavailable");
    let (s, _) = app.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
}
