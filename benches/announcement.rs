//! The sampling announcement benchmark (`cargo bench --bench announcement`, with
//! FOODCHECK_BENCH_POSTGRES_URL to include PostgreSQL; FOODCHECK_BENCH_ANNOUNCEMENT_SAMPLES to
//! change the 5,000): a published announcement of 5,000 samples (one in ten unqualified, with
//! two failed items each), exported as the public route does it: its rows read from the
//! database, then written as CSV, XLSX and JSON. Target: under 300 ms per export in release on
//! both backends. Also times the publication itself (proposal, composition and the copy).
//! Figures go to BENCHMARKS.md (by the lead).

use std::time::{Duration, Instant};

use foodcheck::audit::checkpoint::NoteSigner;
use foodcheck::audit::{Actor, Ctx};
use foodcheck::auth::Role;
use foodcheck::ops::announcements::{self as uc, NewAnnouncement};
use foodcheck::store::sampling::{CategoryRow, ItemRow, ResultRow, SampleRow};
use foodcheck::store::{self, Db};

mod common;

fn samples() -> usize {
    std::env::var("FOODCHECK_BENCH_ANNOUNCEMENT_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000)
}

/// Everything a sample needs, then `n` samples with reported results in March 2026.
async fn load(db: &Db, n: usize) -> anyhow::Result<String> {
    let hash = foodcheck::auth::password::hash_password_blocking("bench-password-1")?;
    let new = foodcheck::auth::NewUser::parse("reviewer", Role::Reviewer, "审核员", None, None)
        .map_err(anyhow::Error::msg)?;
    let user = foodcheck::ops::accounts::create_user_with_hash(db, &Ctx::system(), &new, &hash)
        .await?
        .id;
    let lab = foodcheck::ops::lab::create_lab(
        db,
        &Ctx::system(),
        &foodcheck::ops::lab::NewLab {
            name: "天津市宝坻区食品检验检测中心".into(),
            code: "BDJC".into(),
        },
    )
    .await?
    .id;
    let mut conn = db.acquire().await?;
    store::sampling::upsert_category(
        &mut conn,
        &CategoryRow {
            code: "01".into(),
            level: 1,
            parent_code: None,
            name: "粮食加工品".into(),
            microbiological: Some(0),
        },
        1,
    )
    .await?;
    let est = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO establishments (id, search_text, sign_name, licensed_name, category, address, town, \
         risk_grade, status, created_at, updated_at) VALUES ($1, 'x', '老王粮油店', '天津市宝坻区老王粮油商行', \
         'small_restaurant', '天津市宝坻区钰华街道南关大街1-3号', '钰华街道', 'B', 'open', 1, 1)",
    )
    .bind(&est)
    .execute(&mut *conn)
    .await?;
    drop(conn);
    let form = serde_json::json!({
        "sample_brand": "金龙鱼", "sample_specification": "5kg/袋", "sample_production_date": "2026-02-01",
        "sample_batch": "B20260201", "producer_name": "益海嘉里（天津）粮油工业有限公司",
        "producer_address": "天津市滨海新区临港经济区渤海40路510号",
        "premises_legal_representative": "王老五", "premises_contact": "13800138000"
    })
    .to_string();
    let reported = 1_772_416_800_000i64; // 2026-03-02
    let mut tx = db.begin_write().await?;
    for k in 0..n {
        let id = uuid::Uuid::new_v4().to_string();
        let bad = k % 10 == 0;
        store::sampling::insert_sample(
            tx.conn(),
            &SampleRow {
                id: id.clone(),
                sample_no: format!("DC26120000{k:09}"),
                sample_no_kind: "national".into(),
                task_id: None,
                purpose: "supervision".into(),
                stage: "circulation".into(),
                category_code: "01".into(),
                establishment_id: est.clone(),
                premises_name: "老王粮油店".into(),
                premises_address: "天津市宝坻区钰华街道南关大街1-3号".into(),
                premises_credit_code: None,
                premises_licence_no: None,
                sample_name: "小麦粉".into(),
                lab_id: lab.clone(),
                sampled_at: reported - 86_400_000,
                lng: 117.3,
                lat: 39.7,
                crs: "wgs84".into(),
                state: "reported".into(),
                seal_broken: 0,
                form: form.clone(),
                warnings: "[]".into(),
                body_sha256: "x".into(),
                bureau_notified_on: None,
                served_on: None,
                retest_requested_on: None,
                objection_on: None,
                retest_received_on: None,
                retest_reported_on: None,
                disposal_done_on: None,
                submitted_by: user.clone(),
                created_at: 1,
                updated_at: 1,
            },
            store::sampling::Stamp {
                seq: 0,
                origin_device: None,
            },
        )
        .await?;
        let item = |position: i64, name: &str, verdict: &str| ItemRow {
            sample_id: id.clone(),
            position,
            name: name.into(),
            value: if verdict == "qualified" {
                "0.05"
            } else {
                "0.35"
            }
            .into(),
            unit: Some("mg/kg".into()),
            limit_text: Some("≤0.2".into()),
            standard: Some("GB 2762-2022".into()),
            method: Some("GB 5009.12-2023".into()),
            verdict: verdict.into(),
            computed_verdict: None,
            disagrees: 0,
            microbiological: 0,
        };
        let v = if bad { "unqualified" } else { "qualified" };
        store::sampling::insert_result(
            tx.conn(),
            &ResultRow {
                sample_id: id.clone(),
                lab_id: lab.clone(),
                report_no: format!("BDJC2026-{k:05}"),
                overall: v.into(),
                source: "json".into(),
                report_sha256: "x".into(),
                reported_by: user.clone(),
                reported_at: reported,
            },
            &[
                item(0, "铅(以Pb计)", v),
                item(1, "镉(以Cd计)", v),
                item(2, "黄曲霉毒素B1", "qualified"),
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(user)
}

fn p(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

async fn run(backend: &str) -> anyhow::Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let (url, pg) = common::fresh_db(backend, dir.path(), "announce").await?;
    let db = Db::connect(&url, 8).await?;
    db.migrate().await?;
    let n = samples();
    let started = Instant::now();
    let user = load(&db, n).await?;
    eprintln!(
        "{backend}: {n} samples loaded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let ctx = Ctx::new(Actor::user(&user, Role::Reviewer, None), None);
    let zone = foodcheck::clock::BureauZone::parse("Asia/Shanghai").map_err(anyhow::Error::msg)?;
    let signer = NoteSigner::from_seed("bench/announcement", [7; 32])?;
    let a = uc::create(
        &db,
        &ctx,
        &NewAnnouncement {
            announcement_no: "2026年第3期".into(),
            title: "食品安全监督抽检信息公告".into(),
            period_start: "2026-03-01".into(),
            period_end: "2026-03-31".into(),
            stage: None,
            category_code: None,
        },
    )
    .await?;
    let t = Instant::now();
    let d = uc::publish(&db, &ctx, zone, &signer, &a.id).await?;
    let publish = t.elapsed();
    assert_eq!(d.qualified.len() + d.unqualified.len(), n);
    let mut out = vec![format!(
        "| announcement publish ({n} samples) | {backend} | {:.1} ms | | 1 | |",
        publish.as_secs_f64() * 1000.0
    )];
    for format in ["csv", "xlsx", "json"] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..10 {
            let t = Instant::now();
            let mut conn = db.acquire().await?;
            let head = store::announcements::published_one(&mut conn, &a.id)
                .await?
                .expect("published");
            let (q, u) = store::announcements::published_rows(&mut conn, &a.id).await?;
            drop(conn);
            let q: Vec<_> = q.into_iter().map(|(_, r)| r).collect();
            let u: Vec<_> = u.into_iter().map(|(_, r)| r).collect();
            let body = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
                Ok(match format {
                    "csv" => foodcheck::export::announcement::write_csv(Vec::new(), &q, &u)?,
                    "xlsx" => foodcheck::export::announcement::write_xlsx(
                        Vec::new(),
                        &head,
                        "2026-04-01",
                        &q,
                        &u,
                    )?,
                    _ => serde_json::to_vec(&(head, q, u))?,
                })
            })
            .await??;
            bytes = body.len();
            times.push(t.elapsed());
        }
        out.push(format!(
            "| announcement export {format} ({n} samples, {} KiB) | {backend} | {:.1} ms | {:.1} ms | {} | < 300 ms |",
            bytes / 1024,
            p(&mut times, 0.5).as_secs_f64() * 1000.0,
            p(&mut times, 0.99).as_secs_f64() * 1000.0,
            times.len()
        ));
    }
    db.close().await;
    common::drop_fresh(pg).await?;
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut rows = vec![
        "| benchmark | backend | p50 | p99 | runs | target |".to_string(),
        "|---|---|---|---|---|---|".to_string(),
    ];
    for backend in common::backends() {
        rows.extend(run(backend).await?);
    }
    for r in rows {
        println!("{r}");
    }
    Ok(())
}
