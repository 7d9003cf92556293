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
