//! Scenes for the reviewer's read side (tests/api/inspections.rs, tests/api/queues.rs): a plan
//! drawn over a few establishments, inspections submitted (and resubmitted) through the real
//! sync push, and decided through the real review use case:
//! - [`Scene::review`]: `POST /api/v1/inspections/{id}/review` with the reviewer's token, for
//!   decisions whose outcome does not depend on the date (return, reject, approve 符合);
//! - [`Scene::approve_on`]: the same use case (`ops::review::decide`, what the endpoint runs)
//!   with "today" set, for approvals that open a follow-up: its deadline is counted in working
//!   days from today, so a fixed today gives fixed (and, when wanted, overdue) deadlines and
//!   never runs past the calendar's years;
//! - [`Scene::schedule_recheck_on`]: a reviewer scheduling a follow-up's recheck task
//!   (`ops::followup::schedule_recheck`, what `POST /api/v1/followups/{id}/recheck` runs) with
//!   "today" set, so the task's due date is fixed.
//!
//! Only two things are still written with SQL ([`Scene::sql_photo_flags`],
//! [`Scene::sql_due_date`]): no use case writes them directly today (see each).

use chrono::NaiveDate;
use foodcheck::audit::{Actor, Ctx};
use foodcheck::auth::Role;
use foodcheck::followup::Settings;
use foodcheck::ops;
use foodcheck::review::ReviewRequest;
use reqwest::{Method, StatusCode};
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

    /// The inspection record a member's device pushes for `sub`.
    fn record(&self, plan: usize, task: usize, iid: &str, sub: &Submission<'_>) -> Value {
        let (task_id, est, members) = &self.plans[plan].tasks[task];
        let team: Vec<Value> = members
            .iter()
            .map(|n| json!({"user_id": self.user_id(n), "name": format!("Name of {n}"), "badge_no": format!("TJ-{n}")}))
            .collect();
        json!({"id": iid, "task_id": task_id, "establishment_id": est, "started_at": 1_710_000_000_000i64,
            "finished_at": 1_710_000_600_000i64, "lng": 117.2903, "lat": 39.7102, "gps_accuracy_m": 12.5, "crs": "gcj02",
            "team": serde_json::to_string(&team).unwrap(), "representative_name": "王店长",
            "representative_signed": !sub.refused, "representative_refused": sub.refused,
            "business_opinion": sub.business_opinion, "other_findings": null, "declared_result": sub.declared, "submitted": true})
    }

    /// The first member's device: its token and the cursor of a full pull.
    async fn device(&self, plan: usize, task: usize) -> (String, i64) {
        let t = self.token(&self.plans[plan].tasks[task].2[0]).await;
        let (s, p) = self
            .app
            .get(
                "/api/v1/sync?last_pulled_at=null&schema_version=2&migration=null",
                &t,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        (t, p["timestamp"].as_i64().unwrap())
    }

    /// Submits an inspection of the task through the real sync push (the first member's
    /// device); returns the inspection id. The push sets `review_state = 'submitted'`, the
    /// submission time the queues order by, and `declared_result_differs` when `declared`
    /// is not the computed result.
    pub async fn submit(&self, plan: usize, task: usize, sub: Submission<'_>) -> String {
        let (t, cursor) = self.device(plan, task).await;
        let iid = Uuid::new_v4().to_string();
        let rec = self.record(plan, task, &iid, &sub);
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

    /// After a return: the team's device pulls, fixes the record (`other_findings`) and
    /// resubmits it through the sync push (the next review round). `sub` is what was submitted.
    pub async fn resubmit(&self, plan: usize, task: usize, iid: &str, sub: Submission<'_>) {
        let (t, cursor) = self.device(plan, task).await;
        let mut rec = self.record(plan, task, iid, &sub);
        rec["other_findings"] = json!("已按审核意见补充");
        let (s, r) = self
            .app
            .post(
                &format!("/api/v1/sync?last_pulled_at={cursor}"),
                &t,
                json!({"changes": {"inspections": {"updated": [rec]}}}),
            )
            .await;
        assert_eq!((s, &r), (StatusCode::OK, &json!({})), "resubmission: {r}");
    }

    /// A reviewer's decision over HTTP (`POST /api/v1/inspections/{id}/review`); asserts 200
    /// and returns the answer.
    pub async fn review(&self, inspection: &str, body: Value) -> Value {
        let (s, v) = self
            .app
            .post(
                &format!("/api/v1/inspections/{inspection}/review"),
                &self.reviewer,
                body,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "review of {inspection}: {v}");
        v
    }

    fn reviewer_ctx(&self) -> Ctx {
        Ctx::new(Actor::user(&self.reviewer_id, Role::Reviewer, None), None)
    }

    /// An approval (the endpoint's body, `decision` included) through the review use case
    /// with today set to `today` (`YYYY-MM-DD`): the follow-up it opens is ordered that day.
    /// Returns the follow-up's id, if one opened.
    pub async fn approve_on(&self, inspection: &str, body: Value, today: &str) -> Option<String> {
        let req: ReviewRequest = serde_json::from_value(body).unwrap();
        let settings = Settings {
            today: Some(day(today)),
            ..Settings::default()
        };
        ops::review::decide(
            self.app.db(),
            &self.reviewer_ctx(),
            inspection,
            &req,
            &settings,
        )
        .await
        .unwrap()
        .followup_id
    }

    /// The reviewer schedules the follow-up's recheck task (复查) with today set to `today`
    /// (the task is due `recheck_due_working_days` working days later) for the follow-up's
    /// recheck team. Returns the task's id.
    pub async fn schedule_recheck_on(&self, followup: &str, today: &str) -> String {
        let settings = Settings {
            today: Some(day(today)),
            ..Settings::default()
        };
        ops::followup::schedule_recheck(
            self.app.db(),
            &self.reviewer_ctx(),
            &settings,
            followup,
            None,
        )
        .await
        .unwrap()
        .recheck_task_id
        .expect("the recheck task")
    }

    /// An admin adds a working-day calendar year (`PUT /api/v1/calendar/years/{year}`): weekends
    /// and 元旦 off. For dates far ahead, beyond the bundled years.
    pub async fn add_calendar_year(&self, year: i32) {
        let (s, b) = self
            .app
            .call(
                Method::PUT,
                &format!("/api/v1/calendar/years/{year}"),
                Some(&self.admin),
                Some(json!({"off": {"元旦": [format!("{year}-01-01")]}, "source": "测试"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    async fn exec(&self, sql: &str, binds: &[&str]) {
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(*b);
        }
        q.execute(self.app.db().pool()).await.unwrap();
    }

    /// TEST-ONLY SQL: the flags of the inspection's photos, as the photo worker writes them.
    /// They come from the EXIF of the uploaded bytes, which these scenes do not upload (photo
    /// records only, no worker); no use case sets them otherwise. The inspection's own flags
    /// need no SQL: the submission sets `declared_result_differs`, the geofence its own.
    pub async fn sql_photo_flags(&self, inspection: &str, flags: &str) {
        self.exec(
            "UPDATE photos SET flags = $1 WHERE inspection_id = $2",
            &[flags, inspection],
        )
        .await;
    }

    /// TEST-ONLY SQL: a task's due date (to make it overdue). Tasks take their plan's due
    /// date when drawn; no use case moves one task's due date.
    pub async fn sql_due_date(&self, task: &str, due: &str) {
        self.exec("UPDATE tasks SET due_date = $1 WHERE id = $2", &[due, task])
            .await;
    }
}

/// `YYYY-MM-DD`.
pub fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}
