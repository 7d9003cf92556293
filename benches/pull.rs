//! First-pull benchmark (`cargo bench --bench pull`; add FOODCHECK_BENCH_POSTGRES_URL to include
//! PostgreSQL, FOODCHECK_BENCH_PULL_SCALE=0.1 for a quick run). Figures go to BENCHMARKS.md.
//!
//! - An inspector with 50,000 tasks and 10,000 inspections × 35 answers, and one with 12,500
//!   tasks and 2,500 inspections (time linear in the answer), pull for the first time from the
//!   release server (a child process): answer size, time, time to the first byte, and the
//!   server's RSS growth (VmHWM after the pull minus VmRSS before, the mark reset through
//!   /proc/PID/clear_refs).
//! - Plan stability: 200 inspectors with a few tasks each pull for the first time, 32 at once,
//!   right after the bulk fill: on PostgreSQL with autovacuum off on the synced tables and no
//!   `ANALYZE` after the inspections and answers went in (the planner knows nothing of them).
//!   Errors and per-pull latency.
//!
//! The inspections and answers are copies of one pushed inspection, made with SQL (a push per
//! inspection would only measure pushes).

mod common;

use std::time::{Duration, Instant};

use common::fixtures::{inspector, plan_and_draw, published_template_40, registry};
use common::server::Server;
use foodcheck::auth::Role;
use foodcheck::ops::sync::{push, Syncer};
use foodcheck::store::Db;
use futures::StreamExt;
use serde_json::{json, Value};

fn scaled(n: usize) -> usize {
    let scale: f64 = std::env::var("FOODCHECK_BENCH_PULL_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * scale).round() as usize).max(1)
}

/// The synced tables: autovacuum (and so autoanalyze) off on them for the PostgreSQL run.
const SYNCED: [&str; 8] = [
    "tasks",
    "task_members",
    "establishments",
    "inspections",
    "answers",
    "photos",
    "reviews",
    "sync_tombstones",
];

async fn columns(db: &Db, table: &str) -> anyhow::Result<Vec<String>> {
    let sql = if db.backend() == foodcheck::store::Backend::Sqlite {
        format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid")
    } else {
        format!(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = '{table}' \
             AND table_schema = current_schema() ORDER BY ordinal_position"
        )
    };
    let rows: Vec<(String,)> = sqlx::query_as(&sql).fetch_all(db.pool()).await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Copies inspection `src` (with its answers) onto the first `n` tasks of `user` (except
/// `skip`, the source's own task), the copies' ids made of the source's, `tag` and a number.
/// Returns the copies made.
async fn copy_inspection(
    db: &Db,
    src: &str,
    (user, tag): (&str, &str),
    skip: &str,
    n: usize,
) -> anyhow::Result<u64> {
    let tasks = "SELECT t.id AS task_id, t.establishment_id, ROW_NUMBER() OVER (ORDER BY t.id) AS i \
                 FROM tasks t JOIN task_members m ON m.task_id = t.id WHERE m.inspector_id = $1 AND t.id <> $2";
    let cols = columns(db, "inspections").await?;
    let values: Vec<String> = cols
        .iter()
        .map(|c| match c.as_str() {
            "id" => "s.id || '-' || $5 || '-' || CAST(k.i AS TEXT)".to_string(),
            "task_id" => "k.task_id".to_string(),
            "establishment_id" => "k.establishment_id".to_string(),
            c => format!("s.{c}"),
        })
        .collect();
    let made = sqlx::query(&format!(
        "INSERT INTO inspections ({}) SELECT {} FROM inspections s, ({tasks}) k WHERE s.id = $3 AND k.i <= $4",
        cols.join(", "),
        values.join(", ")
    ))
    .bind(user)
    .bind(skip)
    .bind(src)
    .bind(n as i64)
    .bind(tag)
    .execute(db.pool())
    .await?
    .rows_affected();
    let cols = columns(db, "answers").await?;
    let values: Vec<String> = cols
        .iter()
        .map(|c| match c.as_str() {
            "id" => "a.id || '-' || $5 || '-' || CAST(k.i AS TEXT)".to_string(),
            "inspection_id" => {
                "a.inspection_id || '-' || $5 || '-' || CAST(k.i AS TEXT)".to_string()
            }
            c => format!("a.{c}"),
        })
        .collect();
    sqlx::query(&format!(
        "INSERT INTO answers ({}) SELECT {} FROM answers a, ({tasks}) k WHERE a.inspection_id = $3 AND k.i <= $4",
        cols.join(", "),
        values.join(", ")
    ))
    .bind(user)
    .bind(skip)
    .bind(src)
    .bind(n as i64)
    .bind(tag)
    .execute(db.pool())
    .await?;
    Ok(made)
}

async fn login(client: &reqwest::Client, base: &str, user: &str) -> anyhow::Result<String> {
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": user, "password": "bench-password-1", "device_id": format!("{user}-phone")}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

struct Pulled {
    bytes: u64,
    took: Duration,
    first_byte: Duration,
    rss_before_kib: u64,
    peak_kib: u64,
}

/// A first pull, read as it arrives (nothing kept), with the server's RSS around it.
async fn first_pull(
    client: &reqwest::Client,
    server: &Server,
    token: &str,
) -> anyhow::Result<Pulled> {
    let rss_before_kib = server.reset_peak();
    let start = Instant::now();
    let res = client
        .get(format!(
            "{}/api/v1/sync?last_pulled_at=null&schema_version=7&migration=null",
            server.base
        ))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?;
    let mut body = res.bytes_stream();
    let mut bytes = 0u64;
    let mut first_byte = None;
    // The end of the answer, to check it is whole.
    let mut tail: Vec<u8> = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        first_byte.get_or_insert_with(|| start.elapsed());
        bytes += chunk.len() as u64;
        tail.extend_from_slice(&chunk[chunk.len().saturating_sub(64)..]);
        let keep = tail.len().saturating_sub(64);
        tail.drain(..keep);
    }
    let took = start.elapsed();
    anyhow::ensure!(tail.ends_with(b"}"), "the answer is not whole");
    Ok(Pulled {
        bytes,
        took,
        first_byte: first_byte.unwrap_or(took),
        rss_before_kib,
        peak_kib: server.peak(),
    })
}

fn percentile(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1000.0
}

async fn run(backend: &str) -> anyhow::Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let (url, pg) = common::fresh_db(backend, dir.path(), "pullbench").await?;
    let out = run_in(backend, &url, dir.path()).await;
    common::drop_fresh(pg).await?;
    out
}

async fn run_in(backend: &str, url: &str, dir: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let big = scaled(50_000);
    let small = scaled(12_500);
    let crowd_tasks = scaled(500);
    let crowd = 200;
    let started = Instant::now();
    let db = Db::connect(url, 4).await?;
    db.migrate().await?;
    if backend == "postgres" {
        for t in SYNCED {
            sqlx::query(&format!(
                "ALTER TABLE {t} SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)"
            ))
            .execute(db.pool())
            .await?;
        }
    }
    let (template_id, items) = published_template_40(&db, "pull-40").await?;
    let alice = inspector(&db, "alice").await?;
    let bob = inspector(&db, "bob").await?;
    let carol = inspector(&db, "carol").await?;
    let dave = inspector(&db, "dave").await?;
    let mut crowd_users = Vec::new();
    for i in 0..crowd {
        crowd_users.push(inspector(&db, &format!("crowd{i:03}")).await?);
    }
    // A plan draws at most 10,000 establishments: one plan per town of at most that many.
    let mut seed = 20;
    for (name, n, team) in [
        ("大镇", big, vec![alice.clone(), bob]),
        ("小镇", small, vec![carol.clone(), dave]),
        ("众镇", crowd_tasks, crowd_users.clone()),
    ] {
        let mut left = n;
        while left > 0 {
            let k = left.min(10_000);
            seed += 1;
            let town = format!("{name}{seed}");
            registry(&db, k, &town, seed).await?;
            plan_and_draw(&db, &template_id, &town, &team, k as u32).await?;
            left -= k;
        }
    }

    // One real inspection of 35 answers, pushed on one of carol's tasks, then copied.
    let (task, est): (String, String) = sqlx::query_as(
        "SELECT t.id, t.establishment_id FROM tasks t JOIN task_members m ON m.task_id = t.id \
         WHERE m.inspector_id = $1 ORDER BY t.id LIMIT 1",
    )
    .bind(&carol)
    .fetch_one(db.pool())
    .await?;
    let nobody = inspector(&db, "nobody").await?;
    let who = Syncer {
        user_id: &nobody,
        device_id: Some("bench"),
    };
    let cursor = foodcheck::ops::sync::pull(&db, &who, None, 7, None)
        .await?
        .body["timestamp"]
        .as_i64()
        .unwrap_or(0);
    let body = common::fixtures::inspection_push(&[(task.clone(), est)], &items, 35);
    let src = body["changes"]["inspections"]["created"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let parsed = foodcheck::sync::push::parse_slice(
        &serde_json::to_vec(&body)?,
        foodcheck::sync::push::DEFAULT_MAX_RECORDS,
    )
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let carol_who = Syncer {
        user_id: &carol,
        device_id: Some("carol-seed"),
    };
    let ctx = foodcheck::audit::Ctx::new(
        foodcheck::audit::Actor::user(&carol, Role::Inspector, carol_who.device_id),
        None,
    );
    let settings = foodcheck::ops::sampling::SubmitSettings {
        zone: Default::default(),
        sample_no_prefix: foodcheck::sampling::number::Prefix::parse("FC")?,
        max_photo_bytes: foodcheck::sync::push::MAX_PHOTO_BYTES,
    };
    let rejected = push(
        &db,
        &ctx,
        &carol_who,
        cursor,
        parsed,
        &Default::default(),
        &settings,
    )
    .await?;
    anyhow::ensure!(rejected.is_empty(), "rejected: {:?}", rejected.first());
    let big_insp = copy_inspection(&db, &src, (&alice, "a"), "", big / 5).await?;
    let small_insp = 1 + copy_inspection(&db, &src, (&carol, "c"), &task, small / 5 - 1).await?;
    let mut crowd_insp = 0;
    for (i, u) in crowd_users.iter().enumerate() {
        // A few inspections per crowd inspector (their tasks overlap: teams of two).
        crowd_insp += copy_inspection(&db, &src, (u, &format!("x{i}")), "", 2).await?;
    }
    let (answers,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM answers")
        .fetch_one(db.pool())
        .await?;
    if std::env::var("FOODCHECK_BENCH_SERVER_BIN").is_ok() {
        // Another build (e.g. the one before streaming pulls, for a before/after): one made
        // before migration 0039 refuses a database that has it, and only needs it dropped.
        sqlx::query("DROP INDEX IF EXISTS sync_tombstones_task")
            .execute(db.pool())
            .await?;
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 39")
            .execute(db.pool())
            .await?;
    }
    db.close().await;
    eprintln!(
        "{backend}: filled in {:.1} s ({big} + {small} + {crowd_tasks} tasks, {big_insp} + {small_insp} + {crowd_insp} inspections, {answers} answers; no ANALYZE after the copies)",
        started.elapsed().as_secs_f64()
    );

    let server = Server::start(url, dir).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let mut lines = Vec::new();
    for (user, tasks, inspections) in [("carol", small, small_insp), ("alice", big, big_insp)] {
        let token = login(&client, &server.base, user).await?;
        let p = first_pull(&client, &server, &token).await?;
        let growth = p.peak_kib.saturating_sub(p.rss_before_kib) as f64 / 1024.0;
        lines.push(format!(
            "| first pull, {tasks} tasks, {inspections} inspections × 35 answers | {backend} | {:.1} MB | {:.2} s | {:.0} ms | {:.1} MB/s | {:.1} MB | {growth:.1} MB |",
            p.bytes as f64 / 1e6,
            p.took.as_secs_f64(),
            p.first_byte.as_secs_f64() * 1000.0,
            p.bytes as f64 / 1e6 / p.took.as_secs_f64(),
            p.rss_before_kib as f64 / 1024.0,
        ));
    }

    // Many devices' first pulls right after the fill, 32 at once.
    let mut tokens = Vec::new();
    for i in 0..crowd {
        tokens.push(login(&client, &server.base, &format!("crowd{i:03}")).await?);
    }
    let start_all = Instant::now();
    let results: Vec<anyhow::Result<Duration>> = futures::stream::iter(tokens)
        .map(|token| {
            let client = client.clone();
            let base = server.base.clone();
            async move {
                let start = Instant::now();
                let res = client
                    .get(format!(
                        "{base}/api/v1/sync?last_pulled_at=null&schema_version=7&migration=null"
                    ))
                    .bearer_auth(&token)
                    .send()
                    .await?
                    .error_for_status()?;
                let body: Value = res.json().await?;
                anyhow::ensure!(body["timestamp"].is_i64(), "no timestamp");
                Ok(start.elapsed())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let wall = start_all.elapsed();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for r in results {
        match r {
            Ok(d) => latencies.push(d),
            Err(e) => {
                errors += 1;
                eprintln!("pull error: {e}");
            }
        }
    }
    let stale = if backend == "postgres" {
        "autovacuum off, no ANALYZE"
    } else {
        "no ANALYZE"
    };
    if !latencies.is_empty() {
        lines.push(format!(
            "| {crowd} devices' first pulls, 32 at once ({stale}) | {backend} | {errors} errors | p50 {:.1} ms | p99 {:.1} ms | {:.0} pulls/s | | |",
            percentile(&mut latencies, 0.5),
            percentile(&mut latencies, 0.99),
            crowd as f64 / wall.as_secs_f64(),
        ));
    }
    server.stop().await;
    Ok(lines)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut lines = Vec::new();
    for backend in common::backends() {
        lines.extend(run(backend).await?);
    }
    println!(
        "first pulls (release server, this machine, {})",
        chrono::Utc::now().format("%Y-%m-%d")
    );
    println!(
        "| what | backend | answer | time | first byte | rate | server RSS before | RSS growth |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for l in lines {
        println!("{l}");
    }
    Ok(())
}
