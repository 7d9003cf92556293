//! The sync protocol over HTTP: scoping, idempotency, conflicts, refusals, bad input, schema
//! versions, tombstones. (The real WatermelonDB client runs in tests/clients.)

use foodcheck::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{assert_error, TestApp};

both_backends!(
    first_pull_is_scoped_to_the_team,
    push_is_idempotent_and_visible_to_the_team,
    conflicting_push_is_409_and_applies_nothing,
    refusals_per_record_and_the_rest_applied,
    submission_computes_the_result_and_locks,
    bad_push_input_is_4xx_and_applies_nothing,
    deletes_leave_tombstones,
    schema_versions_and_migration_pulls,
    old_cursor_gets_a_replacement,
    records_never_move_to_another_inspection,
    stale_edit_of_a_deleted_record_is_409,
    replacement_pull_lists_own_records_as_updated,
    push_records_typed_audit_events,
    synced_tasks_carry_the_drawn_team,
);

pub(crate) const TEMPLATE: &str = "00000000-0000-4000-8000-000000002016";
/// Key items of the 2016 table.
pub(crate) const KEY: [&str; 7] = ["3.1", "3.2", "4.1", "4.2", "6.1", "8.4", "9.3"];
pub(crate) const GENERAL: [&str; 7] = ["1.1", "2.1", "2.2", "2.3", "4.3", "4.4", "5.1"];

pub(crate) struct World {
    pub(crate) app: TestApp,
    pub(crate) admin: String,
    /// (username, user id) of the 4 inspectors.
    pub(crate) inspectors: Vec<(String, String)>,
    /// Task id → (establishment id, member usernames).
    pub(crate) tasks: Vec<(String, String, Vec<String>)>,
}

pub(crate) async fn world(app: TestApp) -> World {
    let admin = app.token_for("admin", Role::Admin).await;
    let mut inspectors = Vec::new();
    for i in 0..4 {
        let name = format!("insp{i}");
        let id = app.user(&name, Role::Inspector).await;
        inspectors.push((name, id));
    }
    for i in 0..6 {
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
                   "due_date": "2099-03-31", "template_id": TEMPLATE, "template_version": 1, "quotas": {"explicit": {"C": 6}},
                   "inspector_ids": ids, "team_size": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{plan}");
    let (s, draw) = app
        .post(
            &format!("/api/v1/plans/{}/draw", plan["id"].as_str().unwrap()),
            &admin,
            json!({"seed": "s"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{draw}");
    let plan = plan["id"].as_str().unwrap();
    let tasks = crate::common::drawn_tasks(&app, &admin, plan, &inspectors).await;
    World {
        app,
        admin,
        inspectors,
        tasks,
    }
}

impl World {
    pub(crate) async fn device(&self, username: &str, device: &str) -> String {
        self.app.login_full(username, device).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }
    /// A task and one of its members, and someone not in its team.
    fn task_member_outsider(&self) -> (String, String, String, String) {
        let (task, est, members) = &self.tasks[0];
        let outsider = self
            .inspectors
            .iter()
            .find(|(n, _)| !members.contains(n))
            .unwrap()
            .0
            .clone();
        (task.clone(), est.clone(), members[0].clone(), outsider)
    }
    pub(crate) fn team_json(&self, task: usize) -> String {
        let members: Vec<Value> = self.tasks[task]
            .2
            .iter()
            .map(|n| json!({"user_id": self.inspectors.iter().find(|(m, _)| m == n).unwrap().1, "name": n, "badge_no": format!("TJ-{n}")}))
            .collect();
        serde_json::to_string(&members).unwrap()
    }
}

pub(crate) async fn pull(
    app: &TestApp,
    token: &str,
    last: Option<i64>,
    version: u32,
) -> (StatusCode, Value) {
    let last = last.map(|l| l.to_string()).unwrap_or_else(|| "null".into());
    app.get(
        &format!("/api/v1/sync?last_pulled_at={last}&schema_version={version}&migration=null"),
        token,
    )
    .await
}

pub(crate) async fn push(
    app: &TestApp,
    token: &str,
    last: i64,
    changes: Value,
) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/sync?last_pulled_at={last}"),
        token,
        json!({"changes": changes}),
    )
    .await
}

fn ids(pull: &Value, table: &str, kind: &str) -> Vec<String> {
    pull["changes"][table][kind]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

pub(crate) fn inspection(id: &str, task: &str, est: &str, team: &str) -> Value {
    json!({"id": id, "_status": "created", "_changed": "", "task_id": task, "establishment_id": est, "started_at": 1_710_000_000_000i64,
           "finished_at": null, "lng": 117.2903, "lat": 39.7102, "gps_accuracy_m": 12.5, "crs": "gcj02", "team": team,
           "representative_name": "王店长", "representative_signed": true, "representative_refused": false,
           "business_opinion": null, "other_findings": null, "declared_result": "compliant", "submitted": false,
           "computed_result": "compliant", "review_state": "approved", "server_flags": null})
}

pub(crate) fn answer(inspection: &str, item: &str, status: &str) -> Value {
    let id = Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("{inspection}:{item}").as_bytes(),
    );
    json!({"id": id, "inspection_id": inspection, "item_code": item, "status": status, "note": null})
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(app.db().pool())
        .await
        .unwrap();
    n
}

async fn first_pull_is_scoped_to_the_team(app: TestApp) {
    let w = world(app).await;
    for (name, _) in &w.inspectors {
        let t = w.device(name, "phone").await;
        let (s, p) = pull(&w.app, &t, None, 2).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        let mine: Vec<&String> = w
            .tasks
            .iter()
            .filter(|(_, _, m)| m.contains(name))
            .map(|(id, _, _)| id)
            .collect();
        let mut got = ids(&p, "tasks", "created");
        got.sort();
        let mut want: Vec<String> = mine.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "{name} tasks");
        assert_eq!(
            p["changes"]["establishments"]["created"]
                .as_array()
                .unwrap()
                .len(),
            want.len()
        );
        assert_eq!(
            ids(&p, "checklist_versions", "created"),
            vec![format!("{TEMPLATE}:1")]
        );
        let est = &p["changes"]["establishments"]["created"][0];
        assert!(
            est.get("contact_phone").is_none(),
            "contact data must not sync"
        );
        assert!(p["timestamp"].as_i64().unwrap() >= 1);
        // Nothing new: an empty answer with the same cursor.
        let (_, again) = pull(&w.app, &t, p["timestamp"].as_i64(), 2).await;
        if w.app.backend() == foodcheck::store::Backend::Sqlite {
            assert_eq!(again["timestamp"], p["timestamp"]);
        } else {
            // Positions are transaction ids: the cursor moves on with other transactions
            // (of any database), never back.
            assert!(
                again["timestamp"].as_i64() >= p["timestamp"].as_i64(),
                "{again}"
            );
        }
        assert!(["tasks", "establishments", "inspections"]
            .iter()
            .all(|t| again["changes"][t]["updated"] == json!([])));
    }
    // Only inspectors sync.
    let (s, e) = w
        .app
        .get(
            "/api/v1/sync?last_pulled_at=null&schema_version=2",
            &w.admin,
        )
        .await;
    assert_error(s, &e, 403, "forbidden");
    // A registry edit reaches the team on its next incremental pull.
    let (task, est, member, outsider) = w.task_member_outsider();
    let t = w.device(&member, "phone").await;
    let (_, p) = pull(&w.app, &t, None, 2).await;
    let (s, _) = w
        .app
        .call(Method::PUT, &format!("/api/v1/establishments/{est}"), Some(&w.admin),
            Some(json!({"sign_name": "改名后的店", "licensed_name": "公司", "license_no": "JY21201159999999", "category": "small_restaurant",
                        "address": "新地址", "town": "周良街道", "risk_grade": "D"})))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, p2) = pull(&w.app, &t, p["timestamp"].as_i64(), 2).await;
    assert_eq!(
        p2["changes"]["establishments"]["updated"][0]["sign_name"],
        "改名后的店"
    );
    let o = w.device(&outsider, "phone").await;
    let (_, po) = pull(&w.app, &o, p["timestamp"].as_i64(), 2).await;
    assert!(po["changes"]["establishments"]["updated"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["id"] != est.as_str()));
    let _ = task;
}

async fn push_is_idempotent_and_visible_to_the_team(app: TestApp) {
    let w = world(app).await;
    let (task, est, member, outsider) = w.task_member_outsider();
    let phone = w.device(&member, "phone").await;
    let (_, p) = pull(&w.app, &phone, None, 2).await;
    let cursor = p["timestamp"].as_i64().unwrap();
    let iid = Uuid::new_v4().to_string();
    let changes = json!({
        "inspections": {"created": [inspection(&iid, &task, &est, &w.team_json(0))], "updated": [], "deleted": []},
        "answers": {"created": [answer(&iid, "1.1", "pass"), answer(&iid, "3.1", "fail")], "updated": [], "deleted": []},
        "tasks": {"created": [], "updated": [], "deleted": []}
    });
    let (s, r) = push(&w.app, &phone, cursor, changes.clone()).await;
    assert_eq!((s, &r), (StatusCode::OK, &json!({})));
    // The response was lost; the app retries the very same push: no duplicate, no conflict.
    let (s, r) = push(&w.app, &phone, cursor, changes.clone()).await;
    assert_eq!((s, &r), (StatusCode::OK, &json!({})));
    assert_eq!(
        (
            count(&w.app, "inspections").await,
            count(&w.app, "answers").await
        ),
        (1, 2)
    );
    // Server-computed columns were not taken from the client.
    let (_, list) = w
        .app
        .get(&format!("/api/v1/inspections?task_id={task}"), &w.admin)
        .await;
    assert_eq!(list["items"][0]["computed_result"], Value::Null);
    assert_eq!(list["items"][0]["review_state"], Value::Null);
    // The task moved to in_progress.
    let (_, t) = w.app.get(&format!("/api/v1/tasks/{task}"), &w.admin).await;
    assert_eq!(t["state"], "in_progress");
    // Another device of the same inspector, and the teammate, see it; the outsider does not.
    let tablet = w.device(&member, "tablet").await;
    let (_, pt) = pull(&w.app, &tablet, None, 2).await;
    assert_eq!(ids(&pt, "inspections", "created"), vec![iid.clone()]);
    assert_eq!(
        pt["changes"]["answers"]["created"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let mate = w.tasks[0].2[1].clone();
    let mt = w.device(&mate, "phone").await;
    let (_, pm) = pull(&w.app, &mt, Some(cursor), 2).await;
    assert_eq!(
        ids(&pm, "inspections", "created"),
        vec![iid.clone()],
        "new to the teammate"
    );
    let o = w.device(&outsider, "phone").await;
    let (_, po) = pull(&w.app, &o, None, 2).await;
    assert!(po["changes"]["inspections"]["created"]
        .as_array()
        .unwrap()
        .is_empty());
    // The pushing device gets its own records back as updates, never as creations.
    let (_, own) = pull(&w.app, &phone, Some(cursor), 2).await;
    assert_eq!(ids(&own, "inspections", "updated"), vec![iid]);
    assert!(own["changes"]["inspections"]["created"]
        .as_array()
        .unwrap()
        .is_empty());
}

async fn conflicting_push_is_409_and_applies_nothing(app: TestApp) {
    let w = world(app).await;
    let (task, est, member, _) = w.task_member_outsider();
    let a = w.device(&member, "phone-a").await;
    let b = w.device(&member, "phone-b").await;
    let (_, p) = pull(&w.app, &a, None, 2).await;
    let cursor = p["timestamp"].as_i64().unwrap();
    let iid = Uuid::new_v4().to_string();
    let base = inspection(&iid, &task, &est, &w.team_json(0));
    let (s, _) = push(
        &w.app,
        &a,
        cursor,
        json!({"inspections": {"created": [base.clone()]}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, pb) = pull(&w.app, &b, None, 2).await;
    let cursor_b = pb["timestamp"].as_i64().unwrap();
    // A edits the opinion and syncs; B, offline from cursor_b, edits other findings.
    let mut ea = base.clone();
    ea["business_opinion"] = json!("无异议");
    let (_, pa) = pull(&w.app, &a, Some(cursor), 2).await;
    let (s, _) = push(
        &w.app,
        &a,
        pa["timestamp"].as_i64().unwrap(),
        json!({"inspections": {"updated": [ea]}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let mut eb = base.clone();
    eb["other_findings"] = json!("冷藏柜温度偏高");
    let new_answer = answer(&iid, "9.3", "fail");
    let (s, e) = push(&w.app, &b, cursor_b, json!({"inspections": {"updated": [eb.clone()]}, "answers": {"created": [new_answer.clone()]}})).await;
    assert_error(s, &e, 409, "sync_conflict");
    assert_eq!(count(&w.app, "answers").await, 0, "a 409 applies nothing");
    // B pulls (gets A's change), merges per column, pushes again: both edits survive.
    let (_, pb2) = pull(&w.app, &b, Some(cursor_b), 2).await;
    let server = &pb2["changes"]["inspections"]["updated"][0];
    assert_eq!(server["business_opinion"], "无异议");
    let mut merged = eb.clone();
    merged["business_opinion"] = server["business_opinion"].clone();
    let (s, r) = push(
        &w.app,
        &b,
        pb2["timestamp"].as_i64().unwrap(),
        json!({"inspections": {"updated": [merged]}, "answers": {"created": [new_answer]}}),
    )
    .await;
    assert_eq!((s, r), (StatusCode::OK, json!({})));
    let (_, list) = w
        .app
        .get(&format!("/api/v1/inspections?task_id={task}"), &w.admin)
        .await;
    assert_eq!(list["items"][0]["business_opinion"], "无异议");
    assert_eq!(list["items"][0]["other_findings"], "冷藏柜温度偏高");
    assert_eq!(count(&w.app, "answers").await, 1);
}

async fn refusals_per_record_and_the_rest_applied(app: TestApp) {
    let w = world(app).await;
    let (task, est, member, outsider) = w.task_member_outsider();
    let t = w.device(&member, "phone").await;
    let (_, p) = pull(&w.app, &t, None, 2).await;
    let cursor = p["timestamp"].as_i64().unwrap();
    let good = Uuid::new_v4().to_string();
    let foreign_task = w
        .tasks
        .iter()
        .find(|(_, _, m)| !m.contains(&member))
        .unwrap();
    let stolen = Uuid::new_v4().to_string();
    let dup = {
        let mut a = answer(&good, "1.1", "fail");
        a["id"] = json!(Uuid::new_v4());
        a
    };
    let task_edit = json!({"id": task, "state": "submitted"});
    let changes = json!({
        "inspections": {"created": [inspection(&good, &task, &est, &w.team_json(0)), inspection(&stolen, &foreign_task.0, &foreign_task.1, "[]")]},
        "answers": {"created": [answer(&good, "1.1", "pass"), answer(&good, "99.9", "pass"), dup.clone(), answer(&stolen, "1.1", "pass"),
                                 answer(&good, "2.1", "excellent")]},
        "tasks": {"updated": [task_edit]}
    });
    let (s, r) = push(&w.app, &t, cursor, changes).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let codes: Vec<(String, String)> = r["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["table"].as_str().unwrap().into(),
                x["code"].as_str().unwrap().into(),
            )
        })
        .collect();
    for want in [
        ("inspections", "not_your_task"),
        ("answers", "unknown_item"),
        ("answers", "duplicate_answer"),
        ("answers", "unknown_inspection"),
        ("answers", "invalid_record"),
        ("tasks", "read_only"),
    ] {
        assert!(
            codes.iter().any(|(t, c)| t == want.0 && c == want.1),
            "missing {want:?} in {codes:?}"
        );
    }
    assert_eq!(r["experimentalRejectedIds"]["inspections"], json!([stolen]));
    // The rest was applied.
    assert_eq!(
        (
            count(&w.app, "inspections").await,
            count(&w.app, "answers").await
        ),
        (1, 1)
    );
    // A cancelled task takes no more work.
    let (s, _) = w
        .app
        .post(
            &format!("/api/v1/tasks/{task}/cancel"),
            &w.admin,
            json!({"reason": "已停业"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, p2) = pull(&w.app, &t, Some(cursor), 2).await;
    let (s, r) = push(
        &w.app,
        &t,
        p2["timestamp"].as_i64().unwrap(),
        json!({"answers": {"created": [answer(&good, "3.1", "pass")]}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["rejected"][0]["code"], "task_cancelled");
    let _ = outsider;
}

async fn submission_computes_the_result_and_locks(app: TestApp) {
    let w = world(app).await;
    let (task, est, member, _) = w.task_member_outsider();
    let t = w.device(&member, "phone").await;
    let (_, p) = pull(&w.app, &t, None, 2).await;
    let cursor = p["timestamp"].as_i64().unwrap();
    let iid = Uuid::new_v4().to_string();
    let mut rec = inspection(&iid, &task, &est, &w.team_json(0));
    rec["submitted"] = json!(true);
    // Too few items checked: refused, and its new answers with it.
    let few: Vec<Value> = KEY[..2].iter().map(|c| answer(&iid, c, "pass")).collect();
    let (_, r) = push(
        &w.app,
        &t,
        cursor,
        json!({"inspections": {"created": [rec.clone()]}, "answers": {"created": few}}),
    )
    .await;
    assert_eq!(r["rejected"][0]["code"], "coverage_below_minimum", "{r}");
    assert_eq!(count(&w.app, "inspections").await, 0);
    // A team of one is refused too.
    let lonely =
        serde_json::to_string(&json!([{"user_id": null, "name": member, "badge_no": "TJ-x"}]))
            .unwrap();
    let mut solo = rec.clone();
    solo["team"] = json!(lonely);
    let mut all: Vec<Value> = KEY.iter().map(|c| answer(&iid, c, "pass")).collect();
    all.extend(GENERAL.iter().map(|c| answer(&iid, c, "pass")));
    // Two key items failed → 不符合 by the 2016 rule.
    all[0] = answer(&iid, KEY[0], "fail");
    all[1] = answer(&iid, KEY[1], "fail");
    let (_, r) = push(
        &w.app,
        &t,
        cursor,
        json!({"inspections": {"created": [solo]}, "answers": {"created": all.clone()}}),
    )
    .await;
    assert_eq!(r["rejected"][0]["code"], "team_too_small", "{r}");
    // Two invented officers (no account, an account that does not exist) with badges the
    // device made up: neither counts; nor does an outsider's real account, nor a 人大代表
    // riding along, so the inspection is refused and nothing is locked.
    let outsider_id = w
        .inspectors
        .iter()
        .find(|(n, _)| !w.tasks[0].2.contains(n))
        .unwrap()
        .1
        .clone();
    let invented = serde_json::to_string(&json!([
        {"user_id": null, "name": "假检查员", "badge_no": "TJ-0001"},
        {"user_id": Uuid::new_v4(), "name": "不存在", "badge_no": "TJ-0002"},
        {"user_id": outsider_id, "name": "外组", "badge_no": "TJ-0003"},
        {"user_id": w.inspectors.iter().find(|(n, _)| *n == member).unwrap().1, "name": member, "badge_no": "TJ-x"},
        {"user_id": null, "name": "人大代表", "badge_no": null, "role": "npc_deputy"},
    ]))
    .unwrap();
    let mut forged = rec.clone();
    forged["team"] = json!(invented);
    let (_, r) = push(
        &w.app,
        &t,
        cursor,
        json!({"inspections": {"created": [forged]}, "answers": {"created": all.clone()}}),
    )
    .await;
    assert_eq!(r["rejected"][0]["code"], "team_too_small", "{r}");
    assert_eq!(
        count(&w.app, "inspections").await,
        0,
        "nothing stored, nothing locked"
    );
    let (s, r) = push(
        &w.app,
        &t,
        cursor,
        json!({"inspections": {"created": [rec.clone()]}, "answers": {"created": all}}),
    )
    .await;
    assert_eq!((s, &r), (StatusCode::OK, &json!({})));
    let (_, p2) = pull(&w.app, &t, Some(cursor), 2).await;
    let got = &p2["changes"]["inspections"]["updated"][0];
    assert_eq!(got["computed_result"], "non_compliant");
    assert_eq!(got["submitted"], true);
    // In the review queue, as its first round (schema 2 has no review_round column).
    assert_eq!(got["review_state"], "submitted");
    assert!(got.get("review_round").is_none());
    let (round,): (i64,) = sqlx::query_as("SELECT review_round FROM inspections WHERE id = $1")
        .bind(&iid)
        .fetch_one(w.app.db().pool())
        .await
        .unwrap();
    assert_eq!(round, 1);
    assert_eq!(got["server_flags"], json!("[\"declared_result_differs\"]"));
    assert_eq!(p2["changes"]["tasks"]["updated"][0]["state"], "submitted");
    // The submission is an audit event with the computed result, beside the refusals' nothing.
    let submitted: Vec<AuditRow> = audit_of(&w.app, &iid)
        .await
        .into_iter()
        .filter(|r| r.0 == "inspection_submitted")
        .collect();
    assert_eq!(submitted.len(), 1);
    let changes: Value = serde_json::from_str(&submitted[0].5).unwrap();
    let result = changes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "computed_result")
        .unwrap();
    assert_eq!(result["after"], "non_compliant");
    // Locked: further edits are refused.
    let mut edit = rec.clone();
    edit["other_findings"] = json!("late edit");
    let (_, r) = push(&w.app, &t, p2["timestamp"].as_i64().unwrap(), json!({"inspections": {"updated": [edit]}, "answers": {"updated": [answer(&iid, KEY[0], "pass")]}})).await;
    let codes: Vec<&str> = r["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec!["inspection_submitted", "inspection_submitted"]);
    // The failed key items are must-check items in the next round.
    let (failed,): (String,) = sqlx::query_as(
        "SELECT failed_items FROM establishment_followups WHERE establishment_id = $1",
    )
    .bind(&est)
    .fetch_one(w.app.db().pool())
    .await
    .unwrap();
    let failed: Vec<String> = serde_json::from_str(&failed).unwrap();
    assert_eq!(failed, vec![KEY[0].to_string(), KEY[1].to_string()]);
    // A next round's task for the same establishment reaches the device, with them.
    let (_, p3) = pull(&w.app, &t, p2["timestamp"].as_i64(), 2).await;
    let team: Vec<&str> = w.tasks[0]
        .2
        .iter()
        .map(|n| {
            w.inspectors
                .iter()
                .find(|(m, _)| m == n)
                .unwrap()
                .1
                .as_str()
        })
        .collect();
    let (_, plan) = w
        .app
        .post("/api/v1/plans", &w.admin, json!({"name": "n2", "round_title": "第2期", "theme": "t", "period_start": "2024-04-01",
            "period_end": "2024-04-30", "due_date": "2099-04-30", "template_id": TEMPLATE, "template_version": 1,
            "quotas": {"explicit": {"C": 6}}, "inspector_ids": team, "team_size": 2}))
        .await;
    let (s, _) = w
        .app
        .post(
            &format!("/api/v1/plans/{}/draw", plan["id"].as_str().unwrap()),
            &w.admin,
            json!({"seed": "2"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, p4) = pull(&w.app, &t, p3["timestamp"].as_i64(), 2).await;
    let next: Vec<&Value> = p4["changes"]["tasks"]["created"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["establishment_id"] == est.as_str())
        .collect();
    assert_eq!(next.len(), 1, "{p4}");
    assert_eq!(
        next[0]["must_check_items"],
        json!(format!("[\"{}\",\"{}\"]", KEY[0], KEY[1]))
    );
}

async fn bad_push_input_is_4xx_and_applies_nothing(app: TestApp) {
    let w = world(app).await;
    let (task, est, member, _) = w.task_member_outsider();
    let t = w.device(&member, "phone").await;
    let (_, p) = pull(&w.app, &t, None, 2).await;
    let cursor = p["timestamp"].as_i64().unwrap();
    let iid = Uuid::new_v4().to_string();
    let good = inspection(&iid, &task, &est, &w.team_json(0));
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"robots": {"created": [good.clone()]}}),
            422,
            "unknown_table",
        ),
        (
            json!({"inspections": {"created": [json!({"id": iid, "colour": "red"})]}}),
            422,
            "unknown_column",
        ),
        (
            json!({"inspections": {"created": [json!({"id": "42", "task_id": task})]}}),
            422,
            "invalid_id",
        ),
        (
            json!({"inspections": {"created": [good.clone()], "updated": [good.clone()]}}),
            422,
            "duplicate_id",
        ),
        (
            json!({"inspections": {"created": [{"id": iid, "task_id": task, "establishment_id": est, "started_at": "noon", "team": "[]"}]}}),
            422,
            "invalid_body",
        ),
        (
            json!({"inspections": {"created": [{"id": iid, "task_id": task, "establishment_id": est, "started_at": 1, "team": "[]", "submitted": "yes"}]}}),
            422,
            "invalid_body",
        ),
        (json!({"inspections": "everything"}), 422, "invalid_body"),
    ];
    for (changes, status, code) in cases {
        let (s, e) = push(
            &w.app,
            &t,
            cursor,
            json!({"inspections": {"created": [good.clone()]}})
                .as_object()
                .map(|_| changes.clone())
                .unwrap(),
        )
        .await;
        assert_error(s, &e, status, code);
    }
    for q in [
        "last_pulled_at=-1",
        "last_pulled_at=999999999",
        "last_pulled_at=abc",
        "",
    ] {
        let (s, e) = w
            .app
            .post(
                &format!("/api/v1/sync?{q}"),
                &t,
                json!({"changes": {"inspections": {"created": [good.clone()]}}}),
            )
            .await;
        assert_error(s, &e, 400, "invalid_cursor");
    }
    let res = w
        .app
        .client
        .post(w.app.url(&format!("/api/v1/sync?last_pulled_at={cursor}")))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body("{\"changes\": {")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let (status, e) = crate::common::raw_post_json_auth(
        &w.app.base,
        &format!("/api/v1/sync?last_pulled_at={cursor}"),
        &t,
        w.app.state.config.max_sync_body_bytes + 1,
    )
    .await;
    assert_eq!(status, 413, "{e}");
    // One past the served versions (whatever the current one is).
    let ahead = format!(
        "schema_version={}",
        foodcheck::sync::CURRENT_SCHEMA_VERSION + 1
    );
    for q in [
        "last_pulled_at=-5",
        "last_pulled_at=99999999",
        "last_pulled_at=x",
        ahead.as_str(),
        "schema_version=0",
        "migration=%7Bbad",
    ] {
        let (s, e) = w.app.get(&format!("/api/v1/sync?{q}"), &t).await;
        assert_eq!(s.as_u16(), 400, "{q}: {e}");
    }
    assert_eq!(count(&w.app, "inspections").await, 0, "nothing applied");
}

async fn deletes_leave_tombstones(app: TestApp) {
    let w = world(app).await;
    let (task, est, member, _) = w.task_member_outsider();
    let a = w.device(&member, "phone-a").await;
    let b = w.device(&member, "phone-b").await;
    let (_, p) = pull(&w.app, &a, None, 2).await;
    let cursor = p["timestamp"].as_i64().unwrap();
    let iid = Uuid::new_v4().to_string();
    let ans = answer(&iid, "5.1", "fail");
    let photo = json!({"id": Uuid::new_v4(), "inspection_id": iid, "item_code": "5.1", "sha256": "a".repeat(64), "byte_size": 1234, "taken_at": 1_710_000_000_000i64, "processing_status": null});
    push(&w.app, &a, cursor, json!({"inspections": {"created": [inspection(&iid, &task, &est, &w.team_json(0))]}, "answers": {"created": [ans.clone()]}, "photos": {"created": [photo.clone()]}})).await;
    let (_, pb) = pull(&w.app, &b, None, 2).await;
    assert_eq!(
        pb["changes"]["answers"]["created"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (_, pa) = pull(&w.app, &a, Some(cursor), 2).await;
    let (s, r) = push(
        &w.app,
        &a,
        pa["timestamp"].as_i64().unwrap(),
        json!({"answers": {"deleted": [ans["id"]]}}),
    )
    .await;
    assert_eq!((s, r), (StatusCode::OK, json!({})));
    // Deleting again (a retry) is a no-op.
    let (s, _) = push(
        &w.app,
        &a,
        pa["timestamp"].as_i64().unwrap(),
        json!({"answers": {"deleted": [ans["id"]]}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, pb2) = pull(&w.app, &b, pb["timestamp"].as_i64(), 2).await;
    assert_eq!(pb2["changes"]["answers"]["deleted"], json!([ans["id"]]));
    // Deleting the inspection takes its photo with it (children follow their parent).
    let (_, pa2) = pull(&w.app, &a, pa["timestamp"].as_i64(), 2).await;
    let (s, _) = push(
        &w.app,
        &a,
        pa2["timestamp"].as_i64().unwrap(),
        json!({"inspections": {"deleted": [iid]}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, pb3) = pull(&w.app, &b, pb2["timestamp"].as_i64(), 2).await;
    assert_eq!(pb3["changes"]["inspections"]["deleted"], json!([iid]));
    assert_eq!(pb3["changes"]["photos"]["deleted"], json!([photo["id"]]));
    assert_eq!(
        (
            count(&w.app, "inspections").await,
            count(&w.app, "photos").await
        ),
        (0, 0)
    );
}

async fn schema_versions_and_migration_pulls(app: TestApp) {
    let w = world(app).await;
    let (task, est, member, _) = w.task_member_outsider();
    let t = w.device(&member, "phone").await;
    let (_, p) = pull(&w.app, &t, None, 2).await;
    let iid = Uuid::new_v4().to_string();
    let photo = json!({"id": Uuid::new_v4(), "inspection_id": iid, "item_code": null, "sha256": "b".repeat(64), "byte_size": 99, "taken_at": 1_710_000_000_000i64});
    push(&w.app, &t, p["timestamp"].as_i64().unwrap(), json!({"inspections": {"created": [inspection(&iid, &task, &est, &w.team_json(0))]}, "photos": {"created": [photo]}})).await;
    // Version 1 has no photos table and no server_flags column.
    let old = w.device(&member, "old-phone").await;
    let (s, p1) = pull(&w.app, &old, None, 1).await;
    assert_eq!(s, StatusCode::OK);
    assert!(p1["changes"].get("photos").is_none());
    assert!(p1["changes"]["inspections"]["created"][0]
        .get("server_flags")
        .is_none());
    assert!(p1["changes"]["inspections"]["created"][0]
        .get("computed_result")
        .is_some());
    // After the app upgrades to 2, WatermelonDB asks for a migration pull.
    let migration = "%7B%22from%22%3A1%2C%22tables%22%3A%5B%22photos%22%5D%2C%22columns%22%3A%5B%7B%22table%22%3A%22inspections%22%2C%22columns%22%3A%5B%22server_flags%22%5D%7D%5D%7D";
    let (s, pm) = w
        .app
        .get(
            &format!(
                "/api/v1/sync?last_pulled_at={}&schema_version=2&migration={migration}",
                p1["timestamp"]
            ),
            &old,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{pm}");
    assert_eq!(
        pm["changes"]["photos"]["updated"].as_array().unwrap().len()
            + pm["changes"]["photos"]["created"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        pm["changes"]["inspections"]["updated"]
            .as_array()
            .unwrap()
            .len()
            + pm["changes"]["inspections"]["created"]
                .as_array()
                .unwrap()
                .len(),
        1
    );
}

async fn old_cursor_gets_a_replacement(app: TestApp) {
    let w = world(app).await;
    let (task, est, member, _) = w.task_member_outsider();
    let t = w.device(&member, "phone").await;
    let (_, p) = pull(&w.app, &t, None, 2).await;
    let cursor = p["timestamp"].as_i64().unwrap();
    let iid = Uuid::new_v4().to_string();
    push(&w.app, &t, cursor, json!({"inspections": {"created": [inspection(&iid, &task, &est, &w.team_json(0))]}, "answers": {"created": [answer(&iid, "1.1", "pass")]}})).await;
    let (_, p2) = pull(&w.app, &t, Some(cursor), 2).await;
    push(
        &w.app,
        &t,
        p2["timestamp"].as_i64().unwrap(),
        json!({"answers": {"deleted": [answer(&iid, "1.1", "pass")["id"]]}}),
    )
    .await;
    // Tombstones are purged (retention passed): the old cursor cannot be served incrementally.
    let purged = foodcheck::ops::sync::purge_tombstones(
        w.app.db(),
        &foodcheck::audit::Ctx::system(),
        i64::MAX,
    )
    .await
    .unwrap();
    assert_eq!(purged, 1);
    // Housekeeping is audited too.
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE action = 'tombstones_purged'")
            .fetch_one(w.app.db().pool())
            .await
            .unwrap();
    assert_eq!(n, 1);
    let (s, full) = pull(&w.app, &t, Some(cursor), 2).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(full["experimentalStrategy"], "replacement");
    assert_eq!(full["changes"]["answers"]["deleted"], json!([]));
    let tasks = full["changes"]["tasks"]["created"]
        .as_array()
        .unwrap()
        .len()
        + full["changes"]["tasks"]["updated"]
            .as_array()
            .unwrap()
            .len();
    assert_eq!(
        tasks,
        w.tasks
            .iter()
            .filter(|(_, _, m)| m.contains(&member))
            .count()
    );
    // A current cursor is still incremental.
    let (_, inc) = pull(&w.app, &t, full["timestamp"].as_i64(), 2).await;
    assert!(inc.get("experimentalStrategy").is_none());
}

/// Rejection codes of a push answer, as (table, id, code).
fn refusals(r: &Value) -> Vec<(String, String, String)> {
    r["rejected"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x["table"].as_str().unwrap().into(),
                        x["id"].as_str().unwrap().into(),
                        x["code"].as_str().unwrap().into(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn answer_parent(app: &TestApp, id: &str) -> (String, String) {
    sqlx::query_as("SELECT inspection_id, item_code FROM answers WHERE id = $1")
        .bind(id)
        .fetch_one(app.db().pool())
        .await
        .unwrap()
}

async fn records_never_move_to_another_inspection(app: TestApp) {
    let w = world(app).await;
    let (task_a, est_a, member_a) = (&w.tasks[0].0, &w.tasks[0].1, &w.tasks[0].2[0]);
    // Team B: a task none of team A's members belongs to.
    let b_index = w
        .tasks
        .iter()
        .position(|(_, _, m)| m.iter().all(|n| !w.tasks[0].2.contains(n)))
        .expect("a task of another team");
    let (task_b, est_b, member_b) = (
        &w.tasks[b_index].0,
        &w.tasks[b_index].1,
        &w.tasks[b_index].2[0],
    );
    let a = w.device(member_a, "phone-a").await;
    let b = w.device(member_b, "phone-b").await;
    let (_, pa) = pull(&w.app, &a, None, 2).await;
    let ia = Uuid::new_v4().to_string();
    let ans = answer(&ia, "1.1", "pass");
    let photo = json!({"id": Uuid::new_v4(), "inspection_id": ia, "item_code": "1.1", "sha256": "c".repeat(64), "byte_size": 500, "taken_at": 1_710_000_000_000i64});
    let (s, r) = push(
        &w.app,
        &a,
        pa["timestamp"].as_i64().unwrap(),
        json!({"inspections": {"created": [inspection(&ia, task_a, est_a, &w.team_json(0))]},
        "answers": {"created": [ans.clone()]}, "photos": {"created": [photo.clone()]}}),
    )
    .await;
    assert_eq!((s, r), (StatusCode::OK, json!({})));
    let (_, pb) = pull(&w.app, &b, None, 2).await;
    let ib = Uuid::new_v4().to_string();
    let (s, r) = push(&w.app, &b, pb["timestamp"].as_i64().unwrap(), json!({"inspections": {"created": [inspection(&ib, task_b, est_b, &w.team_json(b_index))]}})).await;
    assert_eq!((s, r), (StatusCode::OK, json!({})));
    // B names A's answer and photo ids with its own inspection: the stored records are not
    // B's to write; refused, nothing moves.
    let (_, pb) = pull(&w.app, &b, pb["timestamp"].as_i64(), 2).await;
    let mut stolen = ans.clone();
    stolen["inspection_id"] = json!(ib);
    stolen["status"] = json!("fail");
    let mut stolen_photo = photo.clone();
    stolen_photo["inspection_id"] = json!(ib);
    let (s, r) = push(
        &w.app,
        &b,
        pb["timestamp"].as_i64().unwrap(),
        json!({"answers": {"updated": [stolen]}, "photos": {"updated": [stolen_photo]}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let mut codes: Vec<(String, String)> =
        refusals(&r).into_iter().map(|(t, _, c)| (t, c)).collect();
    codes.sort();
    assert_eq!(
        codes,
        vec![
            ("answers".to_string(), "not_your_task".to_string()),
            ("photos".to_string(), "not_your_task".to_string())
        ],
        "{r}"
    );
    let aid = ans["id"].as_str().unwrap();
    assert_eq!(
        answer_parent(&w.app, aid).await,
        (ia.clone(), "1.1".to_string())
    );
    let (pi, st): (String, String) =
        sqlx::query_as("SELECT a.inspection_id, a.status FROM answers a WHERE a.id = $1")
            .bind(aid)
            .fetch_one(w.app.db().pool())
            .await
            .unwrap();
    assert_eq!((pi.as_str(), st.as_str()), (ia.as_str(), "pass"));
    let (photo_parent,): (String,) =
        sqlx::query_as("SELECT inspection_id FROM photos WHERE id = $1")
            .bind(photo["id"].as_str().unwrap())
            .fetch_one(w.app.db().pool())
            .await
            .unwrap();
    assert_eq!(photo_parent, ia);
    // Nor does B see A's records.
    let (_, pb2) = pull(&w.app, &b, pb["timestamp"].as_i64(), 2).await;
    assert!(!ids(&pb2, "answers", "updated").contains(&aid.to_string()));
    // Within the team an answer cannot change its item either (its id is the item's).
    let (_, pa2) = pull(&w.app, &a, pa["timestamp"].as_i64(), 2).await;
    let mut moved = ans.clone();
    moved["item_code"] = json!("2.1");
    let (s, r) = push(
        &w.app,
        &a,
        pa2["timestamp"].as_i64().unwrap(),
        json!({"answers": {"updated": [moved]}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(refusals(&r)[0].2, "immutable_field", "{r}");
    assert_eq!(answer_parent(&w.app, aid).await.1, "1.1");
}

async fn stale_edit_of_a_deleted_record_is_409(app: TestApp) {
    let w = world(app).await;
    let (task, est, member, _) = w.task_member_outsider();
    let a = w.device(&member, "phone-a").await;
    let b = w.device(&member, "phone-b").await;
    let (_, p) = pull(&w.app, &a, None, 2).await;
    let iid = Uuid::new_v4().to_string();
    let rec = inspection(&iid, &task, &est, &w.team_json(0));
    let ans = answer(&iid, "1.1", "pass");
    let keep = answer(&iid, "2.1", "pass");
    push(&w.app, &a, p["timestamp"].as_i64().unwrap(), json!({"inspections": {"created": [rec.clone()]}, "answers": {"created": [ans.clone(), keep.clone()]}})).await;
    // B pulls at cursor 4 (say); A deletes the answer (4 -> 5).
    let (_, pb) = pull(&w.app, &b, None, 2).await;
    let cursor_b = pb["timestamp"].as_i64().unwrap();
    let (s, _) = push(
        &w.app,
        &a,
        cursor_b,
        json!({"answers": {"deleted": [ans["id"]]}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // B, still at 4, edits it: a conflict, nothing applied, the tombstone stays.
    let mut edit = ans.clone();
    edit["status"] = json!("fail");
    let mut other = keep.clone();
    other["status"] = json!("fail");
    let (s, e) = push(
        &w.app,
        &b,
        cursor_b,
        json!({"answers": {"updated": [edit.clone(), other]}}),
    )
    .await;
    assert_error(s, &e, 409, "sync_conflict");
    assert_eq!(count(&w.app, "answers").await, 1);
    assert_eq!(count(&w.app, "sync_tombstones").await, 1);
    // A whole inspection deleted (with its answers): a stale edit of it or of its answers is 409.
    let (_, pa) = pull(&w.app, &a, Some(cursor_b), 2).await;
    let cursor = pa["timestamp"].as_i64().unwrap();
    let (s, _) = push(
        &w.app,
        &a,
        cursor,
        json!({"inspections": {"deleted": [iid]}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let mut stale = rec.clone();
    stale["other_findings"] = json!("x");
    let (s, e) = push(
        &w.app,
        &b,
        cursor,
        json!({"inspections": {"updated": [stale]}}),
    )
    .await;
    assert_error(s, &e, 409, "sync_conflict");
    let (s, e) = push(
        &w.app,
        &b,
        cursor,
        json!({"answers": {"updated": [answer(&iid, "3.1", "pass")]}}),
    )
    .await;
    assert_error(s, &e, 409, "sync_conflict");
    assert_eq!(
        (
            count(&w.app, "inspections").await,
            count(&w.app, "answers").await
        ),
        (0, 0)
    );
    // After pulling the deletion, re-creating the record is a new decision, and allowed.
    let (_, pb2) = pull(&w.app, &b, Some(cursor), 2).await;
    assert_eq!(pb2["changes"]["inspections"]["deleted"], json!([iid]));
    let (s, r) = push(
        &w.app,
        &b,
        pb2["timestamp"].as_i64().unwrap(),
        json!({"inspections": {"created": [rec]}}),
    )
    .await;
    assert_eq!((s, r), (StatusCode::OK, json!({})));
}

async fn replacement_pull_lists_own_records_as_updated(app: TestApp) {
    let w = world(app).await;
    let (task, est, member, _) = w.task_member_outsider();
    let t = w.device(&member, "phone").await;
    let other = w.device(&member, "tablet").await;
    let (_, p) = pull(&w.app, &t, None, 2).await;
    let cursor = p["timestamp"].as_i64().unwrap();
    let iid = Uuid::new_v4().to_string();
    let mine = answer(&iid, "1.1", "pass");
    push(&w.app, &t, cursor, json!({"inspections": {"created": [inspection(&iid, &task, &est, &w.team_json(0))]}, "answers": {"created": [mine.clone()]}})).await;
    let (_, po) = pull(&w.app, &other, None, 2).await;
    let theirs = answer(&iid, "2.1", "pass");
    push(
        &w.app,
        &other,
        po["timestamp"].as_i64().unwrap(),
        json!({"answers": {"created": [theirs.clone()]}}),
    )
    .await;
    let gone = answer(&iid, "3.1", "pass");
    let (_, po2) = pull(&w.app, &other, po["timestamp"].as_i64(), 2).await;
    push(
        &w.app,
        &other,
        po2["timestamp"].as_i64().unwrap(),
        json!({"answers": {"created": [gone.clone()]}}),
    )
    .await;
    let (_, po3) = pull(&w.app, &other, po2["timestamp"].as_i64(), 2).await;
    push(
        &w.app,
        &other,
        po3["timestamp"].as_i64().unwrap(),
        json!({"answers": {"deleted": [gone["id"]]}}),
    )
    .await;
    foodcheck::ops::sync::purge_tombstones(w.app.db(), &foodcheck::audit::Ctx::system(), i64::MAX)
        .await
        .unwrap();
    let (_, full) = pull(&w.app, &t, Some(cursor), 2).await;
    assert_eq!(full["experimentalStrategy"], "replacement");
    // The device's own records: `updated` (a pending local deletion survives);
    // the other device's: `created`.
    assert_eq!(ids(&full, "inspections", "updated"), vec![iid.clone()]);
    assert!(ids(&full, "inspections", "created").is_empty());
    assert_eq!(
        ids(&full, "answers", "updated"),
        vec![mine["id"].as_str().unwrap().to_string()]
    );
    assert_eq!(
        ids(&full, "answers", "created"),
        vec![theirs["id"].as_str().unwrap().to_string()]
    );
}

/// `(action, actor_id, actor_role, device_id, request_id, changes)` of a record's audit
/// entries, oldest first.
type AuditRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

async fn audit_of(app: &TestApp, record_id: &str) -> Vec<AuditRow> {
    sqlx::query_as(
        "SELECT action, actor_id, actor_role, device_id, request_id, changes FROM audit_events \
         WHERE record_id = $1 ORDER BY id",
    )
    .bind(record_id)
    .fetch_all(app.db().pool())
    .await
    .unwrap()
}

/// A push records, in its own transaction, who changed what from what to what: the
/// inspection's fields, each answer per item, the submission with its result; with the
/// inspector, role, device and request id. A replay records nothing more.
async fn push_records_typed_audit_events(app: TestApp) {
    let w = world(app).await;
    let (task, est, member, _) = w.task_member_outsider();
    let t = w.device(&member, "phone-7").await;
    let member_id = w
        .inspectors
        .iter()
        .find(|(n, _)| *n == member)
        .unwrap()
        .1
        .clone();
    let (_, p) = pull(&w.app, &t, None, 2).await;
    let cursor = p["timestamp"].as_i64().unwrap();
    let iid = Uuid::new_v4().to_string();
    let rec = inspection(&iid, &task, &est, &w.team_json(0));
    let answers = vec![
        answer(&iid, KEY[0], "pass"),
        answer(&iid, GENERAL[0], "fail"),
    ];
    let body = json!({"changes": {"inspections": {"created": [rec.clone()]}, "answers": {"created": answers}}});
    let send = |body: Value, request_id: &'static str, last: i64| {
        let req = w
            .app
            .client
            .post(w.app.url(&format!("/api/v1/sync?last_pulled_at={last}")))
            .bearer_auth(&t)
            .header("x-request-id", request_id)
            .json(&body);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(
        send(body.clone(), "req-push-1", cursor).await,
        StatusCode::OK
    );
    // The response was lost; the device sends the same push again.
    assert_eq!(send(body, "req-push-2", cursor).await, StatusCode::OK);

    let rows = audit_of(&w.app, &iid).await;
    let actions: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        actions,
        ["inspection_created", "answers_changed"],
        "{rows:?}"
    );
    for r in &rows {
        assert_eq!(r.1.as_deref(), Some(member_id.as_str()));
        assert_eq!(r.2.as_deref(), Some("inspector"));
        assert_eq!(r.3.as_deref(), Some("phone-7"));
        assert_eq!(r.4.as_deref(), Some("req-push-1"));
    }
    // One compact change for the answers' statuses: item code → status, before and after.
    let answers: Value = serde_json::from_str(&rows[1].5).unwrap();
    assert_eq!(answers[0]["field"], "status", "{answers}");
    let after = answers[0]["after"].as_object().unwrap();
    assert_eq!(after.len(), 2, "{answers}");
    assert!(after.contains_key(KEY[0]) && after.contains_key(GENERAL[0]));
    assert!(answers[0]["before"]
        .as_object()
        .unwrap()
        .values()
        .all(Value::is_null));

    // An edit: exactly the changed fields, from → to.
    let (_, p) = pull(&w.app, &t, Some(cursor), 2).await;
    let cursor = p["timestamp"].as_i64().unwrap();
    let mut edit = rec.clone();
    edit["business_opinion"] = json!("无异议");
    let body = json!({"changes": {"inspections": {"updated": [edit]}, "answers": {"updated": [answer(&iid, GENERAL[0], "pass")]}}});
    assert_eq!(send(body, "req-push-3", cursor).await, StatusCode::OK);
    let rows = audit_of(&w.app, &iid).await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows[2].0, "inspection_updated");
    let changes: Value = serde_json::from_str(&rows[2].5).unwrap();
    assert_eq!(
        changes,
        json!([{"field": "business_opinion", "before": null, "after": "无异议"}])
    );
    let changes: Value = serde_json::from_str(&rows[3].5).unwrap();
    assert_eq!(
        changes,
        json!([{"field": "status", "before": {GENERAL[0]: "fail"}, "after": {GENERAL[0]: "pass"}}])
    );
    // The task's start is recorded on the task.
    let task_rows = audit_of(&w.app, &task).await;
    assert!(
        task_rows.iter().any(|r| r.0 == "task_state_changed"),
        "{task_rows:?}"
    );
}

/// Schema 4: a task reaches the device with its drawn team (accounts' names and badges, in
/// draw order, the shape of `inspections.team`); older apps do not get the column, and an app
/// upgrading from 3 gets it for the tasks it has by a migration pull.
async fn synced_tasks_carry_the_drawn_team(app: TestApp) {
    let w = world(app).await;
    let (task, _, member, _) = w.task_member_outsider();
    let t = w.device(&member, "phone").await;
    let (s, p) = pull(&w.app, &t, None, 4).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let rec = p["changes"]["tasks"]["created"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == task.as_str())
        .unwrap()
        .clone();
    let team: Value = serde_json::from_str(rec["team"].as_str().unwrap()).unwrap();
    let want: Vec<Value> = w.tasks[0]
        .2
        .iter()
        .map(|n| {
            let id = &w.inspectors.iter().find(|(m, _)| m == n).unwrap().1;
            json!({"user_id": id, "name": n, "badge_no": null, "role": "officer"})
        })
        .collect();
    // Names and badges as the accounts hold them (test accounts have no badge number).
    let (name, badge): (String, Option<String>) =
        sqlx::query_as("SELECT name, badge_no FROM users WHERE id = $1")
            .bind(want[0]["user_id"].as_str().unwrap())
            .fetch_one(w.app.db().pool())
            .await
            .unwrap();
    let mut want = want;
    want[0]["name"] = json!(name);
    want[0]["badge_no"] = json!(badge);
    assert_eq!(team.as_array().unwrap().len(), want.len(), "{team}");
    assert_eq!(team[0], want[0], "{team}");
    for (got, w) in team.as_array().unwrap().iter().zip(&want) {
        assert_eq!(got["user_id"], w["user_id"]);
        assert_eq!(got["role"], "officer");
    }
    // The same pull at schema 3 has no team column.
    let (_, p3) = pull(&w.app, &t, None, 3).await;
    assert!(p3["changes"]["tasks"]["created"][0].get("team").is_none());
    // Upgrading 3 → 4: the migration pull lists the task again with the new column.
    let migration = "%7B%22from%22%3A3%2C%22tables%22%3A%5B%5D%2C%22columns%22%3A%5B%7B%22table%22%3A%22tasks%22%2C%22columns%22%3A%5B%22team%22%5D%7D%5D%7D";
    let (s, pm) = w
        .app
        .get(
            &format!(
                "/api/v1/sync?last_pulled_at={}&schema_version=4&migration={migration}",
                p3["timestamp"]
            ),
            &t,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{pm}");
    let listed: Vec<&Value> = ["created", "updated"]
        .iter()
        .flat_map(|k| pm["changes"]["tasks"][k].as_array().unwrap())
        .collect();
    assert!(
        listed
            .iter()
            .any(|r| r["id"] == task.as_str() && r["team"].is_string()),
        "{pm}"
    );
}
