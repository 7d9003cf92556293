//! 整改 → 复查 over HTTP and the use cases: a follow-up opened on approval with its deadline in
//! working days, the due sweep creating exactly one recheck task (twice, concurrently), the
//! task reaching the team by sync and not outsiders, the recheck closing or escalating the
//! follow-up, a reviewer scheduling early, the calendar years, and plan due-date warnings.
//!
//! Approval goes through the review use case with a chosen "today" ([`approve_fixture`]);
//! tests/api/review_loop.rs runs the whole loop over HTTP.

use chrono::NaiveDate;
use foodcheck::audit::{Actor, Ctx};
use foodcheck::auth::Role;
use foodcheck::checklist::rule::ResultCode;
use foodcheck::followup::{FollowupOrder, Settings};
use foodcheck::ops;
use foodcheck::review::{Decision, ReviewRequest};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{assert_error, TestApp};

both_backends!(
    approval_opens_a_followup_with_a_working_day_deadline,
    bad_orders_are_refused_and_write_nothing,
    due_sweep_creates_exactly_one_recheck_task,
    recheck_reaches_the_team_by_sync_and_closes_or_escalates,
    reviewer_schedules_a_recheck_early,
    calendar_years_put_and_get,
    plan_due_dates_get_warnings,
    the_server_sees_a_missing_calendar_year_coming,
);

const TEMPLATE: &str = "00000000-0000-4000-8000-000000002016";
/// Key and general items of the 2016 table (enough for its coverage minimums).
const KEY: [&str; 7] = ["3.1", "3.2", "4.1", "4.2", "6.1", "8.4", "9.3"];
const GENERAL: [&str; 7] = ["1.1", "2.1", "2.2", "2.3", "4.3", "4.4", "5.1"];

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

struct Task {
    id: String,
    establishment: String,
    /// Usernames of the team, in draw order.
    members: Vec<String>,
}

struct World {
    app: TestApp,
    admin: String,
    reviewer: String,
    reviewer_id: String,
    /// (username, user id) of the inspectors.
    inspectors: Vec<(String, String)>,
    tasks: Vec<Task>,
}

impl World {
    fn id_of(&self, username: &str) -> String {
        self.inspectors
            .iter()
            .find(|(n, _)| n == username)
            .unwrap()
            .1
            .clone()
    }

    fn team_ids(&self, task: usize) -> Vec<String> {
        self.tasks[task]
            .members
            .iter()
            .map(|m| self.id_of(m))
            .collect()
    }

    /// An inspector in no team of `task`.
    fn outsider(&self, task: usize) -> String {
        self.inspectors
            .iter()
            .find(|(n, _)| !self.tasks[task].members.contains(n))
            .unwrap()
            .0
            .clone()
    }

    async fn device(&self, username: &str) -> String {
        self.app
            .login_full(username, &format!("{username}-phone"))
            .await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn reviewer_ctx(&self) -> Ctx {
        Ctx::new(Actor::user(&self.reviewer_id, Role::Reviewer, None), None)
    }

    fn team_json(&self, members: &[String]) -> String {
        let team: Vec<Value> = members
            .iter()
            .map(|n| json!({"user_id": self.id_of(n), "name": format!("Name of {n}"), "badge_no": format!("TJ-{n}")}))
            .collect();
        serde_json::to_string(&team).unwrap()
    }

    /// A member of the task's team submits an inspection of it through sync: every item of
    /// [`KEY`] and [`GENERAL`] passed except `fail`. Returns the inspection id.
    async fn submit(&self, task_id: &str, est: &str, members: &[String], fail: &[&str]) -> String {
        let token = self.device(&members[0]).await;
        let (s, p) = pull(&self.app, &token, None).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        let cursor = p["timestamp"].as_i64().unwrap();
        let iid = Uuid::new_v4().to_string();
        let answers: Vec<Value> = KEY
            .iter()
            .chain(GENERAL.iter())
            .map(|c| answer(&iid, c, if fail.contains(c) { "fail" } else { "pass" }))
            .collect();
        let rec = json!({"id": iid, "task_id": task_id, "establishment_id": est, "started_at": 1_770_000_000_000i64,
            "finished_at": 1_770_000_600_000i64, "team": self.team_json(members), "representative_name": "王店长",
            "representative_signed": true, "representative_refused": false, "submitted": true});
        let (s, r) = self
            .app
            .post(
                &format!("/api/v1/sync?last_pulled_at={cursor}"),
                &token,
                json!({"changes": {"inspections": {"created": [rec]}, "answers": {"created": answers}}}),
            )
            .await;
        assert_eq!((s, &r), (StatusCode::OK, &json!({})), "submit");
        iid
    }

    /// The member's device resubmits a returned inspection `iid` (all items passed now).
    async fn resubmit(&self, iid: &str, task_id: &str, est: &str, members: &[String]) {
        let token = self.device(&members[0]).await;
        let (s, p) = pull(&self.app, &token, None).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        let cursor = p["timestamp"].as_i64().unwrap();
        let back = p["changes"]["inspections"]["created"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == iid)
            .unwrap_or_else(|| panic!("{iid} not pulled: {p}"));
        assert_eq!(
            back["submitted"], false,
            "a returned inspection is unlocked"
        );
        let rec = json!({"id": iid, "task_id": task_id, "establishment_id": est, "started_at": 1_770_000_000_000i64,
            "finished_at": 1_770_000_600_000i64, "team": self.team_json(members), "representative_name": "王店长",
            "representative_signed": true, "representative_refused": false, "submitted": true});
        let (s, r) = self
            .app
            .post(
                &format!("/api/v1/sync?last_pulled_at={cursor}"),
                &token,
                json!({"changes": {"inspections": {"updated": [rec]}}}),
            )
            .await;
        assert_eq!((s, &r), (StatusCode::OK, &json!({})), "resubmit");
    }

    async fn followup(&self, id: &str) -> Value {
        let (s, f) = self
            .app
            .get(&format!("/api/v1/followups/{id}"), &self.reviewer)
            .await;
        assert_eq!(s, StatusCode::OK, "{f}");
        f
    }
}

fn answer(inspection: &str, item: &str, status: &str) -> Value {
    let id = Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("{inspection}:{item}").as_bytes(),
    );
    json!({"id": id, "inspection_id": inspection, "item_code": item, "status": status, "note": null})
}

async fn pull(app: &TestApp, token: &str, last: Option<i64>) -> (StatusCode, Value) {
    let last = last.map(|l| l.to_string()).unwrap_or_else(|| "null".into());
    app.get(
        &format!("/api/v1/sync?last_pulled_at={last}&schema_version=4"),
        token,
    )
    .await
}

async fn world(app: TestApp) -> World {
    let admin = app.token_for("admin", Role::Admin).await;
    let reviewer_id = app.user("reviewer", Role::Reviewer).await;
    let reviewer = app.login_full("reviewer", "desk").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut inspectors = Vec::new();
    for i in 0..5 {
        let name = format!("insp{i}");
        let id = app.user(&name, Role::Inspector).await;
        inspectors.push((name, id));
    }
    for i in 0..3 {
        let (s, e) = app
            .post(
                "/api/v1/establishments",
                &admin,
                json!({"sign_name": format!("复查店{i}"), "licensed_name": format!("复查餐饮公司{i}"),
                       "license_no": format!("JY21201151{i:06}"), "category": "small_restaurant",
                       "address": "测试路", "town": "周良街道", "risk_grade": "C"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
    }
    let ids: Vec<&str> = inspectors.iter().map(|(_, id)| id.as_str()).collect();
    let (s, plan) = app
        .post(
            "/api/v1/plans",
            &admin,
            json!({"name": "n", "round_title": "第1期", "theme": "t", "period_start": "2026-01-05",
                   "period_end": "2026-12-31", "due_date": "2026-12-31", "template_id": TEMPLATE,
                   "template_version": 1, "quotas": {"explicit": {"C": 3}}, "inspector_ids": ids,
                   "team_size": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{plan}");
    let plan = plan["id"].as_str().unwrap().to_string();
    let (s, draw) = app
        .post(
            &format!("/api/v1/plans/{plan}/draw"),
            &admin,
            json!({"seed": "followup"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{draw}");
    let tasks = crate::common::drawn_tasks(&app, &admin, &plan, &inspectors)
        .await
        .into_iter()
        .map(|(id, establishment, members)| Task {
            id,
            establishment,
            members,
        })
        .collect::<Vec<_>>();
    assert_eq!(tasks.len(), 3);
    World {
        app,
        admin,
        reviewer,
        reviewer_id,
        inspectors,
        tasks,
    }
}

/// Approves through the review use case (`ops::review::decide`, what
/// `POST /api/v1/inspections/{id}/review` runs) with "today" set, overriding the computed
/// result (with a reason) when `result` differs from it. The follow-up's id, if one opened.
async fn approve_fixture(
    w: &World,
    inspection: &str,
    result: ResultCode,
    order: &FollowupOrder,
    today: &str,
) -> Result<Option<String>, ops::Error> {
    let settings = Settings {
        today: Some(d(today)),
        ..Settings::default()
    };
    let computed: Option<String> = sqlx::query_as::<_, (Option<String>,)>(
        "SELECT computed_result FROM inspections WHERE id = $1",
    )
    .bind(inspection)
    .fetch_optional(w.app.db().pool())
    .await
    .unwrap()
    .and_then(|(c,)| c);
    let wanted = serde_json::to_value(result).unwrap();
    let differs = computed.as_deref() != wanted.as_str();
    let req = ReviewRequest {
        decision: Decision::Approved,
        comment: None,
        item_comments: Vec::new(),
        reason: None,
        override_result: differs.then_some(result),
        override_reason: differs.then(|| "复核现场记录后更正结果".to_string()),
        internal_note: None,
        followup: Some(order.clone()),
    };
    ops::review::decide(w.app.db(), &w.reviewer_ctx(), inspection, &req, &settings)
        .await
        .map(|r| r.followup_id)
}

async fn scalar(app: &TestApp, sql: &str, bind: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .bind(bind)
        .fetch_one(app.db().pool())
        .await
        .unwrap();
    n
}

async fn audit_actions(app: &TestApp, record_type: &str, id: &str) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT action FROM audit_events WHERE record_type = $1 AND record_id = $2 ORDER BY id",
    )
    .bind(record_type)
    .bind(id)
    .fetch_all(app.db().pool())
    .await
    .unwrap();
    rows.into_iter().map(|r| r.0).collect()
}

fn sweep_settings() -> Settings {
    Settings::default()
}

async fn approval_opens_a_followup_with_a_working_day_deadline(app: TestApp) {
    let w = world(app).await;
    let t = &w.tasks[0];
    // One key item failed, every general item passed: 基本符合.
    let iid = w
        .submit(&t.id, &t.establishment, &t.members, &["3.1"])
        .await;
    let (computed,): (String,) =
        sqlx::query_as("SELECT computed_result FROM inspections WHERE id = $1")
            .bind(&iid)
            .fetch_one(w.app.db().pool())
            .await
            .unwrap();
    assert_eq!(computed, "basically_compliant");
    // Ordered on Thursday 12 February 2026: 13 and Saturday 14 (调休) work, 15–23 are the
    // Spring Festival, then 24 on; the default 10 working days end on Wednesday 4 March.
    let id = approve_fixture(
        &w,
        &iid,
        ResultCode::BasicallyCompliant,
        &FollowupOrder {
            order_text: Some("清洗消毒设施整改".into()),
            ..FollowupOrder::default()
        },
        "2026-02-12",
    )
    .await
    .unwrap()
    .expect("a follow-up for 基本符合");
    let f = w.followup(&id).await;
    assert_eq!(f["state"], "open");
    assert_eq!(f["origin_result"], "basically_compliant");
    assert_eq!(f["ordered_on"], "2026-02-12");
    assert_eq!(f["period_working_days"], 10);
    assert_eq!(f["deadline"], "2026-03-04");
    assert_eq!(f["failed_items"], json!(["3.1"]));
    assert_eq!(f["recheck_team"], json!(w.team_ids(0)));
    assert_eq!(f["order_text"], "清洗消毒设施整改");
    assert_eq!(f["inspection_id"], iid);
    assert_eq!(f["establishment_id"], t.establishment);
    assert_eq!(f["stop_operating"], false);
    assert_eq!(f["recheck_task_id"], Value::Null);
    assert_eq!(
        audit_actions(&w.app, "followup", &id).await,
        ["followup_opened"]
    );

    // A period of 5 across the festival: 13, 14, 24, 25, 26 February.
    let t1 = &w.tasks[1];
    let iid1 = w
        .submit(&t1.id, &t1.establishment, &t1.members, &["3.1", "3.2"])
        .await;
    let id1 = approve_fixture(
        &w,
        &iid1,
        ResultCode::NonCompliant,
        &FollowupOrder {
            period_working_days: Some(5),
            stop_operating: true,
            case_opened: true,
            ..FollowupOrder::default()
        },
        "2026-02-12",
    )
    .await
    .unwrap()
    .unwrap();
    let f1 = w.followup(&id1).await;
    assert_eq!(f1["deadline"], "2026-02-26");
    assert_eq!(f1["origin_result"], "non_compliant");
    assert_eq!(
        (&f1["stop_operating"], &f1["case_opened"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(f1["failed_items"], json!(["3.1", "3.2"]));

    // 符合 opens nothing.
    let t2 = &w.tasks[2];
    let iid2 = w.submit(&t2.id, &t2.establishment, &t2.members, &[]).await;
    let none = approve_fixture(
        &w,
        &iid2,
        ResultCode::Compliant,
        &FollowupOrder::default(),
        "2026-02-12",
    )
    .await
    .unwrap();
    assert_eq!(none, None);

    // Who may read it: its team yes, an outsider as if it did not exist, a lab not at all.
    let member = w.device(&t.members[1]).await;
    let (s, _) = w.app.get(&format!("/api/v1/followups/{id}"), &member).await;
    assert_eq!(s, StatusCode::OK);
    let outsider = w.device(&w.outsider(0)).await;
    let (s, body) = w
        .app
        .get(&format!("/api/v1/followups/{id}"), &outsider)
        .await;
    assert_error(s, &body, 404, "not_found");
    let (s2, ghost) = w
        .app
        .get(&format!("/api/v1/followups/{}", Uuid::new_v4()), &outsider)
        .await;
    assert_eq!((s2, &ghost), (s, &body), "hidden is answered as missing");
    let lab = w.app.token_for("lab", Role::Lab).await;
    let (s, body) = w.app.get(&format!("/api/v1/followups/{id}"), &lab).await;
    assert_error(s, &body, 403, "forbidden");
}

async fn bad_orders_are_refused_and_write_nothing(app: TestApp) {
    let w = world(app).await;
    let t = &w.tasks[0];
    let iid = w
        .submit(&t.id, &t.establishment, &t.members, &["3.1"])
        .await;
    let count = || async {
        scalar(
            &w.app,
            "SELECT COUNT(*) FROM followups WHERE inspection_id = $1",
            &iid,
        )
        .await
    };
    let refused = |order: FollowupOrder, today: &'static str| {
        let w = &w;
        let iid = iid.clone();
        async move {
            approve_fixture(w, &iid, ResultCode::BasicallyCompliant, &order, today)
                .await
                .unwrap_err()
        }
    };
    let code = |e: &ops::Error| match e {
        ops::Error::Invalid { code, .. } => *code,
        other => panic!("expected a 422 refusal, got {other:?}"),
    };
    // 立即停止经营 / 立案 belong to 不符合 only.
    let e = refused(
        FollowupOrder {
            stop_operating: true,
            ..FollowupOrder::default()
        },
        "2026-03-02",
    )
    .await;
    assert_eq!(code(&e), "followup_markers_not_allowed");
    let e = refused(
        FollowupOrder {
            period_working_days: Some(0),
            ..FollowupOrder::default()
        },
        "2026-03-02",
    )
    .await;
    assert_eq!(code(&e), "invalid_rectification_period");
    // A team of one (named twice), an outsider with a declared conflict, a lab account.
    let member = w.id_of(&t.members[0]);
    let e = refused(
        FollowupOrder {
            recheck_team: Some(vec![member.clone(), member.clone()]),
            ..FollowupOrder::default()
        },
        "2026-03-02",
    )
    .await;
    assert_eq!(code(&e), "recheck_team_too_small");
    let outsider = w.id_of(&w.outsider(0));
    let (s, c) = w
        .app
        .post(
            "/api/v1/conflicts",
            &w.admin,
            json!({"inspector_id": outsider, "establishment_id": t.establishment, "reason": "亲属经营"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let e = refused(
        FollowupOrder {
            recheck_team: Some(vec![member.clone(), outsider.clone()]),
            ..FollowupOrder::default()
        },
        "2026-03-02",
    )
    .await;
    assert_eq!(code(&e), "recheck_inspector_conflict");
    assert!(e.to_string().contains(&outsider), "{e}");
    let e = refused(
        FollowupOrder {
            recheck_team: Some(vec![member.clone(), w.reviewer_id.clone()]),
            ..FollowupOrder::default()
        },
        "2026-03-02",
    )
    .await;
    assert_eq!(code(&e), "recheck_inspector_not_active");
    // Monday 28 December 2026 + 10 working days is in 2027, which the calendar lacks.
    let e = refused(FollowupOrder::default(), "2026-12-28").await;
    assert_eq!(code(&e), "calendar_year_missing");
    assert!(e.to_string().contains("2027"), "{e}");
    // Nothing of any refused approval stayed: no follow-up, the inspection still submitted.
    assert_eq!(count().await, 0);
    let (state,): (Option<String>,) =
        sqlx::query_as("SELECT review_state FROM inspections WHERE id = $1")
            .bind(&iid)
            .fetch_one(w.app.db().pool())
            .await
            .unwrap();
    assert_ne!(state.as_deref(), Some("approved"));
    // An inspection that was never submitted cannot be approved into a follow-up.
    let e = approve_fixture(
        &w,
        &Uuid::new_v4().to_string(),
        ResultCode::BasicallyCompliant,
        &FollowupOrder::default(),
        "2026-03-02",
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ops::Error::NotFound(_)), "{e:?}");
    // Once opened, a second approval of the same inspection is a conflict.
    approve_fixture(
        &w,
        &iid,
        ResultCode::BasicallyCompliant,
        &FollowupOrder::default(),
        "2026-03-02",
    )
    .await
    .unwrap()
    .unwrap();
    let e = approve_fixture(
        &w,
        &iid,
        ResultCode::BasicallyCompliant,
        &FollowupOrder::default(),
        "2026-03-02",
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ops::Error::Conflict { .. }), "{e:?}");
    assert_eq!(count().await, 1);
}

async fn due_sweep_creates_exactly_one_recheck_task(app: TestApp) {
    let w = world(app).await;
    let mut followups = Vec::new();
    for (i, t) in w.tasks.iter().enumerate().take(2) {
        let iid = w
            .submit(&t.id, &t.establishment, &t.members, &["4.3"])
            .await;
        // General item 4.3 failed (6 of 7 passed, 85.7 %): 基本符合. Ordered Monday 2 March:
        // due Monday 16 March.
        let id = approve_fixture(
            &w,
            &iid,
            ResultCode::BasicallyCompliant,
            &FollowupOrder::default(),
            "2026-03-02",
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(w.followup(&id).await["deadline"], "2026-03-16", "{i}");
        followups.push(id);
    }
    let db = w.app.db();
    let ctx = Ctx::system();
    let s = sweep_settings();
    // Friday 13 March: not yet due.
    let r = ops::followup::create_due_rechecks(db, &ctx, &s, d("2026-03-13"))
        .await
        .unwrap();
    assert!(r.created.is_empty() && r.skipped.is_empty(), "{r:?}");
    // Two sweeps at once on the due day (two instances), then one more: each follow-up gets
    // exactly one task.
    let (a, b) = tokio::join!(
        ops::followup::create_due_rechecks(db, &ctx, &s, d("2026-03-16")),
        ops::followup::create_due_rechecks(db, &ctx, &s, d("2026-03-16")),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.created.len() + b.created.len(), 2, "{a:?} {b:?}");
    let again = ops::followup::create_due_rechecks(db, &ctx, &s, d("2026-03-17"))
        .await
        .unwrap();
    assert!(again.created.is_empty(), "{again:?}");
    for (i, id) in followups.iter().enumerate() {
        assert_eq!(
            scalar(
                &w.app,
                "SELECT COUNT(*) FROM tasks WHERE followup_id = $1",
                id
            )
            .await,
            1
        );
        let f = w.followup(id).await;
        assert_eq!(f["state"], "recheck_assigned");
        let task = f["recheck_task_id"].as_str().unwrap().to_string();
        let (kind, est, state, due, must, draw): (String, String, String, String, String, Option<String>) =
            sqlx::query_as("SELECT kind, establishment_id, state, due_date, must_check_items, draw_id FROM tasks WHERE id = $1")
                .bind(&task)
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(kind, "recheck");
        assert_eq!(est, w.tasks[i].establishment);
        assert_eq!(state, "assigned");
        // Created on Monday 16 March, due 5 working days later.
        assert_eq!(due, "2026-03-23");
        assert_eq!(
            serde_json::from_str::<Value>(&must).unwrap(),
            json!(["4.3"])
        );
        assert_eq!(draw, None);
        let members: Vec<(String,)> = sqlx::query_as(
            "SELECT inspector_id FROM task_members WHERE task_id = $1 ORDER BY position",
        )
        .bind(&task)
        .fetch_all(db.pool())
        .await
        .unwrap();
        let members: Vec<String> = members.into_iter().map(|m| m.0).collect();
        assert_eq!(members, w.team_ids(i));
        assert_eq!(
            audit_actions(&w.app, "followup", id).await,
            ["followup_opened", "recheck_task_created"]
        );
        assert_eq!(
            audit_actions(&w.app, "task", &task).await,
            ["recheck_task_created"]
        );
    }
    // Inspectors may not run the sweep themselves.
    let member = w.id_of(&w.tasks[0].members[0]);
    let e = ops::followup::create_due_rechecks(
        db,
        &Ctx::new(Actor::user(&member, Role::Inspector, None), None),
        &s,
        d("2026-03-16"),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ops::Error::Forbidden(_)), "{e:?}");
}

async fn recheck_reaches_the_team_by_sync_and_closes_or_escalates(app: TestApp) {
    let w = world(app).await;
    let mut followups = Vec::new();
    for t in w.tasks.iter().take(2) {
        let iid = w
            .submit(&t.id, &t.establishment, &t.members, &["3.1"])
            .await;
        let id = approve_fixture(
            &w,
            &iid,
            ResultCode::BasicallyCompliant,
            &FollowupOrder::default(),
            "2026-03-02",
        )
        .await
        .unwrap()
        .unwrap();
        followups.push(id);
    }
    // The team's device has pulled everything before the sweep.
    let member = w.device(&w.tasks[0].members[0]).await;
    let (_, before) = pull(&w.app, &member, None).await;
    let cursor = before["timestamp"].as_i64().unwrap();
    let outsider_name = w.outsider(0);
    let outsider = w.device(&outsider_name).await;
    let (_, o_before) = pull(&w.app, &outsider, None).await;
    let o_cursor = o_before["timestamp"].as_i64().unwrap();

    let r = ops::followup::create_due_rechecks(
        w.app.db(),
        &Ctx::system(),
        &sweep_settings(),
        d("2026-03-16"),
    )
    .await
    .unwrap();
    assert_eq!(r.created.len(), 2, "{r:?}");
    let f0 = w.followup(&followups[0]).await;
    let recheck = f0["recheck_task_id"].as_str().unwrap().to_string();

    // The next pull brings the recheck task as new, with its must-check items and team.
    let (s, p) = pull(&w.app, &member, Some(cursor)).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let created = p["changes"]["tasks"]["created"].as_array().unwrap();
    let task = created
        .iter()
        .find(|t| t["id"] == recheck.as_str())
        .unwrap_or_else(|| panic!("the recheck task was not pulled: {p}"));
    assert_eq!(task["establishment_id"], w.tasks[0].establishment);
    assert_eq!(task["state"], "assigned");
    assert_eq!(task["due_date"], "2026-03-23");
    assert_eq!(
        serde_json::from_str::<Value>(task["must_check_items"].as_str().unwrap()).unwrap(),
        json!(["3.1"])
    );
    let team: Value = serde_json::from_str(task["team"].as_str().unwrap()).unwrap();
    let team_ids: Vec<&str> = team
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(team_ids, w.team_ids(0));
    // The task is readable by its member (a recheck task has no draw).
    let (s, t) = w
        .app
        .get(&format!("/api/v1/tasks/{recheck}"), &member)
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["draw_id"], Value::Null);
    assert_eq!(t["must_check_items"], json!(["3.1"]));
    // Not an outsider's: neither by pull nor by id.
    let (_, op) = pull(&w.app, &outsider, Some(o_cursor)).await;
    assert!(
        !op.to_string().contains(&recheck),
        "an outsider pulled the recheck task: {op}"
    );
    let (s, body) = w
        .app
        .get(&format!("/api/v1/tasks/{recheck}"), &outsider)
        .await;
    assert_error(s, &body, 404, "not_found");

    // The recheck submitted through sync with 3.1 passed: closed.
    let members0 = w.tasks[0].members.clone();
    let r0 = w
        .submit(&recheck, &w.tasks[0].establishment, &members0, &[])
        .await;
    let f0 = w.followup(&followups[0]).await;
    assert_eq!(f0["state"], "closed", "{f0}");
    assert_eq!(f0["recheck_inspection_id"], r0);
    assert_eq!(f0["outcome_result"], "compliant");
    assert!(f0["closed_at"].is_string());
    // The other recheck fails 3.1 again: escalated.
    let f1 = w.followup(&followups[1]).await;
    let recheck1 = f1["recheck_task_id"].as_str().unwrap().to_string();
    let members1 = w.tasks[1].members.clone();
    let r1 = w
        .submit(&recheck1, &w.tasks[1].establishment, &members1, &["3.1"])
        .await;
    let f1 = w.followup(&followups[1]).await;
    assert_eq!(f1["state"], "escalated", "{f1}");
    assert_eq!(f1["recheck_inspection_id"], r1);
    assert_eq!(f1["outcome_result"], "basically_compliant");
    assert_eq!(
        audit_actions(&w.app, "followup", &followups[0]).await,
        ["followup_opened", "recheck_task_created", "followup_closed"]
    );
    assert_eq!(
        audit_actions(&w.app, "followup", &followups[1]).await,
        [
            "followup_opened",
            "recheck_task_created",
            "followup_escalated"
        ]
    );
    // An ordinary (drawn) inspection's submission touches no follow-up.
    let t2 = &w.tasks[2];
    w.submit(&t2.id, &t2.establishment, &t2.members, &["3.1"])
        .await;
    assert_eq!(w.followup(&followups[1]).await, f1);

    // The reviewer returns the closing recheck: the follow-up waits for it again, and its
    // resubmission (fixed offline) closes it anew.
    let (s, v) = w
        .app
        .post(
            &format!("/api/v1/inspections/{r0}/review"),
            &w.reviewer,
            json!({"decision": "returned", "comment": "复查照片不清，请补拍"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let f0 = w.followup(&followups[0]).await;
    assert_eq!(f0["state"], "recheck_assigned", "{f0}");
    assert_eq!(f0["recheck_inspection_id"], Value::Null);
    assert_eq!(f0["outcome_result"], Value::Null);
    assert_eq!(f0["closed_at"], Value::Null);
    w.resubmit(&r0, &recheck, &w.tasks[0].establishment, &members0)
        .await;
    let f0 = w.followup(&followups[0]).await;
    assert_eq!(f0["state"], "closed", "{f0}");
    assert_eq!(f0["recheck_inspection_id"], r0);
    assert_eq!(
        audit_actions(&w.app, "followup", &followups[0]).await,
        [
            "followup_opened",
            "recheck_task_created",
            "followup_closed",
            "followup_reopened",
            "followup_closed"
        ]
    );
    // The escalating recheck is rejected: the follow-up waits again, the task is free for a
    // new inspection, and that one decides (passed now: closed).
    let (s, v) = w
        .app
        .post(
            &format!("/api/v1/inspections/{r1}/review"),
            &w.reviewer,
            json!({"decision": "rejected", "reason": "复查人员与原检查组不符"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let f1 = w.followup(&followups[1]).await;
    assert_eq!(f1["state"], "recheck_assigned", "{f1}");
    let r1b = w
        .submit(&recheck1, &w.tasks[1].establishment, &members1, &[])
        .await;
    let f1 = w.followup(&followups[1]).await;
    assert_eq!(f1["state"], "closed", "{f1}");
    assert_eq!(f1["recheck_inspection_id"], r1b);
    // Returning an ordinary inspection reopens nothing.
    let n = scalar(
        &w.app,
        "SELECT COUNT(*) FROM audit_events WHERE action = $1",
        "followup_reopened",
    )
    .await;
    assert_eq!(n, 2);
}

async fn reviewer_schedules_a_recheck_early(app: TestApp) {
    let w = world(app).await;
    let t = &w.tasks[0];
    let iid = w
        .submit(&t.id, &t.establishment, &t.members, &["3.1"])
        .await;
    let id = approve_fixture(
        &w,
        &iid,
        ResultCode::BasicallyCompliant,
        &FollowupOrder::default(),
        "2026-03-02",
    )
    .await
    .unwrap()
    .unwrap();
    let path = format!("/api/v1/followups/{id}/recheck");
    // Inspectors and labs may not; a bad team is refused and changes nothing.
    let member = w.device(&t.members[0]).await;
    let (s, body) = w.app.post(&path, &member, json!({})).await;
    assert_error(s, &body, 403, "forbidden");
    let only = w.id_of(&t.members[0]);
    let (s, body) = w
        .app
        .post(&path, &w.reviewer, json!({"recheck_team": [only]}))
        .await;
    assert_error(s, &body, 422, "recheck_team_too_small");
    let (s, body) = w
        .app
        .post(&path, &w.reviewer, json!({"recheck_team": "x"}))
        .await;
    assert_eq!(s.as_u16(), 422, "{body}");
    let (s, body) = w.app.post(&path, &w.reviewer, json!({"team": []})).await;
    assert_eq!(s.as_u16(), 422, "unknown field: {body}");
    assert_eq!(w.followup(&id).await["state"], "open");
    // Another team of two active inspectors.
    let other: Vec<String> = w
        .inspectors
        .iter()
        .filter(|(n, _)| !t.members.contains(n))
        .take(2)
        .map(|(_, id)| id.clone())
        .collect();
    let (s, f) = w
        .app
        .post(&path, &w.reviewer, json!({"recheck_team": other}))
        .await;
    assert_eq!(s, StatusCode::OK, "{f}");
    assert_eq!(f["state"], "recheck_assigned");
    assert_eq!(f["recheck_team"], json!(other));
    let task = f["recheck_task_id"].as_str().unwrap().to_string();
    let members: Vec<(String,)> = sqlx::query_as(
        "SELECT inspector_id FROM task_members WHERE task_id = $1 ORDER BY position",
    )
    .bind(&task)
    .fetch_all(w.app.db().pool())
    .await
    .unwrap();
    assert_eq!(members.into_iter().map(|m| m.0).collect::<Vec<_>>(), other);
    // Twice: the recheck exists.
    let (s, body) = w.app.post(&path, &w.admin, json!({})).await;
    assert_error(s, &body, 409, "invalid_state");
    let (s, body) = w
        .app
        .post(
            &format!("/api/v1/followups/{}/recheck", Uuid::new_v4()),
            &w.reviewer,
            json!({}),
        )
        .await;
    assert_error(s, &body, 404, "not_found");
    // The sweep leaves it alone later.
    let r = ops::followup::create_due_rechecks(
        w.app.db(),
        &Ctx::system(),
        &sweep_settings(),
        d("2026-04-01"),
    )
    .await
    .unwrap();
    assert!(r.created.is_empty(), "{r:?}");
    assert_eq!(
        scalar(
            &w.app,
            "SELECT COUNT(*) FROM tasks WHERE followup_id = $1",
            &id
        )
        .await,
        1
    );
}

async fn calendar_years_put_and_get(app: TestApp) {
    let w = world(app).await;
    let (s, body) = w.app.get("/api/v1/calendar/years", &w.reviewer).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let years: Vec<i64> = body["years"]
        .as_array()
        .unwrap()
        .iter()
        .map(|y| y["year"].as_i64().unwrap())
        .collect();
    assert_eq!(years, [2024, 2025, 2026]);
    assert_eq!(body["years"][2]["origin"], "bundled");
    assert!(body["years"][2]["off"]["春节"]
        .as_array()
        .unwrap()
        .contains(&json!("2026-02-17")));
    let y2027 = json!({"off": {"元旦": ["2027-01-01"], "春节": ["2027-02-06", "2027-02-07", "2027-02-08",
        "2027-02-09", "2027-02-10", "2027-02-11", "2027-02-12", "2027-02-13"]},
        "workdays": ["2027-01-30", "2027-02-20"], "source": "测试通知"});
    // Bad input: 4xx, nothing stored.
    for (body, status, code) in [
        (
            json!({"off": {"元旦": ["2028-01-01"]}}),
            422,
            "invalid_calendar",
        ),
        (
            json!({"off": {"元旦": ["2027-02-30"]}}),
            422,
            "invalid_calendar",
        ),
        (
            json!({"off": {}, "workdays": ["2027-01-04"]}),
            422,
            "invalid_calendar",
        ),
        (
            json!({"off": {"x": ["2027-01-30"]}, "workdays": ["2027-01-30"]}),
            422,
            "invalid_calendar",
        ),
        (json!({"workdays": []}), 422, "invalid_body"),
        (json!({"off": {}, "extra": 1}), 422, "invalid_body"),
    ] {
        let (s, b) = w
            .app
            .call(
                reqwest::Method::PUT,
                "/api/v1/calendar/years/2027",
                Some(&w.admin),
                Some(body.clone()),
            )
            .await;
        assert_error(s, &b, status, code);
    }
    let (s, b) = w
        .app
        .call(
            reqwest::Method::PUT,
            "/api/v1/calendar/years/twenty",
            Some(&w.admin),
            Some(y2027.clone()),
        )
        .await;
    assert_eq!(s.as_u16(), 400, "{b}");
    let (s, b) = w
        .app
        .call(
            reqwest::Method::PUT,
            "/api/v1/calendar/years/12",
            Some(&w.admin),
            Some(json!({"off": {}})),
        )
        .await;
    assert_error(s, &b, 422, "invalid_calendar");
    let (s, b) = w
        .app
        .call(
            reqwest::Method::PUT,
            "/api/v1/calendar/years/2027",
            Some(&w.reviewer),
            Some(y2027.clone()),
        )
        .await;
    assert_error(s, &b, 403, "forbidden");
    assert_eq!(
        scalar(
            &w.app,
            "SELECT COUNT(*) FROM calendar_years WHERE created_by <> $1",
            ""
        )
        .await,
        0
    );

    let (s, b) = w
        .app
        .call(
            reqwest::Method::PUT,
            "/api/v1/calendar/years/2027",
            Some(&w.admin),
            Some(y2027.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["year"], 2027);
    assert_eq!(b["origin"], "added");
    assert_eq!(b["source"], "测试通知");
    assert_eq!(b["workdays"], json!(["2027-01-30", "2027-02-20"]));
    let (_, body) = w.app.get("/api/v1/calendar/years", &w.admin).await;
    assert_eq!(body["years"].as_array().unwrap().len(), 4);
    assert_eq!(body["years"][3]["origin"], "added");
    assert_eq!(
        audit_actions(&w.app, "calendar_year", "2027").await,
        ["calendar_year_set"]
    );
    // Deadlines now run into 2027: Monday 28 December 2026 + 10 working days skips 元旦 (Friday
    // 1 January 2027): 29, 30, 31 December, 4–8 January, 11, 12 → Tuesday 12 January.
    let t = &w.tasks[0];
    let iid = w
        .submit(&t.id, &t.establishment, &t.members, &["3.1"])
        .await;
    let id = approve_fixture(
        &w,
        &iid,
        ResultCode::BasicallyCompliant,
        &FollowupOrder::default(),
        "2026-12-28",
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(w.followup(&id).await["deadline"], "2027-01-12");
    // Inspectors and labs do not read the calendar here.
    let member = w.device(&t.members[0]).await;
    let (s, b) = w.app.get("/api/v1/calendar/years", &member).await;
    assert_error(s, &b, 403, "forbidden");
}

async fn plan_due_dates_get_warnings(app: TestApp) {
    let w = world(app).await;
    let ids: Vec<&str> = w.inspectors.iter().map(|(_, id)| id.as_str()).collect();
    // A far year with no holidays, so "today" never catches up with the test.
    let (s, b) = w
        .app
        .call(
            reqwest::Method::PUT,
            "/api/v1/calendar/years/2098",
            Some(&w.admin),
            Some(json!({"off": {"元旦": ["2098-01-01"]}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let create = |due: &'static str| {
        let w = &w;
        let ids = ids.clone();
        async move {
            let (s, p) = w
                .app
                .post(
                    "/api/v1/plans",
                    &w.admin,
                    json!({"name": "w", "round_title": "r", "theme": "t", "period_start": "2026-01-05",
                           "period_end": "2026-01-30", "due_date": due, "template_id": TEMPLATE,
                           "template_version": 1, "quotas": {"explicit": {"C": 1}}, "inspector_ids": ids,
                           "team_size": 2}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{p}");
            assert_eq!(p["due_date"], due, "the plan is stored as given");
            p["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| {
                    assert!(x["message"].as_str().is_some_and(|m| !m.is_empty()));
                    x["code"].as_str().unwrap().to_string()
                })
                .collect::<Vec<_>>()
        }
    };
    // Monday 6 January 2098: a working day in the future.
    assert!(create("2098-01-06").await.is_empty());
    // Saturday 4 January 2098; 元旦.
    assert_eq!(create("2098-01-04").await, ["due_date_not_working_day"]);
    assert_eq!(create("2098-01-01").await, ["due_date_not_working_day"]);
    // Tuesday 17 February 2026 (春节), long past by now.
    assert_eq!(
        create("2026-02-17").await,
        ["due_date_in_past", "due_date_not_working_day"]
    );
    // A year the calendar does not hold.
    assert_eq!(create("2099-03-31").await, ["calendar_year_missing"]);
}

/// The server's own sweep (`recheck_sweep_interval_secs`), on a server that runs it every
/// second.
mod background {
    use super::*;

    both_backends!(@spawn sweeping_every_second; the_background_sweep_creates_due_rechecks);

    /// A server whose recheck sweep runs every second.
    async fn sweeping_every_second(kind: crate::common::Kind) -> TestApp {
        TestApp::spawn_with(kind, |c| c.recheck_sweep_interval_secs = 1).await
    }

    async fn the_background_sweep_creates_due_rechecks(app: TestApp) {
        let w = world(app).await;
        // The sweep counts from the real date: make sure the calendar holds this year and the
        // next (the bundled data ends in 2026), so the recheck's due date can be computed.
        let this_year = chrono::Datelike::year(&chrono::Utc::now().date_naive());
        for year in [this_year, this_year + 1] {
            if year > 2026 {
                let (s, b) = w
                    .app
                    .call(
                        reqwest::Method::PUT,
                        &format!("/api/v1/calendar/years/{year}"),
                        Some(&w.admin),
                        Some(json!({"off": {}})),
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{b}");
            }
        }
        let t = &w.tasks[0];
        let iid = w
            .submit(&t.id, &t.establishment, &t.members, &["3.1"])
            .await;
        // Ordered on 2 March 2026: the deadline (16 March 2026) has passed.
        let id = approve_fixture(
            &w,
            &iid,
            ResultCode::BasicallyCompliant,
            &FollowupOrder::default(),
            "2026-03-02",
        )
        .await
        .unwrap()
        .unwrap();
        let mut state = Value::Null;
        for _ in 0..100 {
            state = w.followup(&id).await["state"].clone();
            if state == "recheck_assigned" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(state, "recheck_assigned", "the sweep did not run");
        // It keeps running without making a second task.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        assert_eq!(
            scalar(
                &w.app,
                "SELECT COUNT(*) FROM tasks WHERE followup_id = $1",
                &id
            )
            .await,
            1
        );
        let (actor,): (Option<String>,) = sqlx::query_as(
            "SELECT actor_id FROM audit_events WHERE record_type = 'followup' AND record_id = $1 \
         AND action = 'recheck_task_created'",
        )
        .bind(&id)
        .fetch_one(w.app.db().pool())
        .await
        .unwrap();
        assert_eq!(actor, None, "the system made it");
    }
}

/// What the recheck sweep warns about: a year inside the next 60 days that the calendar lacks
/// (2027 is not bundled), until an admin adds it.
async fn the_server_sees_a_missing_calendar_year_coming(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let missing = |from: &'static str, until: &'static str| {
        let db = app.db().clone();
        async move {
            ops::followup::missing_calendar_year(&db, d(from), d(until))
                .await
                .unwrap()
        }
    };
    assert_eq!(missing("2026-10-01", "2026-11-30").await, None);
    assert_eq!(missing("2026-12-01", "2027-01-30").await, Some(2027));
    let (s, b) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/calendar/years/2027",
            Some(&admin),
            Some(json!({"off": {"元旦": ["2027-01-01"]}, "source": "测试"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(missing("2026-12-01", "2027-01-30").await, None);
}
