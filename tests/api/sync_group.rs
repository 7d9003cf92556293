//! Concurrent pushes. On SQLite they share commits (group commit: one transaction, each push in
//! its own savepoint, answered after the shared COMMIT); on PostgreSQL each push keeps its own
//! transaction. The same outcomes are asserted on both: every push gets exactly its own answer,
//! and exactly the applied pushes' records are stored.
//!
//! On SQLite the tests hold the writer lock (`Db::begin_write`) while the pushes queue, then let
//! go, so the pushes form one batch for sure (asserted on the group commit's counters).

use std::time::{Duration, Instant};

use foodcheck::auth::Role;
use foodcheck::store::Backend;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{assert_error, TestApp};

both_backends!(
    concurrent_pushes_all_apply_with_distinct_seqs,
    each_push_of_a_batch_gets_its_own_answer,
);

const TEMPLATE: &str = "00000000-0000-4000-8000-000000002016";
/// Items of the 2016 table.
const ITEMS: [&str; 14] = [
    "3.1", "3.2", "4.1", "4.2", "6.1", "8.4", "9.3", "1.1", "2.1", "2.2", "2.3", "4.3", "4.4",
    "5.1",
];

struct World {
    app: TestApp,
    /// (username, user id).
    inspectors: Vec<(String, String)>,
    /// (task id, establishment id, member usernames).
    tasks: Vec<(String, String, Vec<String>)>,
}

/// `n` inspectors and `4 n` tasks drawn for teams of two.
async fn world(app: TestApp, n: usize) -> World {
    // Batches formed by the tests are never cut by a slow machine.
    app.db()
        .set_group_commit_bounds(64, Duration::from_secs(120));
    let admin = app.token_for("admin", Role::Admin).await;
    let mut inspectors = Vec::new();
    for i in 0..n {
        let name = format!("gc{i}");
        let id = app.user(&name, Role::Inspector).await;
        inspectors.push((name, id));
    }
    let shops = 4 * n;
    for i in 0..shops {
        let (s, e) = app
            .post(
                "/api/v1/establishments",
                &admin,
                json!({"sign_name": format!("店{i}"), "licensed_name": format!("公司{i}"), "license_no": format!("JY21201150{i:06}"),
                       "category": "small_restaurant", "address": "地址", "town": "周良街道", "risk_grade": "C",
                       "contact_phone": "13800138000", "location": {"lng": 117.29, "lat": 39.71, "crs": "gcj02"}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
    }
    let ids: Vec<&str> = inspectors.iter().map(|(_, id)| id.as_str()).collect();
    let (s, plan) = app
        .post(
            "/api/v1/plans",
            &admin,
            json!({"name": "n", "round_title": "第1期", "theme": "t", "period_start": "2024-03-01", "period_end": "2024-03-31",
                   "due_date": "2099-03-31", "template_id": TEMPLATE, "template_version": 1, "quotas": {"explicit": {"C": shops}},
                   "inspector_ids": ids, "team_size": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{plan}");
    let plan = plan["id"].as_str().unwrap();
    let (s, draw) = app
        .post(
            &format!("/api/v1/plans/{plan}/draw"),
            &admin,
            json!({"seed": "s"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{draw}");
    let tasks = crate::common::drawn_tasks(&app, &admin, plan, &inspectors).await;
    assert_eq!(tasks.len(), shops);
    World {
        app,
        inspectors,
        tasks,
    }
}

impl World {
    async fn device(&self, username: &str, device: &str) -> String {
        self.app.login_full(username, device).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `per` tasks of each inspector, no task twice: (inspector index, task index).
    fn own_tasks(&self, per: usize) -> Vec<(usize, usize)> {
        let mut used = vec![false; self.tasks.len()];
        let mut out = Vec::new();
        for round in 0..per {
            for (i, (name, _)) in self.inspectors.iter().enumerate() {
                let t = (0..self.tasks.len())
                    .find(|&t| !used[t] && self.tasks[t].2.contains(name))
                    .unwrap_or_else(|| panic!("no task left for {name} in round {round}"));
                used[t] = true;
                out.push((i, t));
            }
        }
        out
    }

    fn team_json(&self, task: usize) -> String {
        let members: Vec<Value> = self.tasks[task]
            .2
            .iter()
            .map(|n| json!({"user_id": self.inspectors.iter().find(|(m, _)| m == n).unwrap().1, "name": n, "badge_no": format!("TJ-{n}")}))
            .collect();
        serde_json::to_string(&members).unwrap()
    }

    /// One inspection of `task` with an answer per item, and GPS.
    fn inspection(&self, id: &str, task: usize) -> Value {
        let (task_id, est, _) = &self.tasks[task];
        let answers: Vec<Value> = ITEMS.iter().map(|item| answer(id, item)).collect();
        json!({"inspections": {"created": [inspection(id, task_id, est, &self.team_json(task))]},
               "answers": {"created": answers}})
    }
}

fn inspection(id: &str, task: &str, est: &str, team: &str) -> Value {
    json!({"id": id, "task_id": task, "establishment_id": est, "started_at": 1_710_000_000_000i64,
           "finished_at": null, "lng": 117.2903, "lat": 39.7102, "gps_accuracy_m": 12.5, "crs": "gcj02", "team": team,
           "representative_name": "王店长", "representative_signed": true, "representative_refused": false,
           "business_opinion": null, "other_findings": null, "declared_result": null, "submitted": false})
}

fn answer(inspection: &str, item: &str) -> Value {
    let id = Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("{inspection}:{item}").as_bytes(),
    );
    json!({"id": id, "inspection_id": inspection, "item_code": item, "status": "pass", "note": null})
}

async fn cursor(app: &TestApp, token: &str) -> i64 {
    let (s, p) = app
        .get("/api/v1/sync?last_pulled_at=null&schema_version=2", token)
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    p["timestamp"].as_i64().unwrap()
}

async fn push(app: &TestApp, token: &str, last: i64, changes: Value) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/sync?last_pulled_at={last}"),
        token,
        json!({"changes": changes}),
    )
    .await
}

/// Sends the pushes at once and answers in their order. On SQLite they are held until all are
/// queued for the writer, so they run as one batch (asserted: one more batch, of all of them).
async fn at_once(app: &TestApp, pushes: Vec<(String, i64, Value)>) -> Vec<(StatusCode, Value)> {
    let n = pushes.len() as u64;
    let sends = join_all(
        pushes
            .iter()
            .map(|(token, last, changes)| push(app, token, *last, changes.clone())),
    );
    if app.backend() == Backend::Postgres {
        return sends.await;
    }
    let before = app.db().group_commit_stats().unwrap();
    let held = app.db().begin_write().await.unwrap();
    let release = async {
        let deadline = Instant::now() + Duration::from_secs(60);
        while app.db().group_commit_stats().unwrap().submitted < before.submitted + n {
            assert!(
                Instant::now() < deadline,
                "the pushes never reached the writer"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        held.commit().await.unwrap();
    };
    let (answers, ()) = tokio::join!(sends, release);
    let after = app.db().group_commit_stats().unwrap();
    assert_eq!(
        (after.batches - before.batches, after.jobs - before.jobs),
        (1, n),
        "one batch of all the pushes: {before:?} → {after:?}"
    );
    assert_eq!(after.largest, n.max(before.largest));
    answers
}

/// (inspection id → (its seq, its answers' distinct seqs, how many answers)).
async fn stored(app: &TestApp, id: &str) -> Option<(i64, Vec<i64>, i64)> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT seq FROM inspections WHERE id = $1")
        .bind(id)
        .fetch_optional(app.db().pool())
        .await
        .unwrap();
    let (seq,) = row?;
    let seqs: Vec<(i64,)> =
        sqlx::query_as("SELECT DISTINCT seq FROM answers WHERE inspection_id = $1")
            .bind(id)
            .fetch_all(app.db().pool())
            .await
            .unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM answers WHERE inspection_id = $1")
        .bind(id)
        .fetch_one(app.db().pool())
        .await
        .unwrap();
    Some((seq, seqs.into_iter().map(|(s,)| s).collect(), n))
}

/// The seqs of the applied pushes: distinct and above the cursor they followed; on SQLite,
/// where a rolled-back push's counter bump is undone with its savepoint, exactly the next ones
/// (no gap). PostgreSQL's cursor may leave gaps, so there only distinct and ordered after.
fn assert_seqs(backend: Backend, cursor: i64, mut seqs: Vec<i64>) {
    seqs.sort();
    let n = seqs.len();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "each push has its own seq: {seqs:?}");
    assert!(seqs.iter().all(|&s| s > cursor), "{seqs:?} after {cursor}");
    if backend == Backend::Sqlite {
        let want: Vec<i64> = (cursor + 1..=cursor + n as i64).collect();
        assert_eq!(seqs, want, "contiguous after {cursor}");
    }
}

/// 16 pushes from 8 devices at once (two each), each one inspection with 14 answers: all apply,
/// each inspection once with all its answers, each push with its own seq.
async fn concurrent_pushes_all_apply_with_distinct_seqs(app: TestApp) {
    let w = world(app, 8).await;
    let mut tokens = Vec::new();
    for (name, _) in &w.inspectors {
        tokens.push(w.device(name, &format!("phone-{name}")).await);
    }
    let c = cursor(&w.app, &tokens[0]).await;
    let plan = w.own_tasks(2);
    let ids: Vec<String> = plan.iter().map(|_| Uuid::new_v4().to_string()).collect();
    let pushes = plan
        .iter()
        .zip(&ids)
        .map(|(&(i, t), id)| (tokens[i].clone(), c, w.inspection(id, t)))
        .collect();
    for (s, r) in at_once(&w.app, pushes).await {
        assert_eq!((s, r), (StatusCode::OK, json!({})));
    }
    let mut seqs = Vec::new();
    for id in &ids {
        let (seq, answer_seqs, n) = stored(&w.app, id).await.expect("stored");
        assert_eq!((answer_seqs, n), (vec![seq], ITEMS.len() as i64));
        seqs.push(seq);
    }
    assert_seqs(w.app.backend(), c, seqs);
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM inspections")
        .fetch_one(w.app.db().pool())
        .await
        .unwrap();
    assert_eq!(n, 16);
    // The cursor moved by exactly the pushes on SQLite; a teammate's pull from the old cursor
    // gets every record of their tasks.
    let (s, p) = w
        .app
        .get(
            &format!("/api/v1/sync?last_pulled_at={c}&schema_version=2"),
            &tokens[0],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    if w.app.backend() == Backend::Sqlite {
        assert_eq!(p["timestamp"].as_i64().unwrap(), c + 16);
    }
    let mine = plan
        .iter()
        .zip(&ids)
        .filter(|(&(_, t), _)| w.tasks[t].2.contains(&w.inspectors[0].0))
        .count();
    assert_eq!(
        p["changes"]["inspections"]["created"]
            .as_array()
            .unwrap()
            .len()
            + p["changes"]["inspections"]["updated"]
                .as_array()
                .unwrap()
                .len(),
        mine
    );
}

/// One batch: four plain pushes, a push with a 409 `sync_conflict`, one with a record refused
/// by rule (the rest applied), one with a cursor from the future (400) and (debug builds) one
/// that panics inside its write. Each gets its own answer; exactly the applied records stay.
async fn each_push_of_a_batch_gets_its_own_answer(app: TestApp) {
    let w = world(app, 8).await;
    let mut tokens = Vec::new();
    for (name, _) in &w.inspectors {
        tokens.push(w.device(name, &format!("dev-{name}")).await);
    }
    let plan = w.own_tasks(2);
    // The conflict: inspector 0 creates X, a second device of theirs pulls, then X changes.
    let (x_task, x) = (plan[0].1, Uuid::new_v4().to_string());
    let c0 = cursor(&w.app, &tokens[0]).await;
    let (s, _) = push(&w.app, &tokens[0], c0, w.inspection(&x, x_task)).await;
    assert_eq!(s, StatusCode::OK);
    let stale_device = w.device(&w.inspectors[0].0, "stale-phone").await;
    let stale = cursor(&w.app, &stale_device).await;
    let (task_id, est, _) = &w.tasks[x_task];
    let mut edit = inspection(&x, task_id, est, &w.team_json(x_task));
    edit["business_opinion"] = json!("无异议");
    let (s, _) = push(
        &w.app,
        &tokens[0],
        stale,
        json!({"inspections": {"updated": [edit.clone()]}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let c = cursor(&w.app, &tokens[0]).await;

    let mut pushes = Vec::new();
    let mut plain = Vec::new();
    for &(i, t) in &plan[1..5] {
        let id = Uuid::new_v4().to_string();
        pushes.push((tokens[i].clone(), c, w.inspection(&id, t)));
        plain.push(id);
    }
    // 409: the stale device edits X and adds an answer.
    let mut late = edit.clone();
    late["other_findings"] = json!("冷藏柜温度偏高");
    let mut conflict_answer = answer(&x, "9.3");
    conflict_answer["status"] = json!("fail");
    pushes.push((
        stale_device.clone(),
        stale,
        json!({"inspections": {"updated": [late]}, "answers": {"created": [conflict_answer.clone()]}}),
    ));
    // Refused per record: an inspection of a task not theirs beside a good one.
    let (ri, rt) = plan[5];
    let foreign = (0..w.tasks.len())
        .find(|&t| !w.tasks[t].2.contains(&w.inspectors[ri].0))
        .unwrap();
    let (good, stolen) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let mut refused = w.inspection(&good, rt);
    refused["inspections"]["created"]
        .as_array_mut()
        .unwrap()
        .push(inspection(
            &stolen,
            &w.tasks[foreign].0,
            &w.tasks[foreign].1,
            "[]",
        ));
    pushes.push((tokens[ri].clone(), c, refused));
    // 400: a cursor this server never gave out.
    let (bi, bt) = plan[6];
    let future = Uuid::new_v4().to_string();
    pushes.push((tokens[bi].clone(), c + 1_000_000, w.inspection(&future, bt)));
    // 500: a push that panics after its writes (debug builds only).
    #[cfg(not(debug_assertions))]
    let panicked: Option<String> = None;
    #[cfg(debug_assertions)]
    let panicked = {
        let (pi, pt) = plan[7];
        let device = format!("panic-{}", Uuid::new_v4());
        foodcheck::ops::sync::debug::panic_on_push_from(&device);
        let token = w.device(&w.inspectors[pi].0, &device).await;
        let id = Uuid::new_v4().to_string();
        pushes.push((token, c, w.inspection(&id, pt)));
        Some(id)
    };

    let answers = at_once(&w.app, pushes).await;
    for (s, r) in &answers[..4] {
        assert_eq!((*s, r), (StatusCode::OK, &json!({})));
    }
    assert_error(answers[4].0, &answers[4].1, 409, "sync_conflict");
    let (s, r) = &answers[5];
    assert_eq!(*s, StatusCode::OK, "{r}");
    assert_eq!(
        r["experimentalRejectedIds"],
        json!({"inspections": [stolen]})
    );
    assert_eq!(r["rejected"][0]["code"], "not_your_task");
    assert_error(answers[6].0, &answers[6].1, 400, "invalid_cursor");
    if panicked.is_some() {
        assert_error(answers[7].0, &answers[7].1, 500, "internal_error");
    }

    // Applied: the four plain pushes and the refused one's good inspection, each complete.
    let mut seqs = Vec::new();
    for id in plain.iter().chain([&good]) {
        let (seq, answer_seqs, n) = stored(&w.app, id).await.expect("applied");
        assert_eq!((answer_seqs, n), (vec![seq], ITEMS.len() as i64));
        seqs.push(seq);
    }
    assert_seqs(w.app.backend(), c, seqs);
    // Nothing of the others.
    for id in [&stolen, &future].into_iter().chain(panicked.as_ref()) {
        assert_eq!(stored(&w.app, id).await, None, "{id} applied");
    }
    let (opinion, findings, answers_of_x): (Option<String>, Option<String>, i64) = sqlx::query_as(
        "SELECT business_opinion, other_findings, (SELECT COUNT(*) FROM answers WHERE inspection_id = $1 AND status = 'pass') \
         FROM inspections WHERE id = $1",
    )
    .bind(&x)
    .fetch_one(w.app.db().pool())
    .await
    .unwrap();
    assert_eq!(
        (opinion.as_deref(), findings, answers_of_x),
        (Some("无异议"), None, ITEMS.len() as i64),
        "the 409 applied nothing"
    );
    // SQLite: the rolled-back pushes left no seq behind; the cursor is just past the applied.
    if w.app.backend() == Backend::Sqlite {
        assert_eq!(cursor(&w.app, &tokens[0]).await, c + 5);
    }
    // The writer goes on after the panic: a push after the batch applies.
    let (i, t) = plan[8];
    let after = Uuid::new_v4().to_string();
    let (s, r) = push(&w.app, &tokens[i], c, w.inspection(&after, t)).await;
    assert_eq!((s, r), (StatusCode::OK, json!({})));
    assert!(stored(&w.app, &after).await.is_some());
}
