//! Every error is the envelope: bad JSON, wrong types, oversized bodies, unknown routes.

use foodcheck::auth::Role;
use reqwest::StatusCode;

use crate::common::{assert_error, TestApp};

both_backends!(
    malformed_bodies_get_envelopes,
    unknown_routes_and_methods,
    health_and_readiness,
    control_characters_are_refused_at_the_edge,
    role_is_checked_before_the_request_is_parsed,
    header_only_import_is_invalid_table
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

/// NUL and other controls are refused before they reach the database (PostgreSQL cannot store
/// U+0000 and answered 500): 422 `control_character` in JSON, query strings and tus metadata,
/// 404 in path ids. Tab, newline and carriage return stay allowed.
async fn control_characters_are_refused_at_the_edge(app: TestApp) {
    use reqwest::Method;
    use serde_json::json;
    let admin = app.token_for("admin1", Role::Admin).await;
    let inspector = app.token_for("insp1", Role::Inspector).await;

    // JSON bodies, before and after authentication, in values and keys.
    for body in [
        json!({"username": "admin1\u{0}", "password": "x", "device_id": "d"}),
        json!({"username": "admin1", "password": "x\u{7}", "device_id": "d"}),
        json!({"username": "admin1", "password": "x", "device_id": "d", "n\u{0}": 1}),
        json!({"username": "admin1", "password": "x", "device_id": "d\u{85}"}),
    ] {
        let (s, b) = app
            .call(Method::POST, "/api/v1/auth/login", None, Some(body.clone()))
            .await;
        assert_error(s, &b, 422, "control_character");
    }
    // The raw escapes a client writes by hand are caught too (\b is U+0008).
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(r#"{"username":"a\b","password":"x","device_id":"d"}"#)
        .send()
        .await
        .unwrap();
    let s = res.status();
    assert_error(s, &res.json().await.unwrap(), 422, "control_character");
    // Tab, newline and CR are text: the login is merely wrong.
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin1\t\r\n", "password": "x", "device_id": "d"})),
        )
        .await;
    assert_error(s, &b, 401, "invalid_credentials");

    // An authenticated write is refused whole: nothing is created.
    let establishment = json!({
        "sign_name": "老王家常菜\u{0}", "licensed_name": "天津市老王餐饮管理有限公司",
        "license_no": "JY21201010000001", "category": "small_restaurant",
        "address": "天津市宝坻区南关大街1号", "town": "宝坻城区", "risk_grade": "C",
        "location": {"lng": 117.2949004832, "lat": 39.71845076, "crs": "gcj02"}
    });
    let (s, b) = app
        .post("/api/v1/establishments", &admin, establishment)
        .await;
    assert_error(s, &b, 422, "control_character");
    let (s, b) = app.get("/api/v1/establishments", &admin).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["total_count"], 0, "{b}");

    // The sync push body.
    let (s, b) = app
        .post(
            "/api/v1/sync?last_pulled_at=0",
            &inspector,
            json!({"changes": {"inspections": {"created": [], "updated": [
                {"id": uuid::Uuid::new_v4().to_string(), "notes": "\u{0}"}], "deleted": []}}}),
        )
        .await;
    assert_error(s, &b, 422, "control_character");

    // Query strings, percent-encoded.
    for path in [
        "/api/v1/establishments?q=%00",
        "/api/v1/establishments?town=%E5%AE%9D%00",
        "/api/v1/establishments?q=a&%01=b",
        "/api/v1/plans?page=1&x=%7F",
    ] {
        let (s, b) = app.get(path, &admin).await;
        assert_error(s, &b, 422, "control_character");
    }
    let (s, b) = app.get("/api/v1/establishments?q=%09", &admin).await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // Ids in paths: nothing can have such an id.
    for (path, token) in [
        ("/public/v1/plans/%00/draw", None),
        ("/public/v1/plans/%00/draw/record", None),
        ("/api/v1/establishments/%00", Some(&admin)),
        ("/api/v1/plans/a%00b", Some(&admin)),
        ("/api/v1/tasks/%1B", Some(&inspector)),
        ("/api/v1/checklists/%00/versions/1", Some(&admin)),
    ] {
        let (s, b) = app
            .call(Method::GET, path, token.map(String::as_str), None)
            .await;
        assert_error(s, &b, 404, "not_found");
    }

    // tus metadata values are text fields too.
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let res = app
        .client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&inspector)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "10")
        .header(
            "upload-metadata",
            format!("photo_id {},sha256 {}", b64("p\u{0}"), b64(&"0".repeat(64))),
        )
        .send()
        .await
        .unwrap();
    let s = res.status();
    assert_error(s, &res.json().await.unwrap(), 422, "control_character");
}

/// A caller without the role gets 403 whatever they sent: the role is checked before the
/// query string and the body are parsed (a lab user used to get 400/415/422).
async fn role_is_checked_before_the_request_is_parsed(app: TestApp) {
    let lab = app.token_for("lab1", Role::Lab).await;
    let admin = app.token_for("admin1", Role::Admin).await;
    let send = |method: reqwest::Method, path: &str, token: &str, ct: Option<&str>, body: &str| {
        let mut req = app
            .client
            .request(method, app.url(path))
            .bearer_auth(token)
            .body(body.to_string());
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            (status, res.json::<serde_json::Value>().await.unwrap())
        }
    };
    use reqwest::Method;
    let json = Some("application/json");
    for (method, path, ct, body) in [
        (Method::POST, "/api/v1/establishments", json, "[1,2,3]"),
        (Method::POST, "/api/v1/establishments", json, "{"),
        (
            Method::POST,
            "/api/v1/establishments",
            Some("text/plain"),
            "x",
        ),
        (Method::PUT, "/api/v1/establishments/x", json, "{}"),
        (Method::GET, "/api/v1/establishments?page=abc", None, ""),
        (Method::POST, "/api/v1/users", json, "{\"username\": 5}"),
        (Method::POST, "/api/v1/plans", json, "{}"),
        (Method::POST, "/api/v1/plans/x/draw", json, "{"),
        (Method::GET, "/api/v1/plans?page=-1", None, ""),
        (Method::POST, "/api/v1/conflicts", json, "{}"),
        (Method::POST, "/api/v1/checklists", json, "{}"),
        (
            Method::GET,
            "/api/v1/checklists/x/versions/not-a-number",
            None,
            "",
        ),
        (Method::POST, "/api/v1/tasks/x/cancel", json, "{}"),
        (Method::GET, "/api/v1/inspections?page=abc", None, ""),
        (
            Method::POST,
            "/api/v1/establishments/import?dry_run=maybe",
            Some("application/octet-stream"),
            "",
        ),
        (Method::POST, "/api/v1/sync?last_pulled_at=0", json, "{"),
        (Method::GET, "/api/v1/sync?last_pulled_at=abc", None, ""),
    ] {
        let (s, b) = send(method.clone(), path, &lab, ct, body).await;
        assert_eq!(s.as_u16(), 403, "{method} {path} as lab: {b}");
        assert_eq!(b["error"]["code"], "forbidden", "{method} {path}: {b}");
    }
    // The admin is not an inspector: sync refuses before parsing too.
    let (s, b) = send(
        Method::POST,
        "/api/v1/sync?last_pulled_at=0",
        &admin,
        json,
        "{",
    )
    .await;
    assert_error(s, &b, 403, "forbidden");
    // With the role, the same requests are judged on their content.
    let (s, b) = send(
        Method::POST,
        "/api/v1/establishments",
        &admin,
        json,
        "[1,2,3]",
    )
    .await;
    assert_error(s, &b, 422, "invalid_body");
    let (s, b) = send(
        Method::GET,
        "/api/v1/establishments?page=abc",
        &admin,
        None,
        "",
    )
    .await;
    assert_error(s, &b, 400, "bad_request");
}

/// A table with its header row and no data is refused like an empty file (the error table
/// says `invalid_table` covers "no rows"); it used to import nothing with 200.
async fn header_only_import_is_invalid_table(app: TestApp) {
    let admin = app.token_for("admin1", Role::Admin).await;
    let header = "牌匾名称,营业执照名称,统一社会信用代码,食品经营许可证编号,业态,经营地址,街道乡镇,风险等级,经度,纬度,坐标系,联系人,联系电话\n";
    for (body, dry_run) in [
        (header.as_bytes().to_vec(), false),
        (header.as_bytes().to_vec(), true),
        (Vec::new(), false),
    ] {
        let res = app
            .client
            .post(app.url(&format!("/api/v1/establishments/import?dry_run={dry_run}")))
            .bearer_auth(&admin)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .unwrap();
        let s = res.status();
        assert_error(s, &res.json().await.unwrap(), 422, "invalid_table");
    }
}
