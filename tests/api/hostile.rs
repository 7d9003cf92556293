//! Hostile input and hostile environments (issue 9, items 18–21, 23, 24): the caller's
//! environment, zip bombs, formula cells, slow clients, published redraw reasons, the bureau's
//! time zone.

use foodcheck::config::Config;

use crate::common::TestApp;

both_backends!(test_servers_take_nothing_from_the_caller_environment);

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
