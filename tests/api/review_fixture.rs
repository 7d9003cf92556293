//! Scenes for the reviewer's read side (tests/api/inspections.rs, tests/api/queues.rs): a plan
//! drawn over a few establishments, inspections submitted through the real sync push.
//!
//! TEST-ONLY SQL FIXTURE (`Sql*` functions below): review states, review rows and follow-ups
//! are written with SQL directly until the review decision endpoint
//! (`POST /api/v1/inspections/{id}/review`), the submission's `review_state = 'submitted'` and
//! the follow-up work merge. At the merge, switch each of them to the real endpoints; nothing
//! else in the tests writes SQL for review data.

use foodcheck::auth::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::TestApp;

pub const TEMPLATE: &str = "00000000-0000-4000-8000-000000002016";
/// Key and general items of the 2016 table.
pub const KEY: [&str; 7] = ["3.1", "3.2", "4.1", "4.2", "6.1", "8.4", "9.3"];
pub const GENERAL: [&str; 7] = ["1.1", "2.1", "2.2", "2.3", "4.3", "4.4", "5.1"];

pub struct Scene {
    pub app: TestApp,
    pub admin: String,
    pub reviewer: String,
    pub reviewer_id: String,
    /// (username, user id) of the inspectors.
    pub inspectors: Vec<(String, String)>,
    pub plans: Vec<Plan>,
}

pub struct Plan {
    pub id: String,
    /// (task id, establishment id, member usernames).
    pub tasks: Vec<(String, String, Vec<String>)>,
}

/// What a submission pushes.
pub struct Submission<'a> {
    pub failed: &'a [&'a str],
    pub declared: &'a str,
    pub business_opinion: Option<&'a str>,
    pub refused: bool,
    /// A photo record (no bytes) for this item.
    pub photo_item: Option<&'a str>,
    pub note: Option<&'a str>,
}

impl Default for Submission<'_> {
    fn default() -> Self {
        Submission {
            failed: &[],
            declared: "compliant",
            business_opinion: None,
            refused: false,
            photo_item: None,
            note: None,
        }
    }
}

/// `establishments` registered in `towns` (round robin) with the given sign names, 4
/// inspectors, and one plan drawn over all of them.
pub async fn scene(app: TestApp, signs: &[&str], towns: &[&str]) -> Scene {
    let admin = app.token_for("admin", Role::Admin).await;
    let reviewer_id = app.user("reviewer", Role::Reviewer).await;
    let reviewer = app.login_full("reviewer", "desk").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut inspectors = Vec::new();
    for i in 0..4 {
        let name = format!("insp{i}");
        let id = app.user(&name, Role::Inspector).await;
        inspectors.push((name, id));
    }
    for (i, sign) in signs.iter().enumerate() {
        let (s, e) = app
            .post(
                "/api/v1/establishments",
                &admin,
                json!({"sign_name": sign, "licensed_name": format!("{sign}餐饮有限公司"), "license_no": format!("JY21201150{i:06}"),
                       "category": "small_restaurant", "address": format!("周良街道{i}号"), "town": towns[i % towns.len()], "risk_grade": "C",
                       "contact_phone": "13800138000", "location": {"lng": 117.29, "lat": 39.71, "crs": "gcj02"}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
    }
    let mut scene = Scene {
        app,
        admin,
        reviewer,
        reviewer_id,
        inspectors,
        plans: Vec::new(),
    };
    scene.draw_plan("2024年第1期", signs.len()).await;
    scene
}

impl Scene {
    /// Another plan over every establishment (so each has a second task).
    pub async fn draw_plan(&mut self, round_title: &str, n: usize) -> usize {
        let ids: Vec<&str> = self.inspectors.iter().map(|(_, id)| id.as_str()).collect();
        let (s, plan) = self
            .app
            .post(
                "/api/v1/plans",
                &self.admin,
                json!({"name": format!("随机查餐厅 {round_title}"), "round_title": round_title, "theme": "餐饮具清洗消毒",
                       "period_start": "2024-03-01", "period_end": "2024-03-31", "due_date": "2099-03-31",
                       "template_id": TEMPLATE, "template_version": 1, "quotas": {"explicit": {"C": n}},
                       "inspector_ids": ids, "team_size": 2}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{plan}");
        let plan_id = plan["id"].as_str().unwrap().to_string();
        let (s, draw) = self
            .app
            .post(
                &format!("/api/v1/plans/{plan_id}/draw"),
                &self.admin,
                json!({"seed": format!("seed-{round_title}")}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{draw}");
        let (_, tasks) = self
            .app
            .get(&format!("/api/v1/tasks?plan_id={plan_id}"), &self.admin)
            .await;
        let tasks = tasks["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let members = t["team"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| self.username(m["user_id"].as_str().unwrap()))
                    .collect();
                (
                    t["id"].as_str().unwrap().to_string(),
                    t["establishment"]["id"].as_str().unwrap().to_string(),
                    members,
                )
            })
            .collect();
        self.plans.push(Plan { id: plan_id, tasks });
        self.plans.len() - 1
    }

    pub fn username(&self, user_id: &str) -> String {
        self.inspectors
            .iter()
            .find(|(_, id)| id == user_id)
            .unwrap()
            .0
            .clone()
    }

    pub fn user_id(&self, username: &str) -> String {
        self.inspectors
            .iter()
            .find(|(n, _)| n == username)
            .unwrap()
            .1
            .clone()
    }

    /// An inspector on no team of this task.
    pub fn outsider(&self, plan: usize, task: usize) -> String {
        let members = &self.plans[plan].tasks[task].2;
        self.inspectors
            .iter()
            .find(|(n, _)| !members.contains(n))
            .unwrap()
            .0
            .clone()
    }

    pub async fn token(&self, username: &str) -> String {
        self.app.login_full(username, "phone").await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Submits an inspection of the task through the real sync push (the first member's
    /// device); returns the inspection id.
    pub async fn submit(&self, plan: usize, task: usize, sub: Submission<'_>) -> String {
        let (task_id, est, members) = &self.plans[plan].tasks[task];
        let t = self.token(&members[0]).await;
        let (s, p) = self
            .app
            .get(
                "/api/v1/sync?last_pulled_at=null&schema_version=2&migration=null",
                &t,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        let cursor = p["timestamp"].as_i64().unwrap();
        let iid = Uuid::new_v4().to_string();
        let team: Vec<Value> = members
            .iter()
            .map(|n| json!({"user_id": self.user_id(n), "name": format!("Name of {n}"), "badge_no": format!("TJ-{n}")}))
            .collect();
        let rec = json!({"id": iid, "task_id": task_id, "establishment_id": est, "started_at": 1_710_000_000_000i64,
            "finished_at": 1_710_000_600_000i64, "lng": 117.2903, "lat": 39.7102, "gps_accuracy_m": 12.5, "crs": "gcj02",
            "team": serde_json::to_string(&team).unwrap(), "representative_name": "王店长",
            "representative_signed": !sub.refused, "representative_refused": sub.refused,
            "business_opinion": sub.business_opinion, "other_findings": null, "declared_result": sub.declared, "submitted": true});
        let answers: Vec<Value> = KEY
            .iter()
            .chain(GENERAL.iter())
            .map(|c| {
                let status = if sub.failed.contains(c) { "fail" } else { "pass" };
                let note = if sub.failed.contains(c) { sub.note } else { None };
                json!({"id": Uuid::new_v4(), "inspection_id": iid, "item_code": c, "status": status, "note": note})
            })
            .collect();
        let mut changes =
            json!({"inspections": {"created": [rec]}, "answers": {"created": answers}});
        if let Some(item) = sub.photo_item {
            changes["photos"] = json!({"created": [{"id": Uuid::new_v4(), "inspection_id": iid, "item_code": item,
                "sha256": "ab".repeat(32), "byte_size": 1000, "taken_at": 1_710_000_100_000i64}]});
        }
        let (s, r) = self
            .app
            .post(
                &format!("/api/v1/sync?last_pulled_at={cursor}"),
                &t,
                json!({"changes": changes}),
            )
            .await;
        assert_eq!((s, &r), (StatusCode::OK, &json!({})), "{r}");
        iid
    }

    async fn exec(&self, sql: &str, binds: &[Bind<'_>]) {
        let mut q = sqlx::query(sql);
        for b in binds {
            q = match b {
                Bind::T(s) => q.bind(*s),
                Bind::O(s) => q.bind(*s),
                Bind::I(n) => q.bind(*n),
            };
        }
        q.execute(self.app.db().pool()).await.unwrap();
    }

    /// TEST-ONLY SQL: the review state the decision endpoint (or the submission) will set,
    /// with the submission time (Unix ms) that orders the queues.
    pub async fn sql_review_state(&self, inspection: &str, state: &str, submitted_at: i64) {
        self.exec(
            "UPDATE inspections SET review_state = $1, review_round = 1, submitted_at = $2 WHERE id = $3",
            &[Bind::T(state), Bind::I(submitted_at), Bind::T(inspection)],
        )
        .await;
    }

    /// TEST-ONLY SQL: a reviewer's override with its reason.
    pub async fn sql_override(&self, inspection: &str, result: &str, reason: &str) {
        self.exec(
            "UPDATE inspections SET override_result = $1, override_reason = $2, reviewed_by = $3, reviewed_at = $4 WHERE id = $5",
            &[Bind::T(result), Bind::T(reason), Bind::T(&self.reviewer_id), Bind::I(1_710_100_000_000), Bind::T(inspection)],
        )
        .await;
    }

    /// TEST-ONLY SQL: one row of the review history.
    #[allow(clippy::too_many_arguments)]
    pub async fn sql_review_row(
        &self,
        inspection: &str,
        round: i64,
        decision: &str,
        comment: Option<&str>,
        item_comments: Value,
        internal_note: Option<&str>,
        decided_at: i64,
    ) {
        self.exec(
            "INSERT INTO reviews (id, inspection_id, round, decision, comment, item_comments, internal_note, reviewer_id, \
             decided_at, created_seq, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, 1)",
            &[
                Bind::T(&Uuid::new_v4().to_string()),
                Bind::T(inspection),
                Bind::I(round),
                Bind::T(decision),
                Bind::O(comment),
                Bind::T(&item_comments.to_string()),
                Bind::O(internal_note),
                Bind::T(&self.reviewer_id),
                Bind::I(decided_at),
            ],
        )
        .await;
    }

    /// TEST-ONLY SQL: a follow-up of an inspection; returns its id.
    pub async fn sql_followup(
        &self,
        plan: usize,
        task: usize,
        inspection: &str,
        state: &str,
        deadline: &str,
    ) -> String {
        let id = Uuid::new_v4().to_string();
        let est = &self.plans[plan].tasks[task].1;
        self.exec(
            "INSERT INTO followups (id, inspection_id, establishment_id, plan_id, origin_result, state, order_text, ordered_on, \
             period_working_days, deadline, failed_items, stop_operating, case_opened, recheck_team, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'non_compliant', $5, '整改', '2024-03-10', 10, $6, '[]', 1, 0, '[]', $7, 1, 1)",
            &[
                Bind::T(&id),
                Bind::T(inspection),
                Bind::T(est),
                Bind::T(&self.plans[plan].id),
                Bind::T(state),
                Bind::T(deadline),
                Bind::T(&self.reviewer_id),
            ],
        )
        .await;
        id
    }

    /// TEST-ONLY SQL: the recheck task (复查) of a follow-up, for the given team, as the
    /// follow-up work will create it.
    pub async fn sql_recheck_task(
        &self,
        plan: usize,
        task: usize,
        followup: &str,
        due: &str,
        members: &[&str],
    ) -> String {
        let id = Uuid::new_v4().to_string();
        let est = &self.plans[plan].tasks[task].1;
        self.exec(
            "INSERT INTO tasks (id, kind, plan_id, draw_id, followup_id, establishment_id, template_id, template_version, due_date, \
             state, must_check_items, draw_order, created_at, updated_at) \
             VALUES ($1, 'recheck', $2, NULL, $3, $4, $5, 1, $6, 'assigned', '[]', 0, 1, 1)",
            &[Bind::T(&id), Bind::T(&self.plans[plan].id), Bind::T(followup), Bind::T(est), Bind::T(TEMPLATE), Bind::T(due)],
        )
        .await;
        for (pos, m) in members.iter().enumerate() {
            self.exec(
                "INSERT INTO task_members (task_id, inspector_id, position) VALUES ($1, $2, $3)",
                &[Bind::T(&id), Bind::T(&self.user_id(m)), Bind::I(pos as i64)],
            )
            .await;
        }
        self.exec(
            "UPDATE followups SET state = 'recheck_assigned', recheck_task_id = $1 WHERE id = $2",
            &[Bind::T(&id), Bind::T(followup)],
        )
        .await;
        id
    }

    /// TEST-ONLY SQL: flags as the photo worker and the submission write them.
    pub async fn sql_flags(
        &self,
        inspection: &str,
        inspection_flags: Option<&str>,
        photo_flags: Option<&str>,
    ) {
        if let Some(f) = inspection_flags {
            self.exec(
                "UPDATE inspections SET server_flags = $1 WHERE id = $2",
                &[Bind::T(f), Bind::T(inspection)],
            )
            .await;
        }
        if let Some(f) = photo_flags {
            self.exec(
                "UPDATE photos SET flags = $1 WHERE inspection_id = $2",
                &[Bind::T(f), Bind::T(inspection)],
            )
            .await;
        }
    }

    /// TEST-ONLY SQL: a task's due date (to make it overdue).
    pub async fn sql_due_date(&self, task: &str, due: &str) {
        self.exec(
            "UPDATE tasks SET due_date = $1 WHERE id = $2",
            &[Bind::T(due), Bind::T(task)],
        )
        .await;
    }
}

enum Bind<'a> {
    T(&'a str),
    O(Option<&'a str>),
    I(i64),
}
