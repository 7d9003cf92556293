//! Audit log benchmarks (`cargo bench --bench audit`; FOODCHECK_BENCH_POSTGRES_URL adds
//! PostgreSQL; FOODCHECK_BENCH_AUDIT_ENTRIES sets the log size, default 1,000,000). Figures
//! go to BENCHMARKS.md.
//!
//! - integration throughput: 1,000,000 pending entries sequenced, chained and added to the tree;
//! - `audit verify` (the use case the CLI runs) over all of them against a signed checkpoint;
//! - inclusion and consistency proof generation for random entries of the 1,000,000;
//! - a push-shaped write transaction (20 inspections and 700 answers, as the sync push
//!   benchmark pushes) with and without the 40 audit events the push records for that,
//!   appended in it and their integration charged to the same round; rounds alternated.

mod common;

use std::time::{Duration, Instant};

use foodcheck::audit::checkpoint::{NoteSigner, NoteVerifier};
use foodcheck::audit::{Action, Actor, Ctx, Event, RecordKind};
use foodcheck::auth::Role;
use foodcheck::ops;
use foodcheck::store::{self, Db};
use uuid::Uuid;

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1000.0
}

/// `n` pending entries shaped like real ones (a user, a request, two changed fields).
async fn fill(db: &Db, n: u64) -> anyhow::Result<()> {
    let backend = db.backend();
    let chunk = 1000u64;
    let mut done = 0;
    let mut tx = db.begin_write().await?;
    while done < n {
        let rows = chunk.min(n - done) as usize;
        let sql = format!(
            "INSERT INTO audit_events (at, actor_id, actor_role, device_id, request_id, action, \
             record_type, record_id, changes) VALUES {}",
            store::placeholders(backend, rows, 9)
        );
        let mut q = sqlx::query(&sql);
        for i in 0..rows as u64 {
            let k = done + i;
            q = q
                .bind(1_733_000_000_000i64 + k as i64)
                .bind(format!("{:08x}-0000-4000-8000-000000000000", k % 200))
                .bind("inspector")
                .bind(format!("device-{}", k % 200))
                .bind(Uuid::new_v4().to_string())
                .bind("answers_changed")
                .bind("inspection")
                .bind(Uuid::new_v4().to_string())
                .bind(format!(
                    "[{{\"field\":\"status\",\"before\":\"pass\",\"after\":\"fail\"}},\
                     {{\"field\":\"note\",\"before\":null,\"after\":\"现场发现问题 {k}\"}}]"
                ));
        }
        q.execute(tx.conn()).await?;
        done += rows as u64;
        if done % 100_000 == 0 {
            tx.commit().await?;
            tx = db.begin_write().await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// One push-shaped write transaction: 20 inspections and 700 answers, with or without the
/// audit events the sync push records for them.
async fn push_like(db: &Db, with_audit: bool) -> anyhow::Result<()> {
    let backend = db.backend();
    let mut tx = db.begin_write().await?;
    let body = "{\"status\":\"pass\",\"note\":null,\"item_code\":\"1.1\",\"inspection_id\":\"x\"}";
    for rows in [20usize, 350, 350] {
        let sql = format!(
            "INSERT INTO bench_push (id, body) VALUES {}",
            store::placeholders(backend, rows, 2)
        );
        let mut q = sqlx::query(&sql);
        for _ in 0..rows {
            q = q.bind(Uuid::new_v4().to_string()).bind(body);
        }
        q.execute(tx.conn()).await?;
    }
    if with_audit {
        // What the sync push records for it (src/sync/events.rs): per inspection one
        // `inspection_created` with every field and one `answers_changed` whose `status` change
        // maps every item code.
        let ctx = Ctx::new(
            Actor::user("bench-user", Role::Inspector, Some("bench-device")),
            Some(Uuid::new_v4().to_string()),
        );
        let mut evs = Vec::with_capacity(40);
        for _ in 0..20 {
            let id = Uuid::new_v4().to_string();
            evs.push(
                Event::new(Action::InspectionCreated, RecordKind::Inspection, &id).created(
                    &serde_json::json!({"id": id, "task_id": Uuid::new_v4().to_string(),
                        "establishment_id": Uuid::new_v4().to_string(), "started_at": 1_710_000_000_000i64,
                        "finished_at": null, "lng": 117.29, "lat": 39.71, "gps_accuracy_m": 10.0,
                        "crs": "gcj02", "team": "[{\"name\":\"a\",\"badge_no\":\"1\"},{\"name\":\"b\",\"badge_no\":\"2\"}]",
                        "representative_name": "王", "representative_signed": true,
                        "representative_refused": false, "declared_result": null, "submitted": false}),
                ),
            );
            // The compact shape: one `status` change mapping each item code (35).
            let mut answers = Event::new(Action::AnswersChanged, RecordKind::Inspection, &id);
            let codes = (0..35).map(|item| format!("{}.{}", item / 5 + 1, item % 5 + 1));
            answers.changes.push(foodcheck::audit::Change {
                field: "status".into(),
                before: codes
                    .clone()
                    .map(|c| (c, serde_json::Value::Null))
                    .collect(),
                after: codes.map(|c| (c, serde_json::json!("pass"))).collect(),
            });
            evs.push(answers);
        }
        store::audit::append(tx.conn(), &ctx, &evs).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn run(backend: &str, n: u64) -> anyhow::Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let (url, cleanup) = common::fresh_db(backend, dir.path(), "auditbench").await?;
    let db = Db::connect(&url, 8).await?;
    db.migrate().await?;
    let signer = NoteSigner::from_seed("bench/audit", [5; 32])?;
    let key = NoteVerifier::parse(&signer.verifier_key()).map_err(anyhow::Error::msg)?;
    let mut out = Vec::new();
    let row = |out: &mut Vec<String>, name: &str, value: String| {
        let line = format!("| {backend} | {name} | {value} |");
        println!("{line}");
        out.push(line);
    };

    let t = Instant::now();
    fill(&db, n).await?;
    row(
        &mut out,
        &format!("write {n} pending entries (setup, 1000-row INSERTs)"),
        format!("{:.1} s", t.elapsed().as_secs_f64()),
    );

    let t = Instant::now();
    let i = ops::audit::integrate_all(&db)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(i.size == n, "integrated {} of {n}", i.size);
    row(
        &mut out,
        &format!("integrate {n} entries (batches of {})", ops::audit::BATCH),
        format!("{secs:.1} s = {:.0} entries/s", n as f64 / secs),
    );
    ops::audit::checkpoint(&db, &signer)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let t = Instant::now();
    let v = ops::audit::verify(&db, &key, &[])
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let secs = t.elapsed().as_secs_f64();
    let report = v
        .result
        .map_err(|b| anyhow::anyhow!("verify failed: {b}"))?;
    anyhow::ensure!(report.entries == n && report.checkpoint_size == Some(n));
    row(
        &mut out,
        &format!("audit verify, {n} entries + signed checkpoint"),
        format!("{secs:.2} s"),
    );

    let mut times = Vec::new();
    for k in 0..1000u64 {
        let seq = (k.wrapping_mul(2_654_435_761) ^ 0x5bd1e995) % n;
        let t = Instant::now();
        let p = ops::audit::proof(&db, seq, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        times.push(t.elapsed());
        anyhow::ensure!(p.tree_size == n);
    }
    row(
        &mut out,
        &format!("inclusion proof, 1000 random entries of {n}"),
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            pct(times.clone(), 0.5),
            pct(times.clone(), 0.99),
            pct(times, 1.0)
        ),
    );
    let mut times = Vec::new();
    for k in 1..=200u64 {
        let from = (k.wrapping_mul(2_654_435_761)) % n + 1;
        let t = Instant::now();
        ops::audit::consistency(&db, from, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        times.push(t.elapsed());
    }
    row(
        &mut out,
        &format!("consistency proof, 200 random sizes to {n}"),
        format!(
            "p50 {:.2} ms, p99 {:.2} ms",
            pct(times.clone(), 0.5),
            pct(times, 0.99)
        ),
    );

    // Push-shaped transactions with audit off and on, alternated so drift hits both alike.
    sqlx::query("CREATE TABLE bench_push (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(db.pool())
        .await?;
    for _ in 0..5 {
        push_like(&db, false).await?; // warm-up
    }
    // Three kinds of round: no audit; events appended in the push's transaction; appended and
    // then integrated, the integration charged to the round in full.
    let mut totals = [Duration::ZERO; 3];
    let rounds = 10;
    let per_round = 20;
    for _ in 0..rounds {
        for (kind, total) in totals.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..per_round {
                push_like(&db, kind > 0).await?;
            }
            if kind == 2 {
                ops::audit::integrate_all(&db)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            *total += t.elapsed();
        }
        // Entries of the append-only round are integrated outside any timing.
        ops::audit::integrate_all(&db)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let pushes = (rounds * per_round) as f64;
    let rate = |d: Duration| pushes / d.as_secs_f64();
    let off = rate(totals[0]);
    row(
        &mut out,
        "push-shaped tx (20 inspections + 700 answers), audit off",
        format!("{off:.1} pushes/s"),
    );
    for (name, d) in [
        (
            "same + its 40 audit events (740 changes) appended in the tx",
            totals[1],
        ),
        (
            "same + appended + integrated (integration charged to the pushes)",
            totals[2],
        ),
    ] {
        let r = rate(d);
        row(
            &mut out,
            name,
            format!("{r:.1} pushes/s ({:+.1} %)", (r / off - 1.0) * 100.0),
        );
    }

    db.close().await;
    common::drop_fresh(cleanup).await?;
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::var("FOODCHECK_BENCH_AUDIT_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut backends = vec!["sqlite"];
    if std::env::var_os("FOODCHECK_BENCH_POSTGRES_URL").is_some() {
        backends.push("postgres");
    }
    println!("| backend | benchmark | result |\n|---|---|---|");
    for b in backends {
        run(b, n).await?;
    }
    Ok(())
}
