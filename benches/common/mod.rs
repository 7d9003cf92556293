//! Shared by the benchmark programs (each includes it with `mod common;`).

use uuid::Uuid;

// Not every benchmark starts a server, nor uses all of it.
#[allow(dead_code)]
pub mod server;

// Only the sync and ingest benchmarks build these.
#[allow(dead_code)]
pub mod fixtures;

/// A fresh database URL for one benchmark run: a SQLite file in `dir`, or a new PostgreSQL
/// database (`fc_<prefix>_<random>`) on `FOODCHECK_BENCH_POSTGRES_URL`, returned with
/// (admin URL, database name) so the caller can drop it afterwards.
pub async fn fresh_db(
    backend: &str,
    dir: &std::path::Path,
    prefix: &str,
) -> anyhow::Result<(String, Option<(String, String)>)> {
    if backend == "sqlite" {
        return Ok((
            format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()),
            None,
        ));
    }
    let admin = std::env::var("FOODCHECK_BENCH_POSTGRES_URL")?;
    sqlx::any::install_default_drivers();
    let name = format!("fc_{prefix}_{}", &Uuid::new_v4().simple().to_string()[..8]);
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let server = admin
        .rsplit_once('/')
        .map(|(s, _)| s.to_string())
        .unwrap_or(admin.clone());
    Ok((format!("{server}/{name}"), Some((admin, name))))
}

/// Drops the PostgreSQL database [`fresh_db`] made (nothing for SQLite: its file goes with the
/// temporary directory).
pub async fn drop_fresh(pg: Option<(String, String)>) -> anyhow::Result<()> {
    if let Some((admin, name)) = pg {
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

/// The backends to run: SQLite, and PostgreSQL when `FOODCHECK_BENCH_POSTGRES_URL` is set;
/// `FOODCHECK_BENCH_ONLY=sqlite|postgres` keeps one.
#[allow(dead_code)] // not every benchmark picks its backends this way
pub fn backends() -> Vec<&'static str> {
    let only = std::env::var("FOODCHECK_BENCH_ONLY").ok();
    let mut out = Vec::new();
    if only.as_deref() != Some("postgres") {
        out.push("sqlite");
    }
    if std::env::var("FOODCHECK_BENCH_POSTGRES_URL").is_ok() && only.as_deref() != Some("sqlite") {
        out.push("postgres");
    }
    out
}
