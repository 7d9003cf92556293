//! Reviewer read-side benchmarks (`cargo bench --bench review`; add
//! FOODCHECK_BENCH_POSTGRES_URL to include PostgreSQL). Figures go to BENCHMARKS.md.
//!
//! A district after a year of rounds: 50,000 inspections (14 answers and 2 photos each, 10,000
//! waiting for review, 2,000 returned, flags on about 1 in 8), 10,000 follow-ups (6,000 open,
//! 2,000 with a recheck task, 2,000 closed), 5,000 open tasks of which 2,000 are overdue,
//! 10,000 establishments in 14 towns. Measured as the handlers do it, without HTTP: the first
//! page (50) of each queue with its teams, the same with a town filter, the inspection detail of
//! random inspections, and the dashboard counts.

mod common;

use std::time::{Duration, Instant};

use foodcheck::plan::TeamMember;
use foodcheck::review::detail::{InspectionDetail, Reader};
use foodcheck::review::queues::{self, Queue, QueueFilter};
use foodcheck::store::{self, placeholders, Db};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

const INSPECTIONS: usize = 50_000;
const FOLLOWUPS: usize = 10_000;
const OPEN_TASKS: usize = 5_000;
const ESTABLISHMENTS: usize = 10_000;
const INSPECTORS: usize = 40;
const PLANS: usize = 12;
const TOWNS: usize = 14;
const TEMPLATE: &str = "00000000-0000-4000-8000-000000002016";
const ITEMS: [&str; 14] = [
    "3.1", "3.2", "4.1", "4.2", "6.1", "8.4", "9.3", "1.1", "2.1", "2.2", "2.3", "4.3", "4.4",
    "5.1",
];
const RUNS: usize = 200;

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |p: f64| ms(v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]);
    (at(0.5), at(0.99))
}

#[derive(Clone)]
enum V {
    T(String),
    N(Option<String>),
    I(i64),
}

/// Multi-row INSERTs of `rows`, chunked under both backends' parameter limits.
async fn insert(db: &Db, table: &str, cols: &str, rows: Vec<Vec<V>>) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let width = rows[0].len();
    let per = (30_000 / width).max(1);
    let mut tx = db.begin_write().await?;
    for chunk in rows.chunks(per) {
        let sql = format!(
            "INSERT INTO {table} ({cols}) VALUES {}",
            placeholders(db.backend(), chunk.len(), width)
        );
        let mut q = sqlx::query(&sql);
        for row in chunk {
            for v in row {
                q = match v {
                    V::T(s) => q.bind(s.clone()),
                    V::N(s) => q.bind(s.clone()),
                    V::I(n) => q.bind(*n),
                };
            }
        }
        q.execute(tx.conn()).await?;
    }
    tx.commit().await?;
    Ok(())
}

fn t(s: impl Into<String>) -> V {
    V::T(s.into())
}

fn date(day: i64) -> String {
    (chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Days::new(day as u64))
        .format("%Y-%m-%d")
        .to_string()
}

struct Data {
    inspections: Vec<String>,
    towns: Vec<String>,
}

async fn load(db: &Db) -> anyhow::Result<Data> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let now = 1_735_000_000_000i64;
    let towns: Vec<String> = (0..TOWNS).map(|i| format!("第{i}街道")).collect();
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$bench";
    let inspectors: Vec<String> = (0..INSPECTORS)
        .map(|_| Uuid::new_v4().to_string())
        .collect();
    let mut users: Vec<Vec<V>> = inspectors
        .iter()
        .enumerate()
        .map(|(i, id)| {
            vec![
                t(id),
                t(format!("insp{i}")),
                t(format!("检查员{i}")),
                t("inspector"),
                t(format!("TJ{i:05}")),
                t(hash),
                V::I(now),
                V::I(now),
            ]
        })
        .collect();
    let reviewer = Uuid::new_v4().to_string();
    users.push(vec![
        t(&reviewer),
        t("reviewer"),
        t("审核员"),
        t("reviewer"),
        V::N(None),
        t(hash),
        V::I(now),
        V::I(now),
    ]);
    insert(
        db,
        "users",
        "id, username, name, role, badge_no, password_hash, created_at, updated_at",
        users,
    )
    .await?;

    let ests: Vec<String> = (0..ESTABLISHMENTS)
        .map(|_| Uuid::new_v4().to_string())
        .collect();
    let rows = ests
        .iter()
        .enumerate()
        .map(|(i, id)| {
            vec![
                t(id),
                t(format!("店{i}")),
                t(format!("店{i}")),
                t(format!("公司{i}")),
                t(format!("JY2{i:013}")),
                t("small_restaurant"),
                t(format!("路{i}号")),
                t(&towns[i % TOWNS]),
                t("C"),
                t("open"),
                t("gcj02"),
                V::I(now),
                V::I(now),
            ]
        })
        .collect();
    insert(db, "establishments", "id, search_text, sign_name, licensed_name, license_no, category, address, town, risk_grade, status, crs, created_at, updated_at", rows).await?;
    // One place for all (the detail's distance does not depend on it).
    sqlx::query(
        "UPDATE establishments SET raw_lng = 117.29, raw_lat = 39.71, lng = 117.284, lat = 39.709",
    )
    .execute(db.pool())
    .await?;

    let plans: Vec<String> = (0..PLANS).map(|_| Uuid::new_v4().to_string()).collect();
    let draws: Vec<String> = (0..PLANS).map(|_| Uuid::new_v4().to_string()).collect();
    let rows = plans
        .iter()
        .enumerate()
        .map(|(i, id)| {
            vec![
                t(id),
                t(format!("随机查餐厅 {i}")),
                t(format!("2024年第{}期", i + 1)),
                t("主题"),
                t(date(30 * i as i64)),
                t(date(30 * i as i64 + 29)),
                t(date(30 * i as i64 + 29)),
                t(TEMPLATE),
                V::I(1),
                t("{}"),
                t("{}"),
                t("[]"),
                V::I(2),
                t("drawn"),
                t(&draws[i]),
                t(&reviewer),
                V::I(now),
                V::I(now),
            ]
        })
        .collect();
    insert(db, "plans", "id, name, round_title, theme, period_start, period_end, due_date, template_id, template_version, pool_filter, quotas, inspector_ids, team_size, status, current_draw_id, created_by, created_at, updated_at", rows).await?;
    let rows = draws
        .iter()
        .enumerate()
        .map(|(i, id)| {
            vec![
                t(id),
                t(&plans[i]),
                V::I(1),
                t("seed"),
                t("alg"),
                t("h"),
                V::I(1),
                V::I(1),
                t("{}"),
                t(&reviewer),
                V::I(now),
            ]
        })
        .collect();
    insert(db, "draws", "id, plan_id, seq, seed, algorithm, pool_hash, pool_size, drawn_count, record, drawn_by, drawn_at", rows).await?;

    // Tasks: one per inspection (submitted), plus open ones; each establishment at most once
    // per draw.
    let total_tasks = INSPECTIONS + OPEN_TASKS;
    let mut tasks = Vec::with_capacity(total_tasks);
    let mut task_rows = Vec::with_capacity(total_tasks);
    let mut member_rows = Vec::with_capacity(total_tasks * 2);
    for n in 0..total_tasks {
        let id = Uuid::new_v4().to_string();
        let plan = n % PLANS;
        let est = (n / PLANS) % ESTABLISHMENTS;
        let open = n >= INSPECTIONS;
        // 2,000 of the open tasks are overdue; the rest are due ahead.
        let due = if open && n < INSPECTIONS + 2_000 {
            date(rng.gen_range(0..300))
        } else {
            "2099-01-01".to_string()
        };
        task_rows.push(vec![
            t(&id),
            t(&plans[plan]),
            t(&draws[plan]),
            t(&ests[est]),
            t(TEMPLATE),
            V::I(1),
            t(due),
            t(if open { "assigned" } else { "submitted" }),
            t("[]"),
            V::I(n as i64),
            V::I(now),
            V::I(now),
        ]);
        let a = rng.gen_range(0..INSPECTORS);
        let b = (a + 1 + rng.gen_range(0..INSPECTORS - 1)) % INSPECTORS;
        member_rows.push(vec![t(&id), t(&inspectors[a]), V::I(0)]);
        member_rows.push(vec![t(&id), t(&inspectors[b]), V::I(1)]);
        tasks.push((id, ests[est].clone(), a, b));
    }
    insert(db, "tasks", "id, plan_id, draw_id, establishment_id, template_id, template_version, due_date, state, must_check_items, draw_order, created_at, updated_at", task_rows).await?;
    insert(
        db,
        "task_members",
        "task_id, inspector_id, position",
        member_rows,
    )
    .await?;

    let mut inspections = Vec::with_capacity(INSPECTIONS);
    let mut rows = Vec::with_capacity(INSPECTIONS);
    let mut answers = Vec::with_capacity(INSPECTIONS * ITEMS.len());
    let mut photos = Vec::with_capacity(INSPECTIONS * 2);
    let mut reviews = Vec::new();
    let results = ["compliant", "basically_compliant", "non_compliant"];
    for (n, (task, est, a, b)) in tasks.iter().take(INSPECTIONS).enumerate() {
        let id = Uuid::new_v4().to_string();
        let state = match n % 25 {
            0..=4 => "submitted",
            5 => "returned",
            6 => "rejected",
            _ => "approved",
        };
        let result = results[rng.gen_range(0..3)];
        let flags = if rng.gen_range(0..10) == 0 {
            r#"["declared_result_differs"]"#
        } else {
            "[]"
        };
        let team = format!(
            r#"[{{"user_id":"{}","name":"检查员{a}","badge_no":"TJ{a:05}"}},{{"user_id":"{}","name":"检查员{b}","badge_no":"TJ{b:05}"}}]"#,
            inspectors[*a], inspectors[*b]
        );
        let submitted_at = now - 86_400_000 * 300 + (n as i64) * 500_000;
        rows.push(vec![t(&id), t(task), t(est), V::I(submitted_at - 3_600_000), V::I(submitted_at - 600_000), t(team), V::I(1), t(result),
            t(result), t("{\"result\":\"compliant\",\"key_checked\":7,\"key_not_applicable\":0,\"key_failed\":0,\"general_checked\":7,\"general_passed\":7,\"general_not_applicable\":0,\"general_pass_rate\":100.0,\"coverage_ok\":true,\"failed_items\":[],\"problems\":[]}"),
            t(state), V::I(1), t(flags), V::I(submitted_at), t(&reviewer), V::I(1), V::I(1), V::I(now), V::I(now)]);
        for (k, item) in ITEMS.iter().enumerate() {
            let status = if k < 2 && result == "non_compliant" {
                "fail"
            } else {
                "pass"
            };
            answers.push(vec![
                t(Uuid::new_v4().to_string()),
                t(&id),
                t(*item),
                t(status),
                V::I(1),
                V::I(1),
                V::I(now),
                V::I(now),
            ]);
        }
        for item in &ITEMS[..2] {
            let pflags = if rng.gen_range(0..40) == 0 {
                r#"["outside_radius"]"#
            } else {
                "[]"
            };
            photos.push(vec![
                t(Uuid::new_v4().to_string()),
                t(&id),
                t(*item),
                t("00".repeat(32)),
                V::I(100_000),
                V::I(submitted_at - 1_000_000),
                t("processed"),
                t(pflags),
                V::I(1),
                V::I(1),
                V::I(now),
                V::I(now),
            ]);
        }
        if state != "submitted" {
            reviews.push(vec![
                t(Uuid::new_v4().to_string()),
                t(&id),
                V::I(1),
                t(state),
                t("意见"),
                t("[]"),
                t("内部"),
                t(&reviewer),
                V::I(submitted_at + 86_400_000),
                V::I(1),
                V::I(1),
            ]);
        }
        inspections.push((id, state, result));
    }
    insert(db, "inspections", "id, task_id, establishment_id, started_at, finished_at, team, submitted, declared_result, computed_result, evaluation, review_state, review_round, server_flags, submitted_at, created_by, created_seq, seq, created_at, updated_at", rows).await?;
    sqlx::query("UPDATE inspections SET lng = 117.2903, lat = 39.7102, crs = 'gcj02'")
        .execute(db.pool())
        .await?;
    insert(
        db,
        "answers",
        "id, inspection_id, item_code, status, created_seq, seq, created_at, updated_at",
        answers,
    )
    .await?;
    insert(db, "photos", "id, inspection_id, item_code, sha256, byte_size, taken_at, processing_status, flags, created_seq, seq, created_at, updated_at", photos).await?;
    insert(db, "reviews", "id, inspection_id, round, decision, comment, item_comments, internal_note, reviewer_id, decided_at, created_seq, seq", reviews).await?;

    // Follow-ups of approved 基本符合 / 不符合 inspections.
    let mut rows = Vec::new();
    let mut rechecks = Vec::new();
    let mut recheck_members = Vec::new();
    let mut updates = Vec::new();
    for (n, (idx, (id, _, result))) in inspections
        .iter()
        .enumerate()
        .filter(|(_, (_, s, r))| *s == "approved" && *r != "compliant")
        .take(FOLLOWUPS)
        .enumerate()
    {
        let fid = Uuid::new_v4().to_string();
        let (task, est, a, b) = &tasks[idx];
        let _ = task;
        let plan = &plans[idx % PLANS];
        let state = match n % 5 {
            0..=2 => "open",
            3 => "recheck_assigned",
            _ => "closed",
        };
        rows.push(vec![
            t(&fid),
            t(id),
            t(est),
            t(plan),
            t(*result),
            t(state),
            t(date(rng.gen_range(0..600))),
            t(date(rng.gen_range(0..700))),
            V::I(10),
            t("[]"),
            t("[]"),
            t(&reviewer),
            V::I(now),
            V::I(now),
        ]);
        if state == "recheck_assigned" {
            let rid = Uuid::new_v4().to_string();
            rechecks.push(vec![
                t(&rid),
                t("recheck"),
                t(plan),
                t(&fid),
                t(est),
                t(TEMPLATE),
                V::I(1),
                t(date(rng.gen_range(0..700))),
                t("assigned"),
                t("[]"),
                V::I(0),
                V::I(now),
                V::I(now),
            ]);
            recheck_members.push(vec![t(&rid), t(&inspectors[*a]), V::I(0)]);
            recheck_members.push(vec![t(&rid), t(&inspectors[*b]), V::I(1)]);
            updates.push((fid, rid));
        }
    }
    insert(db, "followups", "id, inspection_id, establishment_id, plan_id, origin_result, state, ordered_on, deadline, period_working_days, failed_items, recheck_team, created_by, created_at, updated_at", rows).await?;
    insert(db, "tasks", "id, kind, plan_id, followup_id, establishment_id, template_id, template_version, due_date, state, must_check_items, draw_order, created_at, updated_at", rechecks).await?;
    insert(
        db,
        "task_members",
        "task_id, inspector_id, position",
        recheck_members,
    )
    .await?;
    let mut tx = db.begin_write().await?;
    for (fid, rid) in updates {
        sqlx::query("UPDATE followups SET recheck_task_id = $1 WHERE id = $2")
            .bind(rid)
            .bind(fid)
            .execute(tx.conn())
            .await?;
    }
    tx.commit().await?;
    if db.backend() == store::Backend::Postgres {
        // What autovacuum does shortly after a bulk load (PostgreSQL 13+ vacuums insert-only
        // tables too): statistics, and the visibility map that index-only scans need.
        sqlx::query("VACUUM ANALYZE").execute(db.pool()).await?;
    }
    Ok(Data {
        inspections: inspections.into_iter().map(|i| i.0).collect(),
        towns,
    })
}

/// The queue handler's work: the page, then the page's teams in one query.
async fn queue_page(db: &Db, q: Queue, f: &QueueFilter, today: &str) -> anyhow::Result<usize> {
    let mut conn = db.acquire().await?;
    let horizon = queues::horizon(today, f.within_days);
    let mut entries = store::queues::page(&mut conn, q, f, today, &horizon, None, 51).await?;
    let ids: Vec<String> = entries.iter().filter_map(|e| e.task_id.clone()).collect();
    let members = store::plans::members_of(&mut conn, &ids).await?;
    for e in &mut entries {
        e.team = members
            .iter()
            .filter(|m| e.task_id.as_ref() == Some(&m.0))
            .map(|m| TeamMember::officer(m.1.clone(), m.2.clone(), m.3.clone()))
            .collect();
    }
    Ok(queues::page(q, entries, 50).items.len())
}

async fn run(backend: &str) -> anyhow::Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let (url, pg) = common::fresh_db(backend, dir.path(), "review").await?;
    let db = Db::connect(&url, 8).await?;
    db.migrate().await?;
    foodcheck::ops::checklists::ensure_default(&db).await?;
    let started = Instant::now();
    let data = load(&db).await?;
    eprintln!(
        "{backend}: loaded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let today = "2024-09-01";
    if std::env::var("FOODCHECK_BENCH_EXPLAIN").is_ok() {
        // The plans behind the figures (for tuning), first page and count of each queue.
        let mut conn = db.acquire().await?;
        let f = QueueFilter {
            within_days: 7,
            ..QueueFilter::default()
        };
        let horizon = queues::horizon(today, 7);
        for q in Queue::ALL {
            for sql in [
                store::queues::queue_sql(q, &f, today, &horizon, None, 51),
                store::queues::count_sql(q, &f, today, &horizon),
            ] {
                let plan = store::queues::explain(&mut conn, &sql).await?;
                eprintln!("{backend} {}:\n{}\n", q.as_str(), plan.join("\n"));
            }
        }
    }
    let mut out = Vec::new();
    let mut row = |name: &str, v: Vec<Duration>, target: f64| {
        let (p50, p99) = stats(v);
        out.push(format!(
            "| {name} | {backend} | {p50:.2} ms | {p99:.2} ms | {RUNS} | < {target} ms |"
        ));
    };
    let plain = QueueFilter {
        within_days: 7,
        ..QueueFilter::default()
    };
    for q in Queue::ALL {
        let mut v = Vec::with_capacity(RUNS);
        let mut n = 0;
        for _ in 0..RUNS {
            let t0 = Instant::now();
            n = queue_page(&db, q, &plain, today).await?;
            v.push(t0.elapsed());
        }
        assert!(n > 0, "{} is empty", q.as_str());
        row(&format!("first page of `{}` ({n})", q.as_str()), v, 20.0);
    }
    for q in Queue::ALL {
        let mut v = Vec::with_capacity(RUNS);
        for i in 0..RUNS {
            let f = QueueFilter {
                town: Some(data.towns[i % TOWNS].clone()),
                ..plain.clone()
            };
            let t0 = Instant::now();
            queue_page(&db, q, &f, today).await?;
            v.push(t0.elapsed());
        }
        row(
            &format!("first page of `{}`, town filter", q.as_str()),
            v,
            20.0,
        );
    }
    let mut v = Vec::with_capacity(RUNS);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for _ in 0..RUNS {
        let id = &data.inspections[rng.gen_range(0..data.inspections.len())];
        let t0 = Instant::now();
        let mut conn = db.acquire().await?;
        let parts = store::inspection_detail::load(&mut conn, id)
            .await?
            .expect("inspection");
        let d = InspectionDetail::build(parts, Reader::Office);
        v.push(t0.elapsed());
        assert_eq!(d.answers.len(), ITEMS.len());
    }
    row("inspection detail (random ids)", v, 10.0);
    let mut v = Vec::with_capacity(RUNS);
    let mut counts = Vec::new();
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let mut conn = db.acquire().await?;
        counts =
            store::queues::counts(&mut conn, &plain, today, &queues::horizon(today, 7)).await?;
        v.push(t0.elapsed());
    }
    eprintln!("{backend}: counts {counts:?}");
    row("dashboard counts (6 queues)", v, 50.0);
    // The flagged count before 0017 (every waiting inspection's photos probed) against the
    // trigger-kept marker, alternated in one run so the machine's load hits both alike.
    let probe = "SELECT COUNT(*) FROM inspections i WHERE i.review_state = 'submitted' AND \
        ((i.server_flags IS NOT NULL AND i.server_flags <> '[]') OR EXISTS (SELECT 1 FROM photos ph \
        WHERE ph.inspection_id = i.id AND ph.flags IS NOT NULL AND ph.flags <> '[]'))";
    let marker =
        "SELECT COUNT(*) FROM inspections i WHERE i.review_state = 'submitted' AND i.flagged = 1";
    let (mut old, mut new) = (Vec::with_capacity(RUNS), Vec::with_capacity(RUNS));
    for i in 0..2 * RUNS {
        let (sql, into) = if i % 2 == 0 {
            (probe, &mut old)
        } else {
            (marker, &mut new)
        };
        let t0 = Instant::now();
        let mut conn = db.acquire().await?;
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&mut *conn).await?;
        into.push(t0.elapsed());
        assert_eq!(
            Some(n),
            counts
                .iter()
                .find(|(q, _)| *q == Queue::Flagged)
                .map(|c| c.1)
        );
    }
    let (old50, old99) = stats(old.clone());
    let (new50, new99) = stats(new.clone());
    eprintln!(
        "{backend}: flagged count, photo probe p50 {old50:.2} / p99 {old99:.2} ms, marker p50 {new50:.2} / p99 {new99:.2} ms: {:.1}x faster at p50",
        old50 / new50
    );
    row("flagged count, pre-0017 photo probe (baseline)", old, 50.0);
    row("flagged count, trigger-kept marker (0017)", new, 50.0);
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
