//! `foodcheck bench`: the performance figures recorded in BENCHMARKS.md, measured on real
//! databases (a fresh SQLite file, and a fresh PostgreSQL database when a URL is given).

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::audit::Ctx;
use crate::store::{self, establishments::Upsert, Db};

pub struct Options {
    /// Admin URL of a PostgreSQL server; a throwaway database is created on it.
    pub postgres_url: Option<String>,
    /// Only run benchmarks whose name contains this.
    pub filter: Option<String>,
}

pub struct Row {
    pub name: String,
    pub backend: String,
    pub median: Duration,
    pub p95: Duration,
    pub runs: usize,
    pub target: Option<Duration>,
}

fn stats(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let p95 = samples[((samples.len() * 95).div_ceil(100))
        .saturating_sub(1)
        .min(samples.len() - 1)];
    (median, p95)
}

/// A fresh, migrated database for one benchmark; dropped afterwards.
struct Scratch {
    db: Db,
    cleanup: Option<(String, String)>,
    dir: Option<std::path::PathBuf>,
}

impl Scratch {
    async fn new(backend: &str, pg_url: Option<&str>) -> anyhow::Result<Scratch> {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
        match backend {
            "sqlite" => {
                let dir = std::env::temp_dir().join(format!("foodcheck-bench-{tag}"));
                std::fs::create_dir_all(&dir)?;
                let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
                let db = Db::connect(&url, 8).await?;
                db.migrate().await?;
                Ok(Scratch {
                    db,
                    cleanup: None,
                    dir: Some(dir),
                })
            }
            _ => {
                let admin = pg_url.context("no PostgreSQL URL")?;
                sqlx::any::install_default_drivers();
                let name = format!("fc_bench_{tag}");
                let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(admin).await?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await?;
                let (prefix, query) = match admin.split_once('?') {
                    Some((p, q)) => (p.to_string(), format!("?{q}")),
                    None => (admin.to_string(), String::new()),
                };
                let server = prefix
                    .rsplit_once('/')
                    .map(|(s, _)| s.to_string())
                    .unwrap_or(prefix);
                let db = Db::connect(&format!("{server}/{name}{query}"), 8).await?;
                db.migrate().await?;
                Ok(Scratch {
                    db,
                    cleanup: Some((admin.to_string(), name)),
                    dir: None,
                })
            }
        }
    }

    async fn drop_all(self) -> anyhow::Result<()> {
        self.db.close().await;
        if let Some((admin, name)) = self.cleanup {
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await?;
        }
        if let Some(dir) = self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(())
    }
}

/// A 10,000-row registry workbook with the Chinese headers, as an office would send it.
pub fn registry_xlsx(n: usize) -> anyhow::Result<Vec<u8>> {
    let rows = crate::demo::establishments(n, 99)?;
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    let headers = [
        "牌匾名称",
        "营业执照名称",
        "统一社会信用代码",
        "食品经营许可证编号",
        "业态",
        "经营地址",
        "街道乡镇",
        "风险等级",
        "经度",
        "纬度",
        "坐标系",
        "联系人",
        "联系电话",
    ];
    for (c, h) in headers.iter().enumerate() {
        ws.write_string(0, c as u16, *h)?;
    }
    for (i, (e, _)) in rows.iter().enumerate() {
        let r = i as u32 + 1;
        let loc = e.location.as_ref();
        ws.write_string(r, 0, &e.sign_name)?;
        ws.write_string(r, 1, &e.licensed_name)?;
        ws.write_string(r, 2, e.uscc.as_ref().map(|u| u.as_str()).unwrap_or(""))?;
        ws.write_string(
            r,
            3,
            e.license_no.as_ref().map(|l| l.as_str()).unwrap_or(""),
        )?;
        ws.write_string(r, 4, e.category.label_zh())?;
        ws.write_string(r, 5, &e.address)?;
        ws.write_string(r, 6, &e.town)?;
        ws.write_string(r, 7, e.risk_grade.as_str())?;
        ws.write_number(r, 8, loc.map(|l| l.raw().x()).unwrap_or_default())?;
        ws.write_number(r, 9, loc.map(|l| l.raw().y()).unwrap_or_default())?;
        ws.write_string(r, 10, loc.map(|l| l.crs().as_str()).unwrap_or("wgs84"))?;
        ws.write_string(r, 11, e.contact_name.as_deref().unwrap_or(""))?;
        ws.write_string(r, 12, e.contact_phone.as_deref().unwrap_or(""))?;
    }
    Ok(wb.save_to_buffer()?)
}

async fn seed_registry(db: &Db, n: usize) -> anyhow::Result<()> {
    let rows = tokio::task::spawn_blocking(move || crate::demo::establishments(n, 7)).await??;
    let ids: Vec<String> = (0..rows.len())
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let upserts: Vec<Upsert> = rows
        .iter()
        .zip(&ids)
        .map(|((input, warnings), id)| Upsert {
            id,
            input,
            warnings,
        })
        .collect();
    crate::ops::bench::seed_registry(db, &Ctx::system(), &upserts).await?;
    if db.backend() == store::Backend::Postgres {
        sqlx::query("ANALYZE establishments")
            .execute(db.pool())
            .await?;
    }
    Ok(())
}

pub async fn run(opts: Options) -> anyhow::Result<Vec<Row>> {
    let mut backends = vec!["sqlite"];
    if opts.postgres_url.is_some() {
        backends.push("postgres");
    }
    let wanted = |name: &str| opts.filter.as_deref().is_none_or(|f| name.contains(f));
    let mut out = Vec::new();

    if wanted("import_xlsx_10k") {
        let xlsx = registry_xlsx(10_000)?;
        for backend in &backends {
            let mut samples = Vec::new();
            for _ in 0..3 {
                let scratch = Scratch::new(backend, opts.postgres_url.as_deref()).await?;
                let start = Instant::now();
                let report = crate::ops::import_establishments(
                    &scratch.db,
                    xlsx.clone(),
                    false,
                    None,
                    &|_, _| {},
                )
                .await
                .map_err(|_| anyhow::anyhow!("benchmark import failed"))?;
                samples.push(start.elapsed());
                anyhow::ensure!(
                    report.created == 10_000,
                    "import created {}",
                    report.created
                );
                scratch.drop_all().await?;
            }
            let (median, p95) = stats(samples);
            out.push(Row {
                name: "import 10,000 establishments from XLSX (parse, validate, upsert, commit)"
                    .into(),
                backend: backend.to_string(),
                median,
                p95,
                runs: 3,
                target: Some(Duration::from_secs(3)),
            });
        }
    }

    if wanted("search_100k") {
        for backend in &backends {
            let scratch = Scratch::new(backend, opts.postgres_url.as_deref()).await?;
            seed_registry(&scratch.db, 100_000).await?;
            let centre =
                crate::geo::Location::new(117.2949, 39.7185, crate::geo::Crs::Gcj02)?.wgs84();
            let cases: Vec<(&str, store::establishments::Search)> = vec![
                (
                    "search 100k by name substring, common (老王)",
                    store::establishments::Search {
                        q: Some("老王".into()),
                        page: 1,
                        page_size: 50,
                        ..Default::default()
                    },
                ),
                (
                    "search 100k by name substring, rare (no match)",
                    store::establishments::Search {
                        q: Some("不存在的店名".into()),
                        page: 1,
                        page_size: 50,
                        ..Default::default()
                    },
                ),
                (
                    "search 100k by code substring (jy2120115000)",
                    store::establishments::Search {
                        q: Some("jy2120115000".into()),
                        page: 1,
                        page_size: 50,
                        ..Default::default()
                    },
                ),
                (
                    "list 100k, no filter, first page",
                    store::establishments::Search {
                        page: 1,
                        page_size: 50,
                        ..Default::default()
                    },
                ),
                (
                    "list 100k, no filter, page 1000",
                    store::establishments::Search {
                        page: 1000,
                        page_size: 50,
                        ..Default::default()
                    },
                ),
                (
                    "search 100k within 1 km of a point",
                    store::establishments::Search {
                        near: Some((centre.x(), centre.y(), 1000.0)),
                        page: 1,
                        page_size: 50,
                        ..Default::default()
                    },
                ),
                (
                    "search 100k within 5 km, town + grade D",
                    store::establishments::Search {
                        near: Some((centre.x(), centre.y(), 5000.0)),
                        town: Some("宝平街道".into()),
                        risk_grades: vec!["D".into()],
                        page: 1,
                        page_size: 50,
                        ..Default::default()
                    },
                ),
            ];
            for (name, search) in cases {
                let mut samples = Vec::new();
                for i in 0..31 {
                    let start = Instant::now();
                    let (rows, total) = store::establishments::search(&scratch.db, &search).await?;
                    let elapsed = start.elapsed();
                    if i > 0 {
                        samples.push(elapsed); // the first run warms the caches
                    }
                    std::hint::black_box((rows, total));
                }
                let (median, p95) = stats(samples);
                out.push(Row {
                    name: name.into(),
                    backend: backend.to_string(),
                    median,
                    p95,
                    runs: 30,
                    target: Some(Duration::from_millis(50)),
                });
            }
            scratch.drop_all().await?;
        }
    }
    if wanted("draw_100k") {
        // The pure algorithm alone (sorting, hashing, selection, teams).
        let fixture = crate::plan::draw::bench_fixture(&crate::plan::draw::BenchParams::default());
        let mut samples = Vec::new();
        for _ in 0..20 {
            let start = Instant::now();
            std::hint::black_box(fixture.run().map_err(|e| anyhow::anyhow!(e.to_string()))?);
            samples.push(start.elapsed());
        }
        let (median, p95) = stats(samples);
        out.push(Row {
            name: "draw 500 of 100,000 + teams (200 inspectors, 1,000 conflicts), pure algorithm"
                .into(),
            backend: "-".into(),
            median,
            p95,
            runs: 20,
            target: Some(Duration::from_millis(200)),
        });
        for backend in &backends {
            let scratch = Scratch::new(backend, opts.postgres_url.as_deref()).await?;
            seed_registry(&scratch.db, 100_000).await?;
            crate::ops::checklists::ensure_default(&scratch.db).await?;
            let inspectors = seed_inspectors(&scratch.db, 200, 1000).await?;
            let mut samples = Vec::new();
            for run in 0..5 {
                let plan_id = uuid::Uuid::new_v4().to_string();
                crate::ops::bench::seed_plan(
                    &scratch.db,
                    &Ctx::system(),
                    &store::plans::NewPlan {
                        id: &plan_id,
                        name: "bench",
                        round_title: "bench",
                        theme: "bench",
                        period_start: "2024-03-01",
                        period_end: "2024-03-31",
                        due_date: "2024-03-31",
                        template_id: store::checklists::DEFAULT_TEMPLATE_ID,
                        template_version: 1,
                        pool_filter: "{}",
                        quotas: r#"{"weighted":{"total":500,"weights":{"A":1,"B":2,"C":3,"D":4}}}"#,
                        exclude_inspected_within_days: None,
                        inspector_ids: &serde_json::to_string(&inspectors)?,
                        team_size: 2,
                        created_by: "bench",
                    },
                )
                .await?;
                let start = Instant::now();
                let (row, _) = crate::ops::draw_plan(
                    &scratch.db,
                    &plan_id,
                    &format!("bench seed {run}"),
                    None,
                    "bench",
                )
                .await
                .map_err(|e| anyhow::anyhow!("draw failed: {e}"))?;
                samples.push(start.elapsed());
                anyhow::ensure!(
                    row.drawn_count == 500 && row.pool_size > 90_000,
                    "unexpected draw {row:?}"
                );
            }
            let (median, p95) = stats(samples);
            out.push(Row {
                name: "draw 500 from a 100,000 registry (95,038 open candidates) + teams (200 inspectors, 1,000 conflicts), end to end: pool query, draw, record + 500 tasks committed".into(),
                backend: backend.to_string(),
                median,
                p95,
                runs: 5,
                target: Some(Duration::from_millis(200)),
            });
            scratch.drop_all().await?;
        }
    }
    Ok(out)
}

/// `n` inspector accounts and `conflicts` declared conflicts with random establishments.
async fn seed_inspectors(db: &Db, n: usize, conflicts: usize) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for i in 0..n {
        let new = crate::auth::NewUser::parse(
            &format!("bench-inspector-{i}"),
            crate::auth::Role::Inspector,
            &format!("检查员{i}"),
            Some(&format!("B{i:06}")),
            None,
        )
        .map_err(anyhow::Error::msg)?;
        // Never logged in: a placeholder, not a usable hash.
        let user = crate::ops::accounts::create_user_with_hash(
            db,
            &crate::audit::Ctx::system(),
            &new,
            "!",
        )
        .await?;
        ids.push(user.id);
    }
    let (establishments,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM establishments")
        .fetch_one(db.pool())
        .await?;
    let picks: Vec<(String,)> = sqlx::query_as(&format!(
        "SELECT id FROM establishments ORDER BY id LIMIT {conflicts} OFFSET {}",
        establishments / 3
    ))
    .fetch_all(db.pool())
    .await?;
    let pairs: Vec<(&str, &str)> = picks
        .iter()
        .enumerate()
        .map(|(k, (est,))| (ids[k % n].as_str(), est.as_str()))
        .collect();
    crate::ops::bench::seed_conflicts(db, &Ctx::system(), &pairs).await?;
    Ok(ids)
}

pub fn render(rows: &[Row]) -> String {
    let mut s = String::from("| benchmark | backend | median | p95 | runs | target | median / target |\n|---|---|---|---|---|---|---|\n");
    for r in rows {
        let (target, ratio) = match r.target {
            Some(t) => (
                format!("< {:.0} ms", t.as_secs_f64() * 1000.0),
                format!("{:.3}", r.median.as_secs_f64() / t.as_secs_f64()),
            ),
            None => ("-".into(), "-".into()),
        };
        s.push_str(&format!(
            "| {} | {} | {:.2} ms | {:.2} ms | {} | {} | {} |\n",
            r.name,
            r.backend,
            r.median.as_secs_f64() * 1000.0,
            r.p95.as_secs_f64() * 1000.0,
            r.runs,
            target,
            ratio
        ));
    }
    s
}
