// The integration suite runs every test on SQLite, and on PostgreSQL as well when
// FOODCHECK_TEST_POSTGRES_URL is set at build time. Without it the PostgreSQL variants show as
// "ignored" (honestly skipped), not as passed.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(foodcheck_pg_tests)");
    println!("cargo::rerun-if-env-changed=FOODCHECK_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("FOODCHECK_TEST_POSTGRES_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=foodcheck_pg_tests");
    }
}
