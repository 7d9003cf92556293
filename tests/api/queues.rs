//! The reviewer's queues (`GET /api/v1/review/queues/{queue}`) and counts
//! (`GET /api/v1/review/counts`): contents, order, filters, cursor paging, bad input, and the
//! index each queue's SQL walks.

use foodcheck::review::queues::{Cursor, Queue, QueueFilter, ReviewFlag, SortKey};
use foodcheck::store::queues::{count_sql, explain, key_sql, queue_sql};
use foodcheck::store::Backend;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{assert_error, Kind, TestApp};
use crate::review_fixture::{scene, Scene, Submission, KEY};

async fn spawn(kind: Kind) -> TestApp {
    TestApp::spawn_with(kind, |c| c.run_workers = false).await
}

both_backends!(@spawn spawn;
    queues_list_the_right_entries_in_order,
    filters_narrow_every_queue_and_counts_agree,
    cursor_paging_walks_each_queue_once,
    bad_queue_filter_and_cursor_are_4xx,
    every_queue_walks_an_index,
    flagged_marker_follows_every_write,
);

/// Eight establishments in two towns; inspections in several review states, follow-ups in
/// several states, all written by the real paths (tests/api/review_fixture.rs).
struct World {
    s: Scene,
    /// Waiting, oldest first: (inspection id, task index).
    waiting: Vec<(String, usize)>,
    returned: String,
    approved: String,
    overdue_task: String,
    rectification_overdue: String,
    rectification_later: String,
    recheck_followup: String,
    recheck_task: String,
}

/// Approvals of the past: 10 working days after Monday 11 March 2024 is Monday 25 March.
const PAST: &str = "2024-03-11";
const PAST_DEADLINE: &str = "2024-03-25";
/// Far ahead (a calendar year the admin adds): Monday 5 January 2099; 10 working days later
/// is 19 January, 5 later is 12 January.
const FUTURE: &str = "2099-01-05";
const FUTURE_RECHECK_DUE: &str = "2099-01-12";

async fn world(app: TestApp) -> World {
    let s = scene(
        app,
        &[
            "一号店",
            "二号店",
            "三号店",
            "四号店",
            "五号店",
            "六号店",
            "七号店",
            "八号店",
        ],
        &["周良街道", "宝平街道"],
    )
    .await;
    // Waiting: three, submitted in another order than their tasks' (the queue is oldest
    // submission first); one of them 不符合 with flagged photos, one flagged itself.
    // Declared as computed: only the photos' flags are on it.
    let b = s
        .submit(
            0,
            1,
            Submission {
                failed: &[KEY[0], KEY[1]],
                declared: "non_compliant",
                photo_item: Some(KEY[0]),
                ..Submission::default()
            },
        )
        .await;
    s.sql_photo_flags(&b, r#"["outside_radius","captured_outside_inspection"]"#)
        .await;
    // Declared 不符合, computed 符合: the submission flags it `declared_result_differs`.
    let c = s
        .submit(
            0,
            2,
            Submission {
                declared: "non_compliant",
                ..Submission::default()
            },
        )
        .await;
    let a = s.submit(0, 0, Submission::default()).await;
    // Returned with a comment, not resubmitted.
    let returned = s.submit(0, 3, Submission::default()).await;
    s.review(
        &returned,
        serde_json::json!({"decision": "returned", "comment": "请补充照片"}),
    )
    .await;
    // Approved 不符合 in March 2024: its rectification deadline has passed.
    let non_compliant = || Submission {
        failed: &[KEY[0], KEY[1]],
        declared: "non_compliant",
        ..Submission::default()
    };
    let approved = s.submit(0, 4, non_compliant()).await;
    let approve = serde_json::json!({"decision": "approved"});
    let rectification_overdue = s
        .approve_on(&approved, approve.clone(), PAST)
        .await
        .unwrap();
    // Task 5 is not submitted and past its due date.
    let overdue_task = s.plans[0].tasks[5].0.clone();
    s.sql_due_date(&overdue_task, "2020-01-01").await;
    // Approved far ahead: its deadline is beyond any horizon.
    s.add_calendar_year(2099).await;
    let later = s.submit(0, 6, non_compliant()).await;
    let rectification_later = s.approve_on(&later, approve, FUTURE).await.unwrap();
    // Approved with another recheck team (task 5's) and its recheck scheduled: the task is
    // with that team, due far ahead.
    let rechecked = s.submit(0, 7, non_compliant()).await;
    let team: Vec<String> = s.plans[0].tasks[5].2.iter().map(|m| s.user_id(m)).collect();
    let recheck_followup = s
        .approve_on(
            &rechecked,
            serde_json::json!({"decision": "approved", "followup": {"recheck_team": team}}),
            PAST,
        )
        .await
        .unwrap();
    let recheck_task = s.schedule_recheck_on(&recheck_followup, FUTURE).await;
    World {
        waiting: vec![(b, 1), (c, 2), (a, 0)],
        s,
        returned,
        approved,
        overdue_task,
        rectification_overdue,
        rectification_later,
        recheck_followup,
        recheck_task,
    }
}

async fn page(w: &World, queue: &str, query: &str) -> Value {
    let (st, body) =
        w.s.app
            .get(
                &format!("/api/v1/review/queues/{queue}?{query}"),
                &w.s.reviewer,
            )
            .await;
    assert_eq!(st, StatusCode::OK, "{queue}?{query}: {body}");
    body
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

async fn queues_list_the_right_entries_in_order(app: TestApp) {
    let w = world(app).await;
    let waiting = page(&w, "waiting", "").await;
    let want: Vec<String> = w.waiting.iter().map(|(i, _)| i.clone()).collect();
    assert_eq!(ids(&waiting), want, "oldest submission first");
    assert_eq!(waiting["next_cursor"], Value::Null);
    let first = &waiting["items"][0];
    assert_eq!(first["kind"], "inspection");
    assert_eq!(first["review_state"], "submitted");
    assert_eq!(first["effective_result"], "non_compliant");
    assert_eq!(first["flagged_photos"], 1);
    assert_eq!(
        first["establishment"]["id"],
        w.s.plans[0].tasks[1].1.as_str()
    );
    assert_eq!(first["team"].as_array().unwrap().len(), 2);
    assert!(first["team"][0]["badge_no"]
        .as_str()
        .unwrap()
        .starts_with("TJ-"));
    assert_eq!(first["round_title"], "2024年第1期");

    assert_eq!(
        ids(&page(&w, "returned", "").await),
        vec![w.returned.clone()]
    );
    let flagged = page(&w, "flagged", "").await;
    assert_eq!(
        ids(&flagged),
        vec![w.waiting[0].0.clone(), w.waiting[1].0.clone()]
    );
    assert_eq!(
        flagged["items"][1]["flags"],
        serde_json::json!(["declared_result_differs"])
    );

    let overdue = page(&w, "overdue_tasks", "").await;
    assert_eq!(ids(&overdue), vec![w.overdue_task.clone()]);
    assert_eq!(overdue["items"][0]["kind"], "task");
    assert_eq!(overdue["items"][0]["overdue"], true);
    assert_eq!(overdue["items"][0]["due_date"], "2020-01-01");

    let due = page(&w, "rectifications_due", "").await;
    assert_eq!(ids(&due), vec![w.rectification_overdue.clone()]);
    assert_eq!(due["items"][0]["overdue"], true);
    assert_eq!(due["items"][0]["inspection_id"], w.approved.as_str());
    assert_eq!(due["items"][0]["due_date"], PAST_DEADLINE);
    // A wider horizon takes in the later one too, after the overdue one.
    let wide = page(&w, "rectifications_due", "within_days=366").await;
    assert_eq!(ids(&wide), vec![w.rectification_overdue.clone()]);
    let (st, b) =
        w.s.app
            .get(
                "/api/v1/review/queues/rectifications_due?within_days=367",
                &w.s.reviewer,
            )
            .await;
    assert_error(st, &b, 400, "invalid_filter");
    assert!(
        !ids(&wide).contains(&w.rectification_later),
        "2099 is beyond any horizon"
    );

    let rechecks = page(&w, "rechecks_due", "").await;
    assert_eq!(ids(&rechecks), vec![w.recheck_followup.clone()]);
    assert_eq!(rechecks["items"][0]["task_id"], w.recheck_task.as_str());
    assert_eq!(rechecks["items"][0]["recheck_due_date"], FUTURE_RECHECK_DUE);
    assert_eq!(rechecks["items"][0]["overdue"], false);
    assert_eq!(rechecks["items"][0]["team"].as_array().unwrap().len(), 2);

    let (st, counts) = w.s.app.get("/api/v1/review/counts", &w.s.reviewer).await;
    assert_eq!(st, StatusCode::OK, "{counts}");
    assert_eq!(
        counts,
        serde_json::json!({"waiting": 3, "returned": 1, "overdue_tasks": 1, "flagged": 2,
                           "rectifications_due": 1, "rechecks_due": 1})
    );
    // Admins too.
    let (st, _) = w.s.app.get("/api/v1/review/counts", &w.s.admin).await;
    assert_eq!(st, StatusCode::OK);
}

async fn filters_narrow_every_queue_and_counts_agree(app: TestApp) {
    let w = world(app).await;
    let plan = w.s.plans[0].id.clone();
    let task1_members = w.s.plans[0].tasks[1].2.clone();
    let member = w.s.user_id(&task1_members[0]);
    let cases: Vec<(String, Vec<(&str, usize)>)> = vec![
        (
            format!("plan_id={plan}"),
            vec![
                ("waiting", 3),
                ("flagged", 2),
                ("overdue_tasks", 1),
                ("rechecks_due", 1),
            ],
        ),
        (
            "plan_id=00000000-0000-4000-8000-000000000000".into(),
            vec![
                ("waiting", 0),
                ("overdue_tasks", 0),
                ("rectifications_due", 0),
            ],
        ),
        (
            "round=2024年第1期".into(),
            vec![("waiting", 3), ("returned", 1)],
        ),
        (format!("round={plan}"), vec![("waiting", 3)]),
        ("round=第9期".into(), vec![("waiting", 0), ("returned", 0)]),
        (
            "result=non_compliant".into(),
            vec![
                ("waiting", 1),
                ("flagged", 1),
                ("overdue_tasks", 0),
                ("rectifications_due", 1),
            ],
        ),
        (
            "result=compliant".into(),
            vec![("waiting", 2), ("returned", 1), ("rectifications_due", 0)],
        ),
        (
            "flag=outside_radius".into(),
            vec![
                ("waiting", 1),
                ("flagged", 1),
                ("returned", 0),
                ("overdue_tasks", 0),
            ],
        ),
        (
            "flag=declared_result_differs".into(),
            vec![("waiting", 1), ("flagged", 1)],
        ),
        (
            format!("member={member}"),
            vec![(
                "rechecks_due",
                usize::from(w.s.plans[0].tasks[5].2.contains(&task1_members[0])),
            )],
        ),
    ];
    for (query, expect) in &cases {
        let (st, counts) =
            w.s.app
                .get(&format!("/api/v1/review/counts?{query}"), &w.s.reviewer)
                .await;
        assert_eq!(st, StatusCode::OK, "{query}: {counts}");
        for (queue, n) in expect {
            let p = page(&w, queue, query).await;
            assert_eq!(
                p["items"].as_array().unwrap().len(),
                *n,
                "{queue}?{query}: {p}"
            );
            assert_eq!(counts[*queue], *n as i64, "counts?{query}: {counts}");
        }
    }
    // The member filter keeps exactly the entries whose team includes the member.
    let p = page(&w, "waiting", &format!("member={member}")).await;
    assert!(!p["items"].as_array().unwrap().is_empty());
    for e in p["items"].as_array().unwrap() {
        assert!(
            e["team"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["user_id"] == member.as_str()),
            "{e}"
        );
    }
    // Each town's share of every queue, as the unfiltered queue shows it.
    for town in ["周良街道", "宝平街道"] {
        let (_, counts) =
            w.s.app
                .get(
                    &format!("/api/v1/review/counts?town={town}&within_days=0"),
                    &w.s.reviewer,
                )
                .await;
        for queue in Queue::ALL.map(|q| q.as_str()) {
            let all = page(&w, queue, "within_days=0").await;
            let want: Vec<String> = all["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["establishment"]["town"] == town)
                .map(|e| e["id"].as_str().unwrap().to_string())
                .collect();
            let got = ids(&page(&w, queue, &format!("town={town}&within_days=0")).await);
            assert_eq!(got, want, "{queue}?town={town}");
            assert_eq!(counts[queue], want.len() as i64, "{queue}?town={town}");
        }
    }
}

async fn cursor_paging_walks_each_queue_once(app: TestApp) {
    let w = world(app).await;
    for queue in [
        "waiting",
        "flagged",
        "returned",
        "overdue_tasks",
        "rectifications_due",
        "rechecks_due",
    ] {
        let all = ids(&page(&w, queue, "limit=200").await);
        let mut seen = Vec::new();
        let mut query = "limit=1".to_string();
        for _ in 0..10 {
            let p = page(&w, queue, &query).await;
            seen.extend(ids(&p));
            match p["next_cursor"].as_str() {
                Some(c) => query = format!("limit=1&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(seen, all, "{queue}");
    }
    // Waiting with limit 2: two pages, the second with the rest.
    let p1 = page(&w, "waiting", "limit=2").await;
    assert_eq!(ids(&p1).len(), 2);
    let c = p1["next_cursor"].as_str().unwrap();
    let p2 = page(&w, "waiting", &format!("limit=2&cursor={c}")).await;
    assert_eq!(ids(&p2), vec![w.waiting[2].0.clone()]);
    assert_eq!(p2["next_cursor"], Value::Null);
}

async fn bad_queue_filter_and_cursor_are_4xx(app: TestApp) {
    let w = world(app).await;
    let r = &w.s.reviewer;
    let app = &w.s.app;
    let (st, b) = app.get("/api/v1/review/queues/everything", r).await;
    assert_error(st, &b, 404, "unknown_queue");
    for q in [
        "limit=0",
        "limit=201",
        "result=good",
        "flag=red",
        "within_days=1000",
    ] {
        let (st, b) = app
            .get(&format!("/api/v1/review/queues/waiting?{q}"), r)
            .await;
        assert_error(st, &b, 400, "invalid_filter");
    }
    let (st, b) = app.get("/api/v1/review/queues/waiting?limit=x", r).await;
    assert_error(st, &b, 400, "bad_request");
    let (st, b) = app.get("/api/v1/review/counts?flag=red", r).await;
    assert_error(st, &b, 400, "invalid_filter");
    for c in ["garbage", "eyJxIjoid2FpdGluZyJ9", "%00"] {
        let (st, b) = app
            .get(&format!("/api/v1/review/queues/waiting?cursor={c}"), r)
            .await;
        assert!(st.is_client_error(), "{c}: {st} {b}");
        if c != "%00" {
            assert_error(st, &b, 400, "invalid_cursor");
        }
    }
    // A cursor of one queue is refused by another.
    let p = page(&w, "waiting", "limit=1").await;
    let c = p["next_cursor"].as_str().unwrap();
    let (st, b) = app
        .get(&format!("/api/v1/review/queues/flagged?cursor={c}"), r)
        .await;
    assert_error(st, &b, 400, "invalid_cursor");
    // Inspectors and labs: 403.
    let inspector = w.s.token(&w.s.plans[0].tasks[0].2[0]).await;
    let (st, b) = app.get("/api/v1/review/queues/waiting", &inspector).await;
    assert_error(st, &b, 403, "forbidden");
    let (st, b) = app.get("/api/v1/review/counts", &inspector).await;
    assert_error(st, &b, 403, "forbidden");
}

/// Every queue's page (first and later) and count walk an index: no full scan of the queue's
/// table, and (SQLite) the unfiltered page's keys come in index order, unsorted. On PostgreSQL with sequential scans disabled, a
/// plan still showing one has no index to use.
async fn every_queue_walks_an_index(app: TestApp) {
    let w = world(app).await;
    let mut conn = w.s.app.db().acquire().await.unwrap();
    let backend = w.s.app.backend();
    if backend == Backend::Postgres {
        sqlx::query("SET enable_seqscan = off")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let filters = [
        QueueFilter {
            within_days: 7,
            ..QueueFilter::default()
        },
        QueueFilter {
            plan_id: Some("p".into()),
            town: Some("t".into()),
            member: Some("m".into()),
            result: Some(foodcheck::checklist::rule::ResultCode::Compliant),
            flag: Some(ReviewFlag::OutsideRadius),
            round: Some("r".into()),
            within_days: 7,
        },
    ];
    let mut problems = Vec::new();
    for q in Queue::ALL {
        let key = if q == Queue::Waiting || q == Queue::Returned || q == Queue::Flagged {
            SortKey::Time(1)
        } else {
            SortKey::Date("2024-01-01".into())
        };
        let cursor = Cursor {
            queue: q,
            key,
            id: "x".into(),
        };
        for (n, f) in filters.iter().enumerate() {
            let mut sqls = vec![
                (
                    "page keys",
                    key_sql(q, f, "2024-06-01", "2024-06-08", None, 51),
                ),
                (
                    "next page keys",
                    key_sql(q, f, "2024-06-01", "2024-06-08", Some(&cursor), 51),
                ),
                // The page itself sorts only its own rows.
                (
                    "page",
                    queue_sql(q, f, "2024-06-01", "2024-06-08", None, 51),
                ),
            ];
            sqls.push(("count", count_sql(q, f, "2024-06-01", "2024-06-08")));
            for (what, sql) in sqls {
                let plan = explain(&mut conn, &sql).await.unwrap();
                let text = plan.join("\n");
                let bad = match backend {
                    Backend::Sqlite => plan.iter().any(|l| {
                        let l = l.trim();
                        (l.starts_with("SCAN ") && !l.starts_with("SCAN CONSTANT"))
                            // Unfiltered, the page is read in index order; a selective filter may
                            // take another index (e.g. tasks by plan) and sort what it found.
                            || (what.ends_with("keys") && n == 0 && l.contains("TEMP B-TREE FOR ORDER BY"))
                    }),
                    Backend::Postgres => ["inspections", "tasks", "followups", "photos", "task_members"]
                        .iter()
                        .any(|t| text.contains(&format!("Seq Scan on {t} "))),
                };
                if bad {
                    problems.push(format!(
                        "{} {what} (filters: {f:?}):\n{text}\n{}",
                        q.as_str(),
                        sql.text
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The flagged queue reads a marker the database keeps (0017's triggers): it follows the
/// photos' flags (set, cleared, photo deleted) and the inspection's own flags, whatever writes
/// them, and the count agrees with the queue at each step.
async fn flagged_marker_follows_every_write(app: TestApp) {
    let w = world(app).await;
    let by_photo = w.waiting[0].0.clone();
    let by_server = w.waiting[1].0.clone();
    let flagged = || async {
        let listed = ids(&page(&w, "flagged", "").await);
        let (_, counts) = w.s.app.get("/api/v1/review/counts", &w.s.reviewer).await;
        assert_eq!(counts["flagged"], listed.len() as i64, "{counts}");
        listed
    };
    let pool = w.s.app.db().pool().clone();
    let exec = |sql: &'static str, id: String| {
        let pool = pool.clone();
        async move {
            sqlx::query(sql).bind(id).execute(&pool).await.unwrap();
        }
    };
    assert_eq!(flagged().await, [by_photo.clone(), by_server.clone()]);
    exec(
        "UPDATE photos SET flags = '[]' WHERE inspection_id = $1",
        by_photo.clone(),
    )
    .await;
    assert_eq!(flagged().await, std::slice::from_ref(&by_server));
    exec(
        "UPDATE photos SET flags = '[\"exif_far\"]' WHERE inspection_id = $1",
        by_photo.clone(),
    )
    .await;
    assert_eq!(flagged().await, [by_photo.clone(), by_server.clone()]);
    exec(
        "DELETE FROM photos WHERE inspection_id = $1",
        by_photo.clone(),
    )
    .await;
    assert_eq!(flagged().await, std::slice::from_ref(&by_server));
    exec(
        "UPDATE inspections SET server_flags = '[]' WHERE id = $1",
        by_server.clone(),
    )
    .await;
    assert!(flagged().await.is_empty());
    exec(
        "UPDATE inspections SET server_flags = '[\"outside_radius\"]' WHERE id = $1",
        by_server.clone(),
    )
    .await;
    assert_eq!(flagged().await, [by_server]);
}
