//! Review decisions over HTTP (`POST /api/v1/inspections/{id}/review`) and what the team's
//! devices see of them by sync: approve (with an override), return → fix offline → resubmit →
//! approve, reject → redo, the bad-input and concurrency rules, roles, schema 5.

use foodcheck::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{assert_error, TestApp};

both_backends!(
    approve_with_override_is_final_and_reaches_the_devices,
    return_fix_resubmit_approve_over_sync,
    reject_voids_it_and_the_task_is_redone,
    reassigned_task_moves_between_the_teams_devices,
    bad_input_is_4xx_and_changes_nothing,
    concurrent_decisions_exactly_one_wins,
    only_reviewers_and_admins_decide_and_they_cannot_push,
    schema_5_tables_and_the_migration_pull,
    inspections_submitted_before_review_are_backfilled,
);

const TEMPLATE: &str = "00000000-0000-4000-8000-000000002016";
const KEY: [&str; 3] = ["3.1", "3.2", "4.1"];
const GENERAL: [&str; 7] = ["1.1", "2.1", "2.2", "2.3", "4.3", "4.4", "5.1"];

struct World {
    app: TestApp,
    admin: String,
    /// (token, user id) of two reviewers.
    reviewers: Vec<(String, String)>,
    /// (username, user id) of the 4 inspectors.
    inspectors: Vec<(String, String)>,
    /// Task id, establishment id, member usernames: two tasks of disjoint teams.
    tasks: Vec<(String, String, Vec<String>)>,
}

/// A submitted inspection and the device that submitted it.
struct Submitted {
    iid: String,
    task: String,
    est: String,
    token: String,
    /// The device's cursor after pulling its submission back.
    cursor: i64,
    /// The inspection record as the device pushed it.
    rec: Value,
}

async fn world(app: TestApp) -> World {
    let admin = app.token_for("admin", Role::Admin).await;
    crate::common::cover_this_and_next_year(&app, &admin).await;
    let mut reviewers = Vec::new();
    for name in ["rev1", "rev2"] {
        let id = app.user(name, Role::Reviewer).await;
        let token = app.login_full(name, "office-pc").await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        reviewers.push((token, id));
    }
    let mut inspectors = Vec::new();
    for i in 0..4 {
        let name = format!("insp{i}");
        let id = app.user(&name, Role::Inspector).await;
        inspectors.push((name, id));
    }
    for i in 0..2 {
        let (s, e) = app
            .post(
                "/api/v1/establishments",
                &admin,
                json!({"sign_name": format!("审核店{i}"), "licensed_name": format!("审核公司{i}"), "license_no": format!("JY21201150{i:06}"),
                       "category": "small_restaurant", "address": "地址", "town": "周良街道", "risk_grade": "C",
                       "location": {"lng": 117.29, "lat": 39.71, "crs": "gcj02"}}),
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
                   "due_date": "2099-03-31", "template_id": TEMPLATE, "template_version": 1, "quotas": {"explicit": {"C": 2}},
                   "inspector_ids": ids, "team_size": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{plan}");
    let plan = plan["id"].as_str().unwrap().to_string();
    let (s, draw) = app
        .post(
            &format!("/api/v1/plans/{plan}/draw"),
            &admin,
            json!({"seed": "review"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{draw}");
    let tasks = crate::common::drawn_tasks(&app, &admin, &plan, &inspectors).await;
    assert_eq!(tasks.len(), 2);
    World {
        app,
        admin,
        reviewers,
        inspectors,
        tasks,
    }
}

fn inspection(id: &str, task: &str, est: &str, team: &str) -> Value {
    json!({"id": id, "_status": "created", "_changed": "", "task_id": task, "establishment_id": est, "started_at": 1_710_000_000_000i64,
           "finished_at": 1_710_003_600_000i64, "lng": 117.2903, "lat": 39.7102, "gps_accuracy_m": 12.5, "crs": "gcj02", "team": team,
           "representative_name": "王店长", "representative_signed": true, "representative_refused": false,
           "business_opinion": "无异议", "other_findings": null, "declared_result": null, "submitted": false,
           "computed_result": null, "review_state": null, "server_flags": null})
}

fn answer(inspection: &str, item: &str, status: &str) -> Value {
    let id = Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("{inspection}:{item}").as_bytes(),
    );
    json!({"id": id, "inspection_id": inspection, "item_code": item, "status": status, "note": null})
}

/// 3 key and 7 general items: all pass but `failed` (general items) → 基本符合 with one failure.
fn answers(inspection: &str, failed: &[&str]) -> Vec<Value> {
    KEY.iter()
        .chain(GENERAL.iter())
        .map(|c| {
            answer(
                inspection,
                c,
                if failed.contains(c) { "fail" } else { "pass" },
            )
        })
        .collect()
}

async fn pull(app: &TestApp, token: &str, last: Option<i64>, version: u32) -> Value {
    let last = last.map(|l| l.to_string()).unwrap_or_else(|| "null".into());
    let (s, body) = app
        .get(
            &format!("/api/v1/sync?last_pulled_at={last}&schema_version={version}&migration=null"),
            token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body
}

async fn push(app: &TestApp, token: &str, last: i64, changes: Value) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/sync?last_pulled_at={last}"),
        token,
        json!({"changes": changes}),
    )
    .await
}

/// The records of `table` in a pull (created and updated) with id `id`.
fn pulled<'a>(p: &'a Value, table: &str, id: &str) -> Option<&'a Value> {
    ["created", "updated"]
        .iter()
        .flat_map(|k| p["changes"][table][k].as_array().into_iter().flatten())
        .find(|r| r["id"] == id)
}

/// The refusal codes of a push answer, as (table, id, code).
fn refusals(r: &Value) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = r["rejected"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x["table"].as_str().unwrap().to_string(),
                        x["id"].as_str().unwrap().to_string(),
                        x["code"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

type AuditRow = (String, Option<String>, Option<String>, String);

async fn audit_of(app: &TestApp, record_id: &str, action: &str) -> Vec<AuditRow> {
    sqlx::query_as(
        "SELECT action, actor_id, actor_role, changes FROM audit_events \
         WHERE record_id = $1 AND action = $2 ORDER BY id",
    )
    .bind(record_id)
    .bind(action)
    .fetch_all(app.db().pool())
    .await
    .unwrap()
}

/// The `{field, before, after}` change of `field` in an audit row's changes.
fn change(row: &AuditRow, field: &str) -> Value {
    let changes: Value = serde_json::from_str(&row.3).unwrap();
    changes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == field)
        .cloned()
        .unwrap_or(Value::Null)
}

async fn scalar(app: &TestApp, sql: &str, id: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .bind(id)
        .fetch_one(app.db().pool())
        .await
        .unwrap();
    n
}

async fn reviews_of(app: &TestApp, iid: &str) -> Vec<(i64, String)> {
    sqlx::query_as(
        "SELECT round, decision FROM reviews WHERE inspection_id = $1 ORDER BY round, decided_at",
    )
    .bind(iid)
    .fetch_all(app.db().pool())
    .await
    .unwrap()
}

impl World {
    async fn device(&self, username: &str, device: &str) -> String {
        self.app.login_full(username, device).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn team_json(&self, task: usize) -> String {
        let members: Vec<Value> = self.tasks[task]
            .2
            .iter()
            .map(|n| json!({"user_id": self.inspectors.iter().find(|(m, _)| m == n).unwrap().1, "name": n, "badge_no": format!("TJ-{n}")}))
            .collect();
        serde_json::to_string(&members).unwrap()
    }

    fn member(&self, task: usize) -> &str {
        &self.tasks[task].2[0]
    }

    /// A member's new device pushes a complete inspection of `task` with `submitted: true`,
    /// the general items `failed` failing, and pulls it back.
    async fn submit(&self, task: usize, device: &str, failed: &[&str]) -> Submitted {
        let (task_id, est, _) = self.tasks[task].clone();
        let token = self.device(self.member(task), device).await;
        let p = pull(&self.app, &token, None, 5).await;
        let cursor = p["timestamp"].as_i64().unwrap();
        let iid = Uuid::new_v4().to_string();
        let mut rec = inspection(&iid, &task_id, &est, &self.team_json(task));
        rec["submitted"] = json!(true);
        let (s, r) = push(
            &self.app,
            &token,
            cursor,
            json!({"inspections": {"created": [rec.clone()]}, "answers": {"created": answers(&iid, failed)}}),
        )
        .await;
        assert_eq!((s, &r), (StatusCode::OK, &json!({})), "submission");
        let p = pull(&self.app, &token, Some(cursor), 5).await;
        let back = pulled(&p, "inspections", &iid).expect("the submission comes back");
        assert_eq!(back["review_state"], "submitted");
        assert_eq!(back["review_round"], 1);
        Submitted {
            iid,
            task: task_id,
            est,
            token,
            cursor: p["timestamp"].as_i64().unwrap(),
            rec,
        }
    }

    async fn review(&self, token: &str, iid: &str, body: Value) -> (StatusCode, Value) {
        self.app
            .post(&format!("/api/v1/inspections/{iid}/review"), token, body)
            .await
    }

    /// The inspection as reviewers list it (`GET /api/v1/inspections?task_id=`).
    async fn listed(&self, task: &str, iid: &str) -> Value {
        let (s, list) = self
            .app
            .get(&format!("/api/v1/inspections?task_id={task}"), &self.admin)
            .await;
        assert_eq!(s, StatusCode::OK, "{list}");
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == iid)
            .cloned()
            .unwrap_or(Value::Null)
    }

    async fn task_state(&self, task: &str) -> String {
        let (s, t) = self
            .app
            .get(&format!("/api/v1/tasks/{task}"), &self.admin)
            .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        t["state"].as_str().unwrap().to_string()
    }
}

/// Approval with an override: the view shows computed, override and effective results; the
/// devices pull the decision (never the internal note); a device that edits offline meanwhile
/// is refused per record (not a 409) and the rest of its push applies; a second decision is
/// 409; the audit log has the decision with before/after.
async fn approve_with_override_is_final_and_reaches_the_devices(app: TestApp) {
    let w = world(app).await;
    let s = w.submit(0, "phone-a", &["2.3"]).await;
    let (rev, rev_id) = &w.reviewers[0];
    let (st, v) = w
        .review(
            rev,
            &s.iid,
            json!({"decision": "approved", "comment": "同意", "override_result": "non_compliant",
                   "override_reason": "现场发现过期食品，按不符合处理", "internal_note": "科内：下月重点关注"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["inspection_id"], s.iid.as_str());
    assert_eq!(v["task_id"], s.task.as_str());
    assert_eq!(v["review_state"], "approved");
    assert_eq!(v["review_round"], 1);
    assert_eq!(v["computed_result"], "basically_compliant");
    assert_eq!(v["override_result"], "non_compliant");
    assert_eq!(v["override_reason"], "现场发现过期食品，按不符合处理");
    assert_eq!(v["effective_result"], "non_compliant");
    assert_eq!(v["reviewed_by"], rev_id.as_str());
    assert!(v["reviewed_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    // The result that stands (the override, 不符合) opens the follow-up, not the computed one.
    let followup = v["followup_id"]
        .as_str()
        .expect("a follow-up for 不符合")
        .to_string();
    let (origin,): (String,) =
        sqlx::query_as("SELECT origin_result FROM followups WHERE id = $1 AND inspection_id = $2")
            .bind(&followup)
            .bind(&s.iid)
            .fetch_one(w.app.db().pool())
            .await
            .unwrap();
    assert_eq!(origin, "non_compliant");
    assert_eq!(v["review"]["decision"], "approved");
    assert_eq!(v["review"]["round"], 1);
    assert_eq!(v["review"]["internal_note"], "科内：下月重点关注");
    assert_eq!(v["review"]["reviewer_name"], "Name of rev1");

    // Both results stay visible where reviewers list inspections.
    let listed = w.listed(&s.task, &s.iid).await;
    assert_eq!(listed["computed_result"], "basically_compliant");
    assert_eq!(listed["override_result"], "non_compliant");
    assert_eq!(listed["review_state"], "approved");
    assert_eq!(listed["submitted"], true);

    // The device edited offline before it heard of the approval: its edits of the approved
    // inspection are refused per record (no 409 although the inspection changed after its
    // cursor), and the new inspection in the same push is applied.
    let mut edit = s.rec.clone();
    edit["other_findings"] = json!("补记：后厨地面湿滑");
    let fresh = Uuid::new_v4().to_string();
    let (st, r) = push(
        &w.app,
        &s.token,
        s.cursor,
        json!({"inspections": {"updated": [edit], "created": [inspection(&fresh, &s.task, &s.est, &w.team_json(0))]},
               "answers": {"updated": [answer(&s.iid, "2.3", "pass")]}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let answer_id = answer(&s.iid, "2.3", "pass")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut want = vec![
        (
            "answers".to_string(),
            answer_id,
            "inspection_approved".to_string(),
        ),
        (
            "inspections".to_string(),
            s.iid.clone(),
            "inspection_approved".to_string(),
        ),
    ];
    want.sort();
    assert_eq!(refusals(&r), want, "{r}");
    let after = w.listed(&s.task, &s.iid).await;
    assert_eq!(
        after["other_findings"],
        Value::Null,
        "nothing of the refused edit applied"
    );
    assert_eq!(after["answers"], listed["answers"]);
    assert!(
        w.listed(&s.task, &fresh).await.is_object(),
        "the rest applied"
    );

    // The devices pull the decision: the inspection and the review record, no internal note.
    let p = pull(&w.app, &s.token, Some(s.cursor), 5).await;
    let i = pulled(&p, "inspections", &s.iid).unwrap();
    assert_eq!(i["review_state"], "approved");
    assert_eq!(i["submitted"], true);
    assert_eq!(i["computed_result"], "basically_compliant");
    assert_eq!(i["override_result"], "non_compliant");
    assert_eq!(i["override_reason"], "现场发现过期食品，按不符合处理");
    let created = p["changes"]["reviews"]["created"].as_array().unwrap();
    assert_eq!(created.len(), 1, "{p}");
    let rv = &created[0];
    assert_eq!(rv["id"], v["review"]["id"]);
    assert_eq!(rv["inspection_id"], s.iid.as_str());
    assert_eq!(rv["decision"], "approved");
    assert_eq!(rv["round"], 1);
    assert_eq!(rv["comment"], "同意");
    assert_eq!(rv["item_comments"], "[]");
    assert_eq!(rv["override_result"], "non_compliant");
    assert_eq!(rv["reviewer_name"], "Name of rev1");
    assert!(rv["decided_at"].as_i64().is_some());
    assert!(rv.get("internal_note").is_none());
    assert!(
        !p.to_string().contains("下月重点关注"),
        "the internal note never syncs"
    );
    // The teammate's device gets it too; the other team's does not.
    let mate = w.device(&w.tasks[0].2[1], "phone-mate").await;
    assert!(pulled(
        &pull(&w.app, &mate, None, 5).await,
        "reviews",
        rv["id"].as_str().unwrap()
    )
    .is_some());
    let other = w.device(w.member(1), "phone-other").await;
    let po = pull(&w.app, &other, None, 5).await;
    assert!(po["changes"]["reviews"]["created"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(!po.to_string().contains(&s.iid));

    // Final: a second decision is a conflict and changes nothing.
    let (st, e) = w
        .review(
            &w.reviewers[1].0,
            &s.iid,
            json!({"decision": "returned", "comment": "再看看"}),
        )
        .await;
    assert_error(st, &e, 409, "review_conflict");
    assert_eq!(
        reviews_of(&w.app, &s.iid).await,
        vec![(1, "approved".to_string())]
    );

    // One audit event, by the reviewer, with what changed.
    let events = audit_of(&w.app, &s.iid, "inspection_reviewed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1.as_deref(), Some(rev_id.as_str()));
    assert_eq!(events[0].2.as_deref(), Some("reviewer"));
    let c = change(&events[0], "review_state");
    assert_eq!(
        (&c["before"], &c["after"]),
        (&json!("submitted"), &json!("approved"))
    );
    let c = change(&events[0], "override_result");
    assert_eq!(
        (&c["before"], &c["after"]),
        (&Value::Null, &json!("non_compliant"))
    );
    assert_eq!(
        change(&events[0], "effective_result")["after"],
        "non_compliant"
    );
    assert_eq!(
        change(&events[0], "internal_note")["after"],
        "科内：下月重点关注"
    );
    assert_eq!(
        change(&events[0], "followup_id")["after"],
        followup.as_str()
    );
    assert_eq!(change(&events[0], "submitted"), Value::Null, "still locked");
    assert_eq!(w.task_state(&s.task).await, "submitted");
}

/// Return with comments → the device pulls them and the unlocked inspection → fixes it
/// offline → resubmits (round 2) → approve. Each round's history stays.
async fn return_fix_resubmit_approve_over_sync(app: TestApp) {
    let w = world(app).await;
    let s = w.submit(0, "phone-a", &["2.3"]).await;
    let (rev, _) = &w.reviewers[0];
    let (st, v) = w
        .review(
            rev,
            &s.iid,
            json!({"decision": "returned", "comment": "请补充整改前照片",
                   "item_comments": [{"item_code": "2.3", "comment": "冷藏温度记录缺失，请复核"}]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["review_state"], "returned");
    assert_eq!(v["review_round"], 1);
    assert_eq!(v["effective_result"], "basically_compliant");
    assert_eq!(
        v["review"]["item_comments"],
        json!([{"item_code": "2.3", "comment": "冷藏温度记录缺失，请复核"}])
    );
    assert_eq!(w.task_state(&s.task).await, "in_progress");

    // Returned but not resubmitted: not decidable.
    let (st, e) = w
        .review(&w.reviewers[1].0, &s.iid, json!({"decision": "approved"}))
        .await;
    assert_error(st, &e, 409, "review_conflict");

    // The device pulls the comments and the unlocked inspection, and its task.
    let p = pull(&w.app, &s.token, Some(s.cursor), 5).await;
    let i = pulled(&p, "inspections", &s.iid).unwrap();
    assert_eq!(i["submitted"], false);
    assert_eq!(i["review_state"], "returned");
    assert_eq!(i["review_round"], 1);
    assert_eq!(
        pulled(&p, "tasks", &s.task).unwrap()["state"],
        "in_progress"
    );
    let rv = &p["changes"]["reviews"]["created"][0];
    assert_eq!(rv["decision"], "returned");
    assert_eq!(rv["comment"], "请补充整改前照片");
    let items: Value = serde_json::from_str(rv["item_comments"].as_str().unwrap()).unwrap();
    assert_eq!(
        items,
        json!([{"item_code": "2.3", "comment": "冷藏温度记录缺失，请复核"}])
    );
    let cursor = p["timestamp"].as_i64().unwrap();

    // A returned inspection is not deleted (its history stays); it is fixed and resubmitted.
    let (_, r) = push(
        &w.app,
        &s.token,
        cursor,
        json!({"inspections": {"deleted": [s.iid]}}),
    )
    .await;
    assert_eq!(
        refusals(&r),
        vec![(
            "inspections".into(),
            s.iid.clone(),
            "inspection_returned".into()
        )]
    );
    let mut rec = s.rec.clone();
    rec["other_findings"] = json!("已复核冷藏温度");
    let (st, r) = push(
        &w.app,
        &s.token,
        cursor,
        json!({"inspections": {"updated": [rec.clone()]}, "answers": {"updated": [answer(&s.iid, "2.3", "pass")]}}),
    )
    .await;
    assert_eq!(
        (st, &r),
        (StatusCode::OK, &json!({})),
        "the fix and the resubmission"
    );
    let p = pull(&w.app, &s.token, Some(cursor), 5).await;
    let i = pulled(&p, "inspections", &s.iid).unwrap();
    assert_eq!(i["submitted"], true);
    assert_eq!(i["review_state"], "submitted");
    assert_eq!(i["review_round"], 2);
    assert_eq!(
        i["computed_result"], "compliant",
        "recomputed with the fixed answer"
    );
    assert_eq!(pulled(&p, "tasks", &s.task).unwrap()["state"], "submitted");
    // Locked again until decided.
    let mut late = rec.clone();
    late["business_opinion"] = json!("改");
    let (_, r) = push(
        &w.app,
        &s.token,
        p["timestamp"].as_i64().unwrap(),
        json!({"inspections": {"updated": [late]}}),
    )
    .await;
    assert_eq!(refusals(&r)[0].2, "inspection_submitted");

    let (st, v) = w
        .review(&w.reviewers[1].0, &s.iid, json!({"decision": "approved"}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["review_round"], 2);
    assert_eq!(v["computed_result"], "compliant");
    assert_eq!(v["effective_result"], "compliant");
    assert_eq!(v["override_result"], Value::Null);
    assert_eq!(v["followup_id"], Value::Null, "符合: no follow-up");
    assert_eq!(
        reviews_of(&w.app, &s.iid).await,
        vec![(1, "returned".to_string()), (2, "approved".to_string())]
    );
    let p2 = pull(&w.app, &s.token, p["timestamp"].as_i64(), 5).await;
    assert_eq!(
        pulled(&p2, "inspections", &s.iid).unwrap()["review_state"],
        "approved"
    );
    assert_eq!(
        p2["changes"]["reviews"]["created"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Audit: two decisions, two submissions (the second opening round 2), the task's moves.
    let reviewed = audit_of(&w.app, &s.iid, "inspection_reviewed").await;
    assert_eq!(reviewed.len(), 2);
    let c = change(&reviewed[0], "submitted");
    assert_eq!((&c["before"], &c["after"]), (&json!(true), &json!(false)));
    assert_eq!(
        change(&reviewed[0], "item_comments")["after"][0]["item_code"],
        "2.3"
    );
    let submitted = audit_of(&w.app, &s.iid, "inspection_submitted").await;
    assert_eq!(submitted.len(), 2);
    let c = change(&submitted[1], "review_round");
    assert_eq!((&c["before"], &c["after"]), (&json!(1), &json!(2)));
    let c = change(&submitted[1], "review_state");
    assert_eq!(
        (&c["before"], &c["after"]),
        (&json!("returned"), &json!("submitted"))
    );
    let task_moves = audit_of(&w.app, &s.task, "task_state_changed").await;
    assert!(task_moves.iter().any(|m| {
        let c = change(m, "state");
        c["before"] == "submitted" && c["after"] == "in_progress"
    }));
}

/// Rejection voids the inspection (locked, `rejected`) and sends the task back to `assigned`;
/// the team redoes it with a new inspection, which is reviewed on its own.
async fn reject_voids_it_and_the_task_is_redone(app: TestApp) {
    let w = world(app).await;
    let s = w.submit(1, "phone-b", &[]).await;
    let (rev, _) = &w.reviewers[0];
    let (st, e) = w
        .review(
            rev,
            &s.iid,
            json!({"decision": "rejected", "comment": "走错门店"}),
        )
        .await;
    assert_error(st, &e, 422, "reason_required");
    let (st, e) = w
        .review(
            rev,
            &s.iid,
            json!({"decision": "rejected", "reason": "走错门店", "comment": "x"}),
        )
        .await;
    assert_error(st, &e, 422, "validation_failed");
    let (st, v) = w
        .review(
            rev,
            &s.iid,
            json!({"decision": "rejected", "reason": "检查对象错误：实为隔壁门店"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["review_state"], "rejected");
    assert_eq!(v["review"]["comment"], "检查对象错误：实为隔壁门店");
    assert_eq!(w.task_state(&s.task).await, "assigned");

    let p = pull(&w.app, &s.token, Some(s.cursor), 5).await;
    let i = pulled(&p, "inspections", &s.iid).unwrap();
    assert_eq!(i["review_state"], "rejected");
    assert_eq!(i["submitted"], true, "the voided inspection stays locked");
    assert_eq!(pulled(&p, "tasks", &s.task).unwrap()["state"], "assigned");
    assert_eq!(
        p["changes"]["reviews"]["created"][0]["comment"],
        "检查对象错误：实为隔壁门店"
    );
    let cursor = p["timestamp"].as_i64().unwrap();
    let mut edit = s.rec.clone();
    edit["other_findings"] = json!("改");
    let (_, r) = push(
        &w.app,
        &s.token,
        cursor,
        json!({"inspections": {"updated": [edit]}, "answers": {"deleted": [answer(&s.iid, "1.1", "pass")["id"]]}}),
    )
    .await;
    let codes: Vec<String> = refusals(&r).into_iter().map(|x| x.2).collect();
    assert_eq!(
        codes,
        vec!["inspection_rejected", "inspection_rejected"],
        "{r}"
    );

    // Redone with a new inspection: round 1 of its own, reviewed on its own.
    let redo = Uuid::new_v4().to_string();
    let mut rec = inspection(&redo, &s.task, &s.est, &w.team_json(1));
    rec["submitted"] = json!(true);
    let (st, r) = push(
        &w.app,
        &s.token,
        cursor,
        json!({"inspections": {"created": [rec]}, "answers": {"created": answers(&redo, &[])}}),
    )
    .await;
    assert_eq!((st, &r), (StatusCode::OK, &json!({})));
    assert_eq!(w.task_state(&s.task).await, "submitted");
    let (st, v) = w.review(rev, &redo, json!({"decision": "approved"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["review_round"], 1);
    assert_eq!(
        reviews_of(&w.app, &s.iid).await,
        vec![(1, "rejected".to_string())]
    );
    assert_eq!(
        reviews_of(&w.app, &redo).await,
        vec![(1, "approved".to_string())]
    );
}

/// The ids of `table`'s records in one part (`created`, `updated`, `deleted`) of a pull.
fn part(p: &Value, table: &str, k: &str) -> Vec<String> {
    let mut v: Vec<String> = p["changes"][table][k]
        .as_array()
        .unwrap_or_else(|| panic!("no {table}.{k} in {p}"))
        .iter()
        .map(|r| r.as_str().or(r["id"].as_str()).unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// A rejected inspection's task goes to another team: the leaving member's device deletes the
/// task and everything of it, the joining member's device gets it all as new (the rejected
/// inspection read-only), the staying member's device sees the new team; the leaver can no
/// longer push for it, the new team redoes it and it is approved. Refusals before and bad
/// requests change nothing.
async fn reassigned_task_moves_between_the_teams_devices(app: TestApp) {
    let w = world(app).await;
    let id_of = |n: &str| w.inspectors.iter().find(|(m, _)| m == n).unwrap().1.clone();
    let [leaver, stayer] = [0, 1].map(|i| w.tasks[0].2[i].clone());
    let joiner = w.tasks[1].2[0].clone();
    let s = w.submit(0, "phone-a", &[]).await;
    let (rev, _) = &w.reviewers[0];
    let path = format!("/api/v1/tasks/{}/team", s.task);
    let new_team = json!([id_of(&stayer), id_of(&joiner)]);
    let body = json!({"team": new_team, "reason": "原检查结果被驳回，另派检查组"});
    // Not while a team's inspection stands (the task is submitted).
    let (st, e) = w.app.put(&path, rev, body.clone()).await;
    assert_error(st, &e, 409, "invalid_state");
    let (st, v) = w
        .review(
            rev,
            &s.iid,
            json!({"decision": "rejected", "reason": "检查对象错误"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Each device pulls what it has before the move.
    let p = pull(&w.app, &s.token, Some(s.cursor), 5).await;
    let leaver_cursor = p["timestamp"].as_i64().unwrap();
    let stayer_token = w.device(&stayer, "phone-s").await;
    let stayer_cursor = pull(&w.app, &stayer_token, None, 5).await["timestamp"]
        .as_i64()
        .unwrap();
    let joiner_token = w.device(&joiner, "phone-j").await;
    let first = pull(&w.app, &joiner_token, None, 5).await;
    assert!(pulled(&first, "tasks", &s.task).is_none());
    let joiner_cursor = first["timestamp"].as_i64().unwrap();

    // Bad requests: 4xx, nothing written.
    let before = scalar(
        &w.app,
        "SELECT MAX(s) FROM (SELECT MAX(seq) AS s FROM tasks UNION ALL SELECT MAX(seq) FROM inspections \
         UNION ALL SELECT MAX(seq) FROM reviews UNION ALL SELECT MAX(added_seq) FROM task_members \
         UNION ALL SELECT MAX(seq) FROM task_member_removals) x WHERE '' <> $1",
        "x",
    )
    .await;
    for (body, status, code) in [
        (
            json!({"team": [id_of(&stayer)], "reason": "r"}),
            422,
            "team_too_small",
        ),
        (
            json!({"team": [id_of(&stayer), id_of(&stayer)], "reason": "r"}),
            422,
            "team_too_small",
        ),
        (
            json!({"team": [id_of(&stayer), Uuid::new_v4().to_string()], "reason": "r"}),
            422,
            "inspector_not_active",
        ),
        (
            json!({"team": [id_of(&stayer), w.reviewers[1].1.clone()], "reason": "r"}),
            422,
            "inspector_not_active",
        ),
        (
            json!({"team": [id_of(&leaver), id_of(&stayer)], "reason": "r"}),
            422,
            "team_unchanged",
        ),
        (
            json!({"team": new_team, "reason": "  "}),
            422,
            "validation_failed",
        ),
        (json!({"team": new_team}), 422, "invalid_body"),
    ] {
        let (st, e) = w.app.put(&path, rev, body.clone()).await;
        assert_error(st, &e, status, code);
    }
    let (st, e) = w
        .app
        .put("/api/v1/tasks/no-such-task/team", rev, body.clone())
        .await;
    assert_error(st, &e, 404, "not_found");
    let (st, e) = w.app.put(&path, &s.token, body.clone()).await;
    assert_error(st, &e, 403, "forbidden");
    let after = scalar(
        &w.app,
        "SELECT MAX(s) FROM (SELECT MAX(seq) AS s FROM tasks UNION ALL SELECT MAX(seq) FROM inspections \
         UNION ALL SELECT MAX(seq) FROM reviews UNION ALL SELECT MAX(added_seq) FROM task_members \
         UNION ALL SELECT MAX(seq) FROM task_member_removals) x WHERE '' <> $1",
        "x",
    )
    .await;
    assert_eq!(before, after, "a refused reassignment wrote a change");

    let (st, t) = w.app.put(&path, rev, body.clone()).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let team: Vec<&str> = t["team"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(team, [id_of(&stayer), id_of(&joiner)]);
    assert_eq!(t["state"], "assigned");

    // The leaver's device deletes the task and all of it.
    let answer_ids: Vec<String> = {
        let mut v: Vec<String> = answers(&s.iid, &[])
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let review_ids: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM reviews WHERE inspection_id = $1")
            .bind(&s.iid)
            .fetch_all(w.app.db().pool())
            .await
            .unwrap();
    let review_ids: Vec<String> = review_ids.into_iter().map(|r| r.0).collect();
    let lp = pull(&w.app, &s.token, Some(leaver_cursor), 5).await;
    assert_eq!(
        part(&lp, "tasks", "deleted"),
        std::slice::from_ref(&s.task),
        "{lp}"
    );
    assert_eq!(
        part(&lp, "inspections", "deleted"),
        std::slice::from_ref(&s.iid)
    );
    assert_eq!(part(&lp, "answers", "deleted"), answer_ids);
    assert_eq!(part(&lp, "reviews", "deleted"), review_ids);
    assert_eq!(
        part(&lp, "establishments", "deleted"),
        std::slice::from_ref(&s.est)
    );
    assert!(pulled(&lp, "tasks", &s.task).is_none());
    // … and a first pull no longer has it.
    let fresh = pull(&w.app, &s.token, None, 5).await;
    assert!(pulled(&fresh, "tasks", &s.task).is_none());
    assert!(pulled(&fresh, "inspections", &s.iid).is_none());

    // The joiner's device gets the task and its records as new, however old they are.
    let jp = pull(&w.app, &joiner_token, Some(joiner_cursor), 5).await;
    assert_eq!(
        part(&jp, "tasks", "created"),
        std::slice::from_ref(&s.task),
        "{jp}"
    );
    assert_eq!(
        part(&jp, "inspections", "created"),
        std::slice::from_ref(&s.iid)
    );
    assert_eq!(part(&jp, "answers", "created"), answer_ids);
    assert_eq!(part(&jp, "reviews", "created"), review_ids);
    assert!(part(&jp, "establishments", "created").contains(&s.est));
    assert!(part(&jp, "tasks", "deleted").is_empty());
    assert_eq!(
        pulled(&jp, "inspections", &s.iid).unwrap()["review_state"],
        "rejected"
    );
    let joiner_cursor = jp["timestamp"].as_i64().unwrap();

    // The stayer's device sees the new team on the task, and deletes nothing.
    let sp = pull(&w.app, &stayer_token, Some(stayer_cursor), 5).await;
    assert_eq!(
        part(&sp, "tasks", "updated"),
        std::slice::from_ref(&s.task),
        "{sp}"
    );
    assert!(part(&sp, "tasks", "deleted").is_empty());
    assert!(part(&sp, "inspections", "created").is_empty());
    let team: Value = serde_json::from_str(
        pulled(&sp, "tasks", &s.task).unwrap()["team"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(team.as_array().unwrap().len(), 2);
    assert!(team.to_string().contains(&id_of(&joiner)));

    // The leaver can no longer push for the task.
    let redo = Uuid::new_v4().to_string();
    let mut rec = inspection(&redo, &s.task, &s.est, &w.team_json(0));
    rec["submitted"] = json!(true);
    let lc = lp["timestamp"].as_i64().unwrap();
    let (st, r) = push(
        &w.app,
        &s.token,
        lc,
        json!({"inspections": {"created": [rec]}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(
        refusals(&r),
        vec![(
            "inspections".to_string(),
            redo.clone(),
            "not_your_task".to_string()
        )]
    );
    // The new team redoes it; it is approved.
    let team_json = serde_json::to_string(&json!([
        {"user_id": id_of(&stayer), "name": stayer, "badge_no": format!("TJ-{stayer}")},
        {"user_id": id_of(&joiner), "name": joiner, "badge_no": format!("TJ-{joiner}")}
    ]))
    .unwrap();
    let redo = Uuid::new_v4().to_string();
    let mut rec = inspection(&redo, &s.task, &s.est, &team_json);
    rec["submitted"] = json!(true);
    let (st, r) = push(
        &w.app,
        &joiner_token,
        joiner_cursor,
        json!({"inspections": {"created": [rec]}, "answers": {"created": answers(&redo, &[])}}),
    )
    .await;
    assert_eq!((st, &r), (StatusCode::OK, &json!({})));
    assert_eq!(w.task_state(&s.task).await, "submitted");
    let (st, v) = w.review(rev, &redo, json!({"decision": "approved"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Once the task has a standing inspection it no longer moves.
    let (st, e) = w
        .app
        .put(
            &path,
            rev,
            json!({"team": [id_of(&leaver), id_of(&stayer)], "reason": "再换"}),
        )
        .await;
    assert_error(st, &e, 409, "invalid_state");

    let rows = audit_of(&w.app, &s.task, "task_reassigned").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        change(&rows[0], "team"),
        json!({"field": "team", "before": [id_of(&leaver), id_of(&stayer)], "after": [id_of(&stayer), id_of(&joiner)]})
    );
}

/// Every bad request is a clear 4xx and changes nothing: no sync cursor bump, no review row,
/// no audit entry, the inspection as it was.
async fn bad_input_is_4xx_and_changes_nothing(app: TestApp) {
    let w = world(app).await;
    let (rev, _) = &w.reviewers[0];
    // Not submitted (still being worked on): 409.
    let token = w.device(w.member(1), "phone-b").await;
    let p = pull(&w.app, &token, None, 5).await;
    let draft = Uuid::new_v4().to_string();
    let (st, _) = push(
        &w.app,
        &token,
        p["timestamp"].as_i64().unwrap(),
        json!({"inspections": {"created": [inspection(&draft, &w.tasks[1].0, &w.tasks[1].1, &w.team_json(1))]}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, e) = w.review(rev, &draft, json!({"decision": "approved"})).await;
    assert_error(st, &e, 409, "review_conflict");
    let (st, e) = w
        .review(
            rev,
            "00000000-0000-4000-8000-00000000dead",
            json!({"decision": "approved"}),
        )
        .await;
    assert_error(st, &e, 404, "not_found");

    let s = w.submit(0, "phone-a", &["2.3"]).await;
    let counter = || async {
        // The highest stored position (on PostgreSQL positions come from transaction ids).
        let (v,): (i64,) = sqlx::query_as(
            "SELECT MAX(s) FROM (SELECT MAX(seq) AS s FROM tasks UNION ALL SELECT MAX(seq) FROM inspections \
             UNION ALL SELECT MAX(seq) FROM reviews UNION ALL SELECT MAX(seq) FROM answers) x",
        )
        .fetch_one(w.app.db().pool())
            .await
            .unwrap();
        v
    };
    let before_seq = counter().await;
    let before_audit = scalar(
        &w.app,
        "SELECT COUNT(*) FROM audit_events WHERE record_id = $1",
        &s.iid,
    )
    .await;
    let before = w.listed(&s.task, &s.iid).await;
    let long = "长".repeat(2001);
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"decision": "returned"}), 422, "comment_required"),
        (
            json!({"decision": "returned", "comment": "   ", "item_comments": []}),
            422,
            "comment_required",
        ),
        (
            json!({"decision": "returned", "item_comments": [{"item_code": "99.9", "comment": "无此项"}]}),
            422,
            "unknown_item",
        ),
        (
            json!({"decision": "returned", "comment": "x", "item_comments": [{"item_code": "2.3", "comment": "a"}, {"item_code": "2.3", "comment": "b"}]}),
            422,
            "validation_failed",
        ),
        (
            json!({"decision": "returned", "item_comments": [{"item_code": "2.3", "comment": " "}]}),
            422,
            "validation_failed",
        ),
        (json!({"decision": "rejected"}), 422, "reason_required"),
        (
            json!({"decision": "rejected", "reason": ""}),
            422,
            "reason_required",
        ),
        (
            json!({"decision": "approved", "override_result": "compliant"}),
            422,
            "override_reason_required",
        ),
        (
            json!({"decision": "approved", "override_reason": "无结果"}),
            422,
            "validation_failed",
        ),
        (
            json!({"decision": "approved", "override_result": "basically_compliant", "override_reason": "同计算结果"}),
            422,
            "validation_failed",
        ),
        (
            json!({"decision": "returned", "comment": "x", "override_result": "compliant", "override_reason": "y"}),
            422,
            "validation_failed",
        ),
        (
            json!({"decision": "approved", "reason": "x"}),
            422,
            "validation_failed",
        ),
        (
            json!({"decision": "returned", "comment": "x", "followup": {}}),
            422,
            "validation_failed",
        ),
        (
            json!({"decision": "approved", "comment": long}),
            422,
            "validation_failed",
        ),
        (
            json!({"decision": "approved", "override_result": "great", "override_reason": "x"}),
            422,
            "invalid_body",
        ),
        (json!({"decision": "maybe"}), 422, "invalid_body"),
        (json!({}), 422, "invalid_body"),
        // Reviewers never edit answers: the body has no place for them.
        (
            json!({"decision": "approved", "answers": [{"item_code": "2.3", "status": "pass"}]}),
            422,
            "invalid_body",
        ),
        (
            json!({"decision": "approved", "comment": "响\u{7}铃"}),
            422,
            "control_character",
        ),
    ];
    for (body, status, code) in cases {
        let (st, e) = w.review(rev, &s.iid, body.clone()).await;
        assert_error(st, &e, status, code);
    }
    let res = w
        .app
        .client
        .request(
            Method::POST,
            w.app.url(&format!("/api/v1/inspections/{}/review", s.iid)),
        )
        .bearer_auth(rev)
        .header("content-type", "application/json")
        .body("{\"decision\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(counter().await, before_seq, "no sync change");
    assert!(reviews_of(&w.app, &s.iid).await.is_empty());
    assert_eq!(
        scalar(
            &w.app,
            "SELECT COUNT(*) FROM audit_events WHERE record_id = $1",
            &s.iid
        )
        .await,
        before_audit
    );
    assert_eq!(w.listed(&s.task, &s.iid).await, before);
    // And the valid request still goes through afterwards.
    let (st, v) = w.review(rev, &s.iid, json!({"decision": "approved"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(counter().await > before_seq);
}

/// Several reviewers deciding one inspection at once: exactly one wins (200), every other gets
/// 409 `review_conflict`, and exactly one decision is recorded, on both backends.
async fn concurrent_decisions_exactly_one_wins(app: TestApp) {
    let w = world(app).await;
    for (task, device) in [(0, "phone-a"), (1, "phone-b")] {
        let s = w.submit(task, device, &["2.3"]).await;
        let bodies = [
            json!({"decision": "approved"}),
            json!({"decision": "returned", "comment": "补充"}),
            json!({"decision": "rejected", "reason": "作废"}),
            json!({"decision": "approved", "override_result": "compliant", "override_reason": "复核"}),
        ];
        let tokens = [&w.reviewers[0].0, &w.reviewers[1].0, &w.admin];
        let calls = (0..8).map(|n| {
            let body = bodies[n % bodies.len()].clone();
            let token = tokens[n % tokens.len()].clone();
            let iid = s.iid.clone();
            let w = &w;
            async move { w.review(&token, &iid, body).await }
        });
        let results = futures::future::join_all(calls).await;
        let won: Vec<&Value> = results
            .iter()
            .filter(|(st, _)| *st == StatusCode::OK)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(won.len(), 1, "exactly one decision wins: {results:?}");
        for (st, e) in results.iter().filter(|(st, _)| *st != StatusCode::OK) {
            assert_error(*st, e, 409, "review_conflict");
        }
        let decisions = reviews_of(&w.app, &s.iid).await;
        assert_eq!(decisions.len(), 1, "{decisions:?}");
        assert_eq!(decisions[0].1, won[0]["review_state"].as_str().unwrap());
        assert_eq!(
            audit_of(&w.app, &s.iid, "inspection_reviewed").await.len(),
            1
        );
        assert_eq!(
            w.listed(&s.task, &s.iid).await["review_state"],
            won[0]["review_state"]
        );
    }
}

/// Inspectors never decide (403), nor labs; reviewers never write field data: sync and
/// uploads are inspectors' only.
async fn only_reviewers_and_admins_decide_and_they_cannot_push(app: TestApp) {
    let w = world(app).await;
    let s = w.submit(0, "phone-a", &["2.3"]).await;
    let lab = w.app.token_for("lab1", Role::Lab).await;
    for token in [&s.token, &lab] {
        let (st, e) = w
            .review(token, &s.iid, json!({"decision": "approved"}))
            .await;
        assert_error(st, &e, 403, "forbidden");
    }
    let (st, e) = w
        .app
        .call(
            Method::POST,
            &format!("/api/v1/inspections/{}/review", s.iid),
            None,
            Some(json!({"decision": "approved"})),
        )
        .await;
    assert_error(st, &e, 401, "missing_token");
    let (rev, _) = &w.reviewers[0];
    let (st, e) = w
        .app
        .get("/api/v1/sync?last_pulled_at=null&schema_version=5", rev)
        .await;
    assert_error(st, &e, 403, "forbidden");
    let (st, e) = push(
        &w.app,
        rev,
        s.cursor,
        json!({"answers": {"updated": [answer(&s.iid, "2.3", "pass")]}}),
    )
    .await;
    assert_error(st, &e, 403, "forbidden");
    let res = w
        .app
        .client
        .post(w.app.url("/api/v1/uploads"))
        .bearer_auth(rev)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let listed = w.listed(&s.task, &s.iid).await;
    let failed = listed["answers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["item_code"] == "2.3")
        .unwrap()
        .clone();
    assert_eq!(
        failed["status"], "fail",
        "the reviewer's push changed nothing"
    );
    assert_eq!(listed["review_state"], "submitted");
    assert!(reviews_of(&w.app, &s.iid).await.is_empty());
    // An admin may decide.
    let (st, v) = w
        .review(&w.admin, &s.iid, json!({"decision": "approved"}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

/// Schema 5 has the `reviews` table (pull only) and the new columns; schema 4 apps get none of
/// them; the 4 → 5 migration pull sends every review and the changed tables again.
async fn schema_5_tables_and_the_migration_pull(app: TestApp) {
    let w = world(app).await;
    let s = w.submit(0, "phone-a", &["2.3"]).await;
    let (st, v) = w
        .review(
            &w.reviewers[0].0,
            &s.iid,
            json!({"decision": "returned", "item_comments": [{"item_code": "2.3", "comment": "复核"}], "internal_note": "仅科内"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let old = w.device(&w.tasks[0].2[1], "old-phone").await;
    let p4 = pull(&w.app, &old, None, 4).await;
    assert!(p4["changes"].get("reviews").is_none());
    let i4 = pulled(&p4, "inspections", &s.iid).unwrap();
    assert_eq!(i4["review_state"], "returned");
    assert!(i4.get("review_round").is_none() && i4.get("override_result").is_none());
    assert!(pulled(&p4, "tasks", &s.task).unwrap().get("kind").is_none());

    let migration = json!({"from": 4, "tables": ["reviews"], "columns": [
        {"table": "inspections", "columns": ["review_round", "override_result", "override_reason"]},
        {"table": "tasks", "columns": ["kind"]}]})
    .to_string();
    let q: String = url_escape(&migration);
    let (st, pm) = w
        .app
        .get(
            &format!(
                "/api/v1/sync?last_pulled_at={}&schema_version=5&migration={q}",
                p4["timestamp"]
            ),
            &old,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{pm}");
    let reviews = pm["changes"]["reviews"]["created"].as_array().unwrap();
    assert_eq!(
        reviews.len(),
        1,
        "a new table's records are all created: {pm}"
    );
    assert_eq!(reviews[0]["id"], v["review"]["id"]);
    assert!(reviews[0].get("internal_note").is_none());
    assert!(!pm.to_string().contains("仅科内"));
    assert_eq!(
        pulled(&pm, "inspections", &s.iid).unwrap()["review_round"],
        1
    );
    assert_eq!(pulled(&pm, "tasks", &s.task).unwrap()["kind"], "inspection");
    // A fresh schema-5 device gets the same.
    let fresh = pull(&w.app, &s.token, None, 5).await;
    assert_eq!(
        fresh["changes"]["reviews"]["created"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // `reviews` is read-only on devices: a pushed review is refused per record.
    let forged = Uuid::new_v4().to_string();
    let (st, r) = push(
        &w.app,
        &s.token,
        fresh["timestamp"].as_i64().unwrap(),
        json!({"reviews": {"created": [{"id": forged, "inspection_id": s.iid, "round": 1, "decision": "approved",
               "comment": null, "item_comments": "[]", "override_result": null, "override_reason": null,
               "decided_at": 1, "reviewer_name": "我自己"}]}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(
        refusals(&r),
        vec![("reviews".into(), forged, "read_only".into())]
    );
    assert_eq!(reviews_of(&w.app, &s.iid).await.len(), 1);
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Migration 0016: an inspection submitted before review existed (review_state NULL) enters the
/// `waiting` queue as round 1, with a new sync seq so the team's devices pull the state.
async fn inspections_submitted_before_review_are_backfilled(app: TestApp) {
    let w = world(app).await;
    let s = w.submit(0, "phone-a", &["2.3"]).await;
    let db = w.app.db();
    // As such a row was before the review work: no review state, no round.
    sqlx::query("UPDATE inspections SET review_state = NULL, review_round = 0 WHERE id = $1")
        .bind(&s.iid)
        .execute(db.pool())
        .await
        .unwrap();
    let seq_before = scalar(&w.app, "SELECT seq FROM inspections WHERE id = $1", &s.iid).await;
    if w.app.backend() == foodcheck::store::Backend::Postgres {
        // 0016 ran before 0037, when the counter gave PostgreSQL's positions too: as then, the
        // counter is at the current position.
        sqlx::query(
            "UPDATE sync_counter SET value = pg_current_xact_id()::text::bigint + (SELECT value FROM sync_xid_offset)",
        )
        .execute(db.pool())
        .await
        .unwrap();
    }
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 16")
        .execute(db.pool())
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let (state, round): (Option<String>, i64) =
        sqlx::query_as("SELECT review_state, review_round FROM inspections WHERE id = $1")
            .bind(&s.iid)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!((state.as_deref(), round), (Some("submitted"), 1));
    let seq_after = scalar(&w.app, "SELECT seq FROM inspections WHERE id = $1", &s.iid).await;
    assert!(seq_after > seq_before, "{seq_before} → {seq_after}");
    let p = pull(&w.app, &s.token, Some(s.cursor), 5).await;
    assert_eq!(
        pulled(&p, "inspections", &s.iid).expect("pulled again")["review_state"],
        "submitted"
    );
    // The reviewer's queue lists it, and it can be decided.
    let (st, q) = w
        .app
        .get("/api/v1/review/queues/waiting", &w.reviewers[0].0)
        .await;
    assert_eq!(st, StatusCode::OK, "{q}");
    assert!(q.to_string().contains(&s.iid), "{q}");
    let (st, v) = w
        .review(
            &w.reviewers[0].0,
            &s.iid,
            json!({"decision": "returned", "comment": "补充"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}
