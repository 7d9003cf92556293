//! Ingest at city scale (issue 14): `cargo bench --bench ingest` (add
//! FOODCHECK_BENCH_POSTGRES_URL for PostgreSQL; FOODCHECK_BENCH_ONLY=sqlite|postgres keeps one;
//! FOODCHECK_BENCH_INGEST_SCALE=0.25 runs a quarter of the pushes). Figures go to BENCHMARKS.md.
//!
//! The release server runs as a child process over a fresh database; 128 inspectors hold
//! tokens (logged in before the clock starts). Each request is one push of one new inspection
//! with 35 answers and GPS, on its own task, at concurrency 1, 8, 32 and 128. Per level:
//! inspections per second, push latency p50/p99, and CPU per inspection: the server process,
//! plus on PostgreSQL the database processes serving this database (its backends and the WAL
//! writer), read from /proc.
//!
//! Raw baselines in the same run, same rows and bytes, so ratios survive a noisy machine:
//! plain SQLite (WAL, `synchronous=FULL`, one transaction per inspection, c=1) and plain
//! PostgreSQL inserts (one transaction per inspection, 32 connections).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fixtures::{
    inspection_push, inspector, plan_and_draw, published_template_40, registry,
};
use common::server::{ticks_per_second, Server};
use foodcheck::store::Db;
use serde_json::{json, Value};
use sqlx::Connection as _;

/// (concurrency, pushes measured).
const LEVELS: [(usize, usize); 4] = [(1, 300), (8, 800), (32, 1600), (128, 2560)];
/// Pushes before the first level (connections opened, caches warm), not measured.
const WARMUP: usize = 100;
const INSPECTORS: usize = 128;
const ANSWERS: usize = 35;

fn scale() -> f64 {
    std::env::var("FOODCHECK_BENCH_INGEST_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0)
}

fn scaled(n: usize) -> usize {
    ((n as f64 * scale()).round() as usize).max(10)
}

fn percentile(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1000.0
}

/// CPU nanoseconds of a whole process (every thread, live or exited), from the clock ticks of
/// /proc/PID/stat: for the server and this process, which run for seconds.
fn process_cpu_ns(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (ticks as f64 * 1e9 / ticks_per_second()) as u64
}

/// Nanoseconds a single-threaded process (a PostgreSQL backend) has run on a CPU (0 when it
/// is gone), from /proc/PID/schedstat: the clock ticks of /proc/PID/stat are truncated per
/// process, which loses most of the time of 32 backends that each run a few milliseconds.
fn cpu_ns_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The database's CPU as far as it serves this run: on PostgreSQL the backends connected to
/// the bench database and the WAL writer; nothing on SQLite (it runs inside the server).
struct DbCpu {
    conn: Option<sqlx::AnyConnection>,
    before: HashMap<u32, u64>,
}

impl DbCpu {
    async fn new(backend: &str, url: &str) -> anyhow::Result<DbCpu> {
        let conn = match backend {
            "postgres" => Some(sqlx::AnyConnection::connect(url).await?),
            _ => None,
        };
        Ok(DbCpu {
            conn,
            before: HashMap::new(),
        })
    }

    async fn pids(&mut self) -> anyhow::Result<Vec<u32>> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(Vec::new());
        };
        let rows: Vec<(i32,)> = sqlx::query_as(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             OR backend_type = 'walwriter'",
        )
        .fetch_all(conn)
        .await?;
        Ok(rows.into_iter().map(|(p,)| p as u32).collect())
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        self.before = self
            .pids()
            .await?
            .into_iter()
            .map(|p| (p, cpu_ns_of(p)))
            .collect();
        Ok(())
    }

    /// CPU nanoseconds since [`start`]; a backend that appeared meanwhile counts from zero.
    async fn ns(&mut self) -> anyhow::Result<u64> {
        let pids = self.pids().await?;
        Ok(pids
            .into_iter()
            .map(|p| cpu_ns_of(p).saturating_sub(self.before.get(&p).copied().unwrap_or(0)))
            .sum())
    }
}

/// One push to make: the device's token and the request body.
struct Job {
    token: String,
    body: Vec<u8>,
}

struct Level {
    c: usize,
    n: usize,
    errors: usize,
    wall: Duration,
    p50: f64,
    p99: f64,
    cpu_ms_per: f64,
}

impl Level {
    fn per_second(&self) -> f64 {
        self.n as f64 / self.wall.as_secs_f64()
    }
}

/// Pushes `jobs` at concurrency `c`, each with `last_pulled_at = cursor`.
async fn push_all(
    server: &Server,
    db_cpu: &mut DbCpu,
    client: &reqwest::Client,
    jobs: Arc<Vec<Job>>,
    cursor: i64,
    c: usize,
) -> anyhow::Result<Level> {
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{}/api/v1/sync?last_pulled_at={cursor}", server.base);
    db_cpu.start().await?;
    let server_before = process_cpu_ns(server.pid);
    let t = Instant::now();
    let workers = (0..c).map(|_| {
        let (jobs, next, client, url) = (jobs.clone(), next.clone(), client.clone(), url.clone());
        tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let start = Instant::now();
                let res = client
                    .post(&url)
                    .bearer_auth(&job.token)
                    .header("content-type", "application/json")
                    .body(job.body.clone())
                    .send()
                    .await;
                let ok = match res {
                    Ok(r) if r.status().is_success() => {
                        r.json::<Value>().await.ok() == Some(json!({}))
                    }
                    Ok(r) => {
                        eprintln!(
                            "push: {} {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        );
                        false
                    }
                    Err(e) => {
                        eprintln!("push: {e}");
                        false
                    }
                };
                lat.push(start.elapsed());
                errors += usize::from(!ok);
            }
            (lat, errors)
        })
    });
    let mut lat = Vec::new();
    let mut errors = 0;
    for w in futures::future::join_all(workers).await {
        let (l, e) = w?;
        lat.extend(l);
        errors += e;
    }
    let wall = t.elapsed();
    let cpu_ns = process_cpu_ns(server.pid) - server_before + db_cpu.ns().await?;
    let n = lat.len();
    Ok(Level {
        c,
        n,
        errors,
        wall,
        p50: percentile(&mut lat, 0.5),
        p99: percentile(&mut lat, 0.99),
        cpu_ms_per: cpu_ns as f64 / 1e6 / n as f64,
    })
}

/// The rows of one inspection as plain inserts: (inspection values, answers' values).
type RawRows = (Vec<Value>, Vec<Vec<Value>>);

fn raw_rows(body: &[u8]) -> anyhow::Result<RawRows> {
    let v: Value = serde_json::from_slice(body)?;
    let i = &v["changes"]["inspections"]["created"][0];
    let cols = [
        "id",
        "task_id",
        "establishment_id",
        "started_at",
        "lng",
        "lat",
        "gps_accuracy_m",
        "crs",
        "team",
        "representative_name",
    ];
    let inspection = cols.iter().map(|c| i[*c].clone()).collect();
    let answers = v["changes"]["answers"]["created"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    ["id", "inspection_id", "item_code", "status"]
                        .iter()
                        .map(|c| r[*c].clone())
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((inspection, answers))
}

const RAW_TABLES: [&str; 2] = [
    "CREATE TABLE raw_inspections (id TEXT PRIMARY KEY, task_id TEXT NOT NULL, \
     establishment_id TEXT NOT NULL, started_at BIGINT NOT NULL, lng DOUBLE PRECISION, \
     lat DOUBLE PRECISION, gps_accuracy_m DOUBLE PRECISION, crs TEXT, team TEXT, \
     representative_name TEXT, seq BIGINT NOT NULL)",
    "CREATE TABLE raw_answers (id TEXT PRIMARY KEY, inspection_id TEXT NOT NULL \
     REFERENCES raw_inspections (id), item_code TEXT NOT NULL, status TEXT NOT NULL, \
     seq BIGINT NOT NULL, UNIQUE (inspection_id, item_code))",
];

/// One inspection in one transaction, as plain inserts.
async fn raw_insert(
    conn: &mut sqlx::AnyConnection,
    sqlite: bool,
    (inspection, answers): &RawRows,
    seq: i64,
) -> anyhow::Result<()> {
    let mut tx = match sqlite {
        true => conn.begin_with("BEGIN IMMEDIATE").await?,
        false => conn.begin().await?,
    };
    let mut q = sqlx::query(
        "INSERT INTO raw_inspections (id, task_id, establishment_id, started_at, lng, lat, \
         gps_accuracy_m, crs, team, representative_name, seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    );
    for (k, v) in inspection.iter().enumerate() {
        q = match k {
            3 => q.bind(v.as_i64()),
            4..=6 => q.bind(v.as_f64()),
            _ => q.bind(v.as_str().map(str::to_string)),
        };
    }
    q.bind(seq).execute(&mut *tx).await?;
    let values = (0..answers.len())
        .map(|k| {
            let b = k * 5;
            format!(
                "(${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO raw_answers (id, inspection_id, item_code, status, seq) VALUES {values}"
    );
    let mut q = sqlx::query(&sql);
    for a in answers {
        for v in a {
            q = q.bind(v.as_str().map(str::to_string));
        }
        q = q.bind(seq);
    }
    q.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The raw baseline: `rows` inserted at concurrency `c` over `url`, inspections per second and
/// the database's CPU per inspection (on SQLite the inserting process's, here this one).
async fn raw_baseline(
    backend: &str,
    url: &str,
    rows: Vec<RawRows>,
    c: usize,
) -> anyhow::Result<(f64, f64)> {
    let sqlite = backend == "sqlite";
    let mut setup = sqlx::AnyConnection::connect(url).await?;
    if sqlite {
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&mut setup)
            .await?;
    }
    for t in RAW_TABLES {
        sqlx::query(t).execute(&mut setup).await?;
    }
    let mut db_cpu = DbCpu::new(backend, url).await?;
    let rows = Arc::new(rows);
    let next = Arc::new(AtomicUsize::new(0));
    let mut conns = Vec::new();
    for _ in 0..c {
        let mut conn = sqlx::AnyConnection::connect(url).await?;
        if sqlite {
            sqlx::query("PRAGMA synchronous = FULL")
                .execute(&mut conn)
                .await?;
            sqlx::query("PRAGMA busy_timeout = 10000")
                .execute(&mut conn)
                .await?;
        }
        conns.push(conn);
    }
    db_cpu.start().await?;
    let self_before = process_cpu_ns(std::process::id());
    let t = Instant::now();
    let workers = conns.into_iter().map(|mut conn| {
        let (rows, next) = (rows.clone(), next.clone());
        tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(r) = rows.get(i) else { break };
                raw_insert(&mut conn, sqlite, r, i as i64).await?;
            }
            // Kept open until the database's CPU is read: a closed connection's backend is
            // gone, and with it the CPU it used.
            anyhow::Ok(conn)
        })
    });
    let mut open = Vec::new();
    for w in futures::future::join_all(workers).await {
        open.push(w??);
    }
    let wall = t.elapsed();
    let cpu_ns = if sqlite {
        process_cpu_ns(std::process::id()) - self_before
    } else {
        db_cpu.ns().await?
    };
    drop(open);
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM raw_answers")
        .fetch_one(&mut setup)
        .await?;
    anyhow::ensure!(
        count as usize == rows.len() * ANSWERS,
        "raw baseline: {count} answers stored"
    );
    let n = rows.len() as f64;
    Ok((n / wall.as_secs_f64(), cpu_ns as f64 / 1e6 / n))
}

async fn run(backend: &str) -> anyhow::Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let (url, pg) = common::fresh_db(backend, dir.path(), "ingest").await?;
    let out = run_in(backend, &url, dir.path()).await;
    common::drop_fresh(pg).await?;
    out
}

async fn run_in(backend: &str, url: &str, dir: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let levels: Vec<(usize, usize)> = LEVELS.iter().map(|&(c, n)| (c, scaled(n))).collect();
    let warmup = scaled(WARMUP);
    let total = warmup + levels.iter().map(|l| l.1).sum::<usize>();

    // The fixture, written in-process: a published 40-item template, a registry of one
    // establishment per push, 128 inspectors and a drawn plan (teams of two).
    let started = Instant::now();
    let db = Db::connect(url, 4).await?;
    db.migrate().await?;
    let (template_id, items) = published_template_40(&db, "ingest-40").await?;
    registry(&db, total, "入库镇", 14).await?;
    let mut users = Vec::new();
    for i in 0..INSPECTORS {
        users.push(inspector(&db, &format!("ingest{i:03}")).await?);
    }
    plan_and_draw(&db, &template_id, "入库镇", &users, total as u32).await?;
    // Each task once, pushed by its first member.
    let tasks: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT t.id, t.establishment_id, MIN(m.inspector_id) FROM tasks t \
         JOIN task_members m ON m.task_id = t.id GROUP BY t.id, t.establishment_id ORDER BY t.id",
    )
    .fetch_all(db.pool())
    .await?;
    anyhow::ensure!(tasks.len() == total, "{} tasks drawn", tasks.len());
    db.close().await;
    eprintln!(
        "{backend}: {total} tasks for {INSPECTORS} inspectors in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let server = Server::start(url, dir).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let mut tokens: HashMap<String, String> = HashMap::new();
    let mut cursor = 0;
    for (i, user) in users.iter().enumerate() {
        let login: Value = client
            .post(format!("{}/api/v1/auth/login", server.base))
            .json(
                &json!({"username": format!("ingest{i:03}"), "password": "bench-password-1",
                "device_id": format!("ingest-phone-{i}")}),
            )
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = login["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if i == 0 {
            let pull: Value = client
                .get(format!(
                    "{}/api/v1/sync?last_pulled_at=null&schema_version=7",
                    server.base
                ))
                .bearer_auth(&token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            cursor = pull["timestamp"].as_i64().unwrap_or(0);
        }
        tokens.insert(user.clone(), token);
    }
    // Bodies made before the clock starts: one inspection of 35 answers per push.
    let mut jobs: Vec<Job> = Vec::with_capacity(total);
    let mut bytes = 0usize;
    for (task, est, user) in &tasks {
        let body = serde_json::to_vec(&inspection_push(
            &[(task.clone(), est.clone())],
            &items,
            ANSWERS,
        ))?;
        bytes += body.len();
        jobs.push(Job {
            token: tokens[user].clone(),
            body,
        });
    }
    let raw_sqlite_rows: Vec<RawRows> = jobs
        .iter()
        .take(levels[0].1)
        .map(|j| raw_rows(&j.body))
        .collect::<anyhow::Result<_>>()?;
    let raw_pg_rows: Vec<RawRows> = jobs
        .iter()
        .take(levels[2].1)
        .map(|j| raw_rows(&j.body))
        .collect::<anyhow::Result<_>>()?;
    eprintln!(
        "{backend}: {} bytes of JSON per push on average",
        bytes / jobs.len()
    );

    let mut db_cpu = DbCpu::new(backend, url).await?;
    let mut jobs = jobs.into_iter();
    let mut take = |n: usize| Arc::new(jobs.by_ref().take(n).collect::<Vec<_>>());
    push_all(&server, &mut db_cpu, &client, take(warmup), cursor, 8).await?;
    let mut results = Vec::new();
    for &(c, n) in &levels {
        let l = push_all(&server, &mut db_cpu, &client, take(n), cursor, c).await?;
        eprintln!(
            "{backend} c={c}: {n} pushes in {:.2} s, {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, CPU {:.2} ms per inspection, {} errors",
            l.wall.as_secs_f64(),
            l.per_second(),
            l.p50,
            l.p99,
            l.cpu_ms_per,
            l.errors
        );
        results.push(l);
    }
    server.stop().await;

    // What the server holds: every push once, nothing else.
    let db = Db::connect(url, 2).await?;
    let (inspections, answers, dups): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM inspections), (SELECT COUNT(*) FROM answers), \
         (SELECT COUNT(*) FROM (SELECT inspection_id, item_code FROM answers \
          GROUP BY inspection_id, item_code HAVING COUNT(*) > 1) d)",
    )
    .fetch_one(db.pool())
    .await?;
    db.close().await;
    let errors: usize = results.iter().map(|l| l.errors).sum();
    let stored_ok = inspections as usize == total - errors
        && answers as usize == (total - errors) * ANSWERS
        && dups == 0;

    // The raw baselines, after the server stopped (the same database server, a fresh table).
    let raw_url = match backend {
        "sqlite" => format!("sqlite://{}?mode=rwc", dir.join("raw.db").display()),
        _ => url.to_string(),
    };
    let (raw_rate, raw_cpu, raw_c) = match backend {
        "sqlite" => {
            let (r, cpu) = raw_baseline(backend, &raw_url, raw_sqlite_rows, 1).await?;
            (r, cpu, 1)
        }
        _ => {
            let (r, cpu) = raw_baseline(backend, &raw_url, raw_pg_rows, 32).await?;
            (r, cpu, 32)
        }
    };
    eprintln!(
        "{backend} raw baseline (c={raw_c}): {raw_rate:.0}/s, CPU {raw_cpu:.2} ms per inspection"
    );

    let mut rows = Vec::new();
    for l in &results {
        rows.push(format!(
            "| {backend} | foodcheck push, c={} | {} | {:.0} | {:.1} ms | {:.1} ms | {:.2} ms | {:.2}× | {} |",
            l.c,
            l.n,
            l.per_second(),
            l.p50,
            l.p99,
            l.cpu_ms_per,
            l.per_second() / raw_rate,
            l.errors
        ));
    }
    rows.push(format!(
        "| {backend} | raw inserts, one transaction per inspection, c={raw_c} | {} | {raw_rate:.0} | | | {raw_cpu:.2} ms | 1.00× | 0 |",
        if raw_c == 1 { levels[0].1 } else { levels[2].1 }
    ));
    rows.push(format!(
        "| {backend} | stored after the run: {inspections} inspections, {answers} answers, {dups} duplicated (expected {} and {}) | | | | | | | {} |",
        total - errors,
        (total - errors) * ANSWERS,
        if stored_ok { "✓" } else { "✗" }
    ));
    anyhow::ensure!(stored_ok, "{backend}: the server lost or duplicated pushes");
    Ok(rows)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut rows = vec![
        "| backend | what | inspections | per second | p50 | p99 | CPU per inspection (server + database) | vs raw baseline | errors |".to_string(),
        "|---|---|---|---|---|---|---|---|---|".to_string(),
    ];
    for backend in common::backends() {
        rows.extend(run(backend).await?);
    }
    for r in rows {
        println!("{r}");
    }
    Ok(())
}
