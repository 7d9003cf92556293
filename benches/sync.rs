//! Sync benchmarks (`cargo bench --bench sync`; add FOODCHECK_BENCH_POSTGRES_URL to include
//! PostgreSQL). Figures go to BENCHMARKS.md.
//!
//! - push of 20 inspections × 35 answers (server time, one transaction);
//! - first pull of an inspector with 300 tasks, and an incremental pull with nothing new;
//! - 200 simulated devices syncing concurrently over HTTP against one server: errors, lost or
//!   duplicated records (counted in the database afterwards) and latency percentiles.

mod common;

use std::time::{Duration, Instant};

use common::fixtures::{
    inspection_push, inspector, plan_and_draw, published_template_40, registry, tasks_of,
};
use foodcheck::auth::Role;
use foodcheck::config::{Config, Secret};
use foodcheck::ops::sync::{pull, push, Syncer};
use serde_json::{json, Value};

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |p: f64| ms(v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]);
    (at(0.5), at(0.95), at(0.99))
}

/// The 抽样单 settings a push takes (the benchmark pushes no samples).
fn submit_settings() -> anyhow::Result<foodcheck::ops::sampling::SubmitSettings> {
    Ok(foodcheck::ops::sampling::SubmitSettings {
        zone: Default::default(),
        sample_no_prefix: foodcheck::sampling::number::Prefix::parse("FC")?,
        max_photo_bytes: foodcheck::sync::push::MAX_PHOTO_BYTES,
    })
}

async fn run(backend: &str) -> anyhow::Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let (url, cleanup) = common::fresh_db(backend, dir.path(), "syncbench").await?;
    let config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().into(),
        database_url: Some(Secret::new(url)),
        db_max_connections: 16,
        log_level: "error".into(),
        login_max_failures_per_ip: 100_000,
        ..Config::default()
    };
    let state = foodcheck::app::state(config).await?;
    let db = state.db.clone();
    let server = foodcheck::app::Server::bind(state).await?;
    let base = format!("http://{}", server.addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let (template_id, items) = published_template_40(&db, "bench-40").await?;

    // An inspector with 300 tasks (a pair inspecting 300 establishments).
    registry(&db, 300, "主城区", 1).await?;
    let alice = inspector(&db, "alice").await?;
    let bob = inspector(&db, "bob").await?;
    plan_and_draw(
        &db,
        &template_id,
        "主城区",
        &[alice.clone(), bob.clone()],
        300,
    )
    .await?;
    let who = Syncer {
        user_id: &alice,
        device_id: Some("bench-phone"),
    };
    let mut first = Vec::new();
    let mut body = Value::Null;
    for _ in 0..11 {
        let start = Instant::now();
        body = pull(&db, &who, None, 2, None).await?.body;
        first.push(start.elapsed());
    }
    first.remove(0);
    let n_tasks = body["changes"]["tasks"]["created"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    anyhow::ensure!(n_tasks == 300, "alice has {n_tasks} tasks");
    let ts = body["timestamp"].as_i64().unwrap_or(0);
    let mut incremental = Vec::new();
    for _ in 0..101 {
        let start = Instant::now();
        pull(&db, &who, Some(ts), 2, None).await?;
        incremental.push(start.elapsed());
    }
    incremental.remove(0);
    // Pushes of 20 inspections × 35 answers, each on fresh tasks.
    let tasks = tasks_of(&db, &alice).await?;
    let mut pushes = Vec::new();
    for chunk in tasks.chunks(20).take(11) {
        let body = inspection_push(chunk, &items, 35);
        let cursor = pull(&db, &who, None, 2, None).await?.body["timestamp"]
            .as_i64()
            .unwrap_or(0);
        let bytes = serde_json::to_vec(&body)?;
        let start = Instant::now();
        // Parsing the body is part of the push's server time.
        let parsed =
            foodcheck::sync::push::parse_slice(&bytes, foodcheck::sync::push::DEFAULT_MAX_RECORDS)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let ctx = foodcheck::audit::Ctx::new(
            foodcheck::audit::Actor::user(&alice, Role::Inspector, who.device_id),
            None,
        );
        let rejected = push(
            &db,
            &ctx,
            &who,
            cursor,
            parsed,
            &Default::default(),
            &submit_settings()?,
        )
        .await?;
        pushes.push(start.elapsed());
        anyhow::ensure!(rejected.is_empty(), "rejected: {:?}", rejected.first());
    }
    pushes.remove(0);

    #[cfg(feature = "bench-switches")]
    let audit_ab = audit_ab(&db, &template_id, &items).await?;

    // 200 devices over HTTP.
    registry(&db, 100, "负载镇", 2).await?;
    let mut load_users = Vec::new();
    for i in 0..200 {
        load_users.push(inspector(&db, &format!("device{i:03}")).await?);
    }
    plan_and_draw(&db, &template_id, "负载镇", &load_users, 100).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let before: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM answers")
        .fetch_one(db.pool())
        .await?;
    let start_all = Instant::now();
    let results = futures::future::join_all((0..200).map(|i| {
        let client = client.clone();
        let base = base.clone();
        let items = items.clone();
        async move { device(client, base, i, items).await }
    }))
    .await;
    let wall = start_all.elapsed();
    let mut latencies = Vec::new();
    let mut logins = Vec::new();
    let mut errors = 0usize;
    for r in results {
        match r {
            Ok((login, l)) => {
                logins.push(login);
                latencies.extend(l)
            }
            Err(e) => {
                errors += 1;
                eprintln!("device error: {e}");
            }
        }
    }
    let (insp,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM inspections i JOIN users u ON u.id = i.created_by WHERE u.username LIKE 'device%'",
    )
    .fetch_one(db.pool())
    .await?;
    let (dups,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM (SELECT inspection_id, item_code FROM answers GROUP BY inspection_id, item_code HAVING COUNT(*) > 1) d",
    )
    .fetch_one(db.pool())
    .await?;
    let after: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM answers")
        .fetch_one(db.pool())
        .await?;
    let _ = stop.send(());
    let _ = handle.await;
    db.close().await;
    common::drop_fresh(cleanup).await?;

    #[cfg(feature = "bench-switches")]
    let audit_rows = {
        let (on, off) = audit_ab;
        let (onm, onp, _) = stats(on.clone());
        let (offm, offp, _) = stats(off.clone());
        vec![
            format!("| push 20 × 35, audit events off (A/B, alternated) | {backend} | {offm:.2} ms | {offp:.2} ms | {} | | |", off.len()),
            format!(
                "| push 20 × 35, audit events on (A/B, alternated) | {backend} | {onm:.2} ms | {onp:.2} ms | {} | throughput ≥ 90 % of off | {:.1} % of off |",
                on.len(),
                100.0 * offm / onm
            ),
        ]
    };
    #[cfg(not(feature = "bench-switches"))]
    let audit_rows: Vec<String> = Vec::new();
    let (fm, fp, _) = stats(first);
    let (im, ip, _) = stats(incremental);
    let (pm, pp, _) = stats(pushes);
    anyhow::ensure!(!latencies.is_empty(), "no device completed");
    let (lm, lp95, lp99) = stats(latencies.clone());
    let (_, _, login99) = stats(logins);
    Ok(vec![
        format!("| push 20 inspections × 35 answers (server time) | {backend} | {pm:.2} ms | {pp:.2} ms | 10 | < 50 ms | {:.3} |", pm / 50.0),
        format!("| first pull, inspector with 300 tasks (server time) | {backend} | {fm:.2} ms | {fp:.2} ms | 10 | < 100 ms | {:.3} |", fm / 100.0),
        format!("| incremental pull, nothing new (server time) | {backend} | {im:.3} ms | {ip:.3} ms | 100 | < 5 ms | {:.3} |", im / 5.0),
        format!(
            "| 200 devices concurrently over HTTP (each: login, pull, push 1 inspection × 35 answers, pull) in {:.1} s: errors {errors}, inspections {insp}/200, answers +{}/7000, duplicate answers {dups}; sync request latency (login p99 {login99:.0} ms, argon2) | {backend} | {lm:.1} ms | p95 {lp95:.1} ms, **p99 {lp99:.1} ms** | {} | 0 errors, 0 lost, 0 duplicated | - |",
            wall.as_secs_f64(),
            after.0 - before.0,
            latencies.len()
        ),
    ]
    .into_iter()
    .chain(audit_rows)
    .collect())
}

/// The push's audit events on and off (`bench-switches`), in one run: 48 pushes of 20
/// inspections × 35 answers on fresh tasks, in the order on, off, off, on, … (so drift of the
/// shared machine falls on both), with the server's audit integrator running as deployed.
/// Server time per push, (on, off), the first of each dropped.
#[cfg(feature = "bench-switches")]
async fn audit_ab(
    db: &foodcheck::store::Db,
    template: &str,
    items: &[String],
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    use std::sync::atomic::Ordering;
    registry(db, 960, "审计镇", 3).await?;
    let carol = inspector(db, "carol").await?;
    let dave = inspector(db, "dave").await?;
    plan_and_draw(db, template, "审计镇", &[carol.clone(), dave.clone()], 960).await?;
    let who = Syncer {
        user_id: &carol,
        device_id: Some("ab-phone"),
    };
    let tasks = tasks_of(db, &carol).await?;
    anyhow::ensure!(tasks.len() == 960, "carol has {} tasks", tasks.len());
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for (i, chunk) in tasks.chunks(20).enumerate() {
        let audit = matches!(i % 4, 0 | 3);
        foodcheck::ops::sync::bench::PUSH_AUDIT.store(audit, Ordering::Relaxed);
        let body = inspection_push(chunk, items, 35);
        let cursor = pull(db, &who, None, 2, None).await?.body["timestamp"]
            .as_i64()
            .unwrap_or(0);
        let bytes = serde_json::to_vec(&body)?;
        let start = Instant::now();
        let parsed =
            foodcheck::sync::push::parse_slice(&bytes, foodcheck::sync::push::DEFAULT_MAX_RECORDS)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let ctx = foodcheck::audit::Ctx::new(
            foodcheck::audit::Actor::user(&carol, Role::Inspector, who.device_id),
            None,
        );
        let rejected = push(
            db,
            &ctx,
            &who,
            cursor,
            parsed,
            &Default::default(),
            &submit_settings()?,
        )
        .await?;
        let took = start.elapsed();
        anyhow::ensure!(rejected.is_empty(), "rejected: {:?}", rejected.first());
        if audit {
            on.push(took)
        } else {
            off.push(took)
        }
    }
    foodcheck::ops::sync::bench::PUSH_AUDIT.store(true, Ordering::Relaxed);
    on.remove(0);
    off.remove(0);
    Ok((on, off))
}

/// One device: log in, first pull, push one inspection with 35 answers, pull again.
async fn device(
    client: reqwest::Client,
    base: String,
    i: usize,
    items: Vec<String>,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let mut lat = Vec::new();
    let timed = |lat: &mut Vec<Duration>, start: Instant| lat.push(start.elapsed());
    let start = Instant::now();
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": format!("device{i:03}"), "password": "bench-password-1", "device_id": format!("phone-{i}")}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let login_time = start.elapsed();
    let token = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let start = Instant::now();
    let p: Value = client
        .get(format!(
            "{base}/api/v1/sync?last_pulled_at=null&schema_version=2"
        ))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    timed(&mut lat, start);
    let task = &p["changes"]["tasks"]["created"][0];
    let tasks = vec![(
        task["id"].as_str().unwrap_or_default().to_string(),
        task["establishment_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )];
    let body = inspection_push(&tasks, &items, 35);
    let start = Instant::now();
    let r: Value = client
        .post(format!(
            "{base}/api/v1/sync?last_pulled_at={}",
            p["timestamp"]
        ))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    timed(&mut lat, start);
    anyhow::ensure!(r == json!({}), "push refused: {r}");
    let start = Instant::now();
    client
        .get(format!(
            "{base}/api/v1/sync?last_pulled_at={}&schema_version=2",
            p["timestamp"]
        ))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?;
    timed(&mut lat, start);
    Ok((login_time, lat))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut rows = vec![
        "| benchmark | backend | median | p95 | runs | target | median / target |".to_string(),
        "|---|---|---|---|---|---|---|".to_string(),
    ];
    rows.extend(run("sqlite").await?);
    if std::env::var("FOODCHECK_BENCH_POSTGRES_URL").is_ok() {
        rows.extend(run("postgres").await?);
    }
    for r in rows {
        println!("{r}");
    }
    Ok(())
}
