//! 食品安全抽检 plans and tasks over HTTP: a sampling plan is drawn with the inspection plans'
//! draw (the same verify route, CLI and public record, which says it is a sampling plan; a
//! tampered record fails), its tasks carry the batches and a working-day due date, teams of
//! samplers are refused with one person or a declared conflict (回避), a sampler sees only their
//! own tasks, and a sample is accepted against the sampler's task and refused against another
//! team's. The per-sampler change feed the sync layer will pull is checked at the store.

use foodcheck::auth::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{assert_error, cover_this_and_next_year, TestApp};

both_backends!(
    plan_draw_verify_tasks_teams_and_samples,
    a_samplers_change_feed_follows_team_changes,
);

const CATEGORIES: &str = "分类编码,级别,上级编码,分类名称,微生物\n\
    01,1,,粮食加工品,\n\
    0101,2,01,小麦粉,否\n\
    010101,3,0101,通用小麦粉,否\n\
    010102,3,0101,专用小麦粉,否\n";

const TOWN: &str = "抽检街道";

struct World {
    app: TestApp,
    admin: String,
    reviewer: String,
    /// Samplers (inspector accounts): tokens and ids.
    s1: String,
    s1_id: String,
    s2: String,
    s2_id: String,
    s3: String,
    s3_id: String,
    lab: String,
    lab_id: String,
}

async fn login(app: &TestApp, username: &str) -> String {
    app.login_full(username, "phone").await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn world(app: TestApp) -> World {
    app.user("admin", Role::Admin).await;
    let admin = login(&app, "admin").await;
    let reviewer = app.token_for("reviewer", Role::Reviewer).await;
    let s1_id = app.user("sampler1", Role::Inspector).await;
    let s2_id = app.user("sampler2", Role::Inspector).await;
    let s3_id = app.user("sampler3", Role::Inspector).await;
    let lab_user = app.user("lab-qjy", Role::Lab).await;
    cover_this_and_next_year(&app, &admin).await;
    let (s, lab) = app
        .post(
            "/api/v1/labs",
            &admin,
            json!({"name": "区检验中心", "code": "QJY"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{lab}");
    let lab_id = lab["id"].as_str().unwrap().to_string();
    let (s, v) = app
        .put(
            &format!("/api/v1/users/{lab_user}/lab"),
            &admin,
            json!({"lab_id": lab_id}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let res = app
        .client
        .post(app.url("/api/v1/food-categories/import"))
        .bearer_auth(&admin)
        .header("content-type", "application/octet-stream")
        .body(CATEGORIES.as_bytes().to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Five candidates in the plan's town (grade B), one elsewhere.
    for i in 0..6 {
        let town = if i < 5 { TOWN } else { "别的街道" };
        let (s, e) = app
            .post(
                "/api/v1/establishments",
                &admin,
                json!({"sign_name": format!("粮油店{i}"), "licensed_name": format!("天津市粮油商行{i}"),
                       "license_no": format!("JY2120115000010{i}"), "category": "food_sales",
                       "address": format!("抽检路{i}号"), "town": town, "risk_grade": "B"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
    }
    World {
        s1: login(&app, "sampler1").await,
        s2: login(&app, "sampler2").await,
        s3: login(&app, "sampler3").await,
        lab: login(&app, "lab-qjy").await,
        app,
        admin,
        reviewer,
        s1_id,
        s2_id,
        s3_id,
        lab_id,
    }
}

impl World {
    fn plan_body(&self, premises: u32) -> Value {
        json!({
            "title": "2026年流通环节小麦粉监督抽检",
            "purpose": "supervision",
            "stage": "circulation",
            "period_start": "2026-01-01",
            "period_end": "2027-12-31",
            "lab_id": self.lab_id,
            "batches": [{"category_code": "010101", "batches": 4}],
            "filter": {"towns": [TOWN]},
            "quotas": {"explicit": {"B": premises}}
        })
    }

    /// A complete 抽样单 at `premises` by `samplers`, against `task` (if any).
    fn sample(&self, premises: &str, samplers: [&str; 2], task: Option<&str>) -> Value {
        let mut form = json!({
            "task_source": "2026年流通环节小麦粉监督抽检", "purpose": "supervision", "stage": "circulation",
            "food_category_1": "粮食加工品", "food_category_2": "小麦粉", "food_category_3": "通用小麦粉",
            "food_category_4": "/", "premises_name": "粮油店", "premises_address": "抽检路",
            "premises_credit_code": "/", "premises_licence_no": "/", "premises_legal_representative": "/",
            "premises_contact": "/", "producer_name": "/", "producer_address": "/", "producer_sc_licence": "/",
            "sample_name": "小麦粉", "sample_brand": "/", "sample_specification": "/",
            "sample_production_date": "/", "sample_batch": "/", "sample_shelf_life": "/",
            "sample_standard": "/", "sample_price": "/"});
        // Two halves: one json! of the whole form passes the macro recursion limit.
        let rest = json!({"sample_imported": false, "sample_storage": "常温",
            "sampling_method": "non_aseptic", "sampling_base": 10.0, "sampling_base_unit": "袋",
            "sample_quantity": 2.0, "sample_quantity_unit": "袋", "backup_quantity": 1.0,
            "backup_quantity_unit": "袋", "sampled_at": chrono::Utc::now().timestamp_millis(),
            "lng": 117.3, "lat": 39.7, "crs": "wgs84", "premises_opinion": "no_objection",
            "sampler_1": samplers[0], "sampler_2": samplers[1]});
        form.as_object_mut()
            .unwrap()
            .extend(rest.as_object().unwrap().clone());
        let mut body = json!({"id": Uuid::new_v4(), "establishment_id": premises,
            "lab_id": self.lab_id, "category_code": "010101", "form": form});
        if let Some(t) = task {
            body["task_id"] = json!(t);
        }
        body
    }

    async fn team(&self, task: &str, ids: &[&str]) -> (StatusCode, Value) {
        self.app
            .put(
                &format!("/api/v1/sampling-tasks/{task}/team"),
                &self.reviewer,
                json!({"sampler_ids": ids}),
            )
            .await
    }

    async fn drawn(&self, plan: &str) -> Value {
        let (s, d) = self
            .app
            .post(
                &format!("/api/v1/sampling-plans/{plan}/draw"),
                &self.reviewer,
                json!({"seed": "2026-12 抽检 公开摇号 07 19 23"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{d}");
        d
    }

    async fn plan(&self, premises: u32) -> String {
        let (s, p) = self
            .app
            .post(
                "/api/v1/sampling-plans",
                &self.reviewer,
                self.plan_body(premises),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        p["id"].as_str().unwrap().to_string()
    }
}

fn ids_of(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

async fn plan_draw_verify_tasks_teams_and_samples(app: TestApp) {
    let w = world(app).await;
    let app = &w.app;

    // A plan: checked, then created by a reviewer; an inspector may not.
    let mut bad = w.plan_body(5);
    bad["batches"] =
        json!([{"category_code": "010101", "batches": 4}, {"category_code": "99", "batches": 1}]);
    bad["quotas"] = json!({"explicit": {"B": 6}});
    let (s, v) = app.post("/api/v1/sampling-plans", &w.reviewer, bad).await;
    assert_error(s, &v, 422, "validation_failed");
    let (s, v) = app
        .post("/api/v1/sampling-plans", &w.reviewer, w.plan_body(5))
        .await;
    assert_error(s, &v, 422, "validation_failed");
    assert_eq!(
        v["error"]["details"][0]["code"], "more_premises_than_batches",
        "{v}"
    );
    let (s, v) = app
        .post("/api/v1/sampling-plans", &w.s1, w.plan_body(3))
        .await;
    assert_error(s, &v, 403, "forbidden");
    let plan = w.plan(3).await;
    let (s, v) = app
        .get(&format!("/api/v1/sampling-plans/{plan}"), &w.admin)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["plan"]["kind"], "sampling");
    assert_eq!(v["plan"]["status"], "draft");
    // It is not an inspection plan.
    let (s, _) = app.get(&format!("/api/v1/plans/{plan}"), &w.admin).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The draw: three of the five candidates in the town, one task each, the 4 batches dealt
    // 2-1-1 in draw order, due 15 working days after today on the calendar.
    let d = w.drawn(&plan).await;
    assert_eq!(d["draw"]["pool_size"], 5, "{d}");
    assert_eq!(d["draw"]["algorithm"], "foodcheck-draw-v1");
    let tasks = d["tasks"].as_array().unwrap().clone();
    assert_eq!(tasks.len(), 3, "{d}");
    let shares: Vec<u64> = tasks
        .iter()
        .map(|t| t["batches"][0]["batches"].as_u64().unwrap())
        .collect();
    assert_eq!(shares, [2, 1, 1]);
    let mut conn = app.db().acquire().await.unwrap();
    let calendar = foodcheck::ops::followup::effective_calendar(&mut conn)
        .await
        .unwrap();
    drop(conn);
    for (i, t) in tasks.iter().enumerate() {
        assert_eq!(t["state"], "unassigned");
        assert_eq!(t["draw_order"], i as i64 + 1);
        assert_eq!(t["lab_id"], w.lab_id.as_str());
        assert_eq!(t["due"]["rule"], "working_days_after_draw");
        assert_eq!(t["due"]["period_days"], 15);
        let start =
            chrono::NaiveDate::parse_from_str(t["due"]["start_on"].as_str().unwrap(), "%Y-%m-%d")
                .unwrap();
        let due = calendar.add_working_days(start, 15).unwrap();
        assert_eq!(t["due"]["date"], due.to_string(), "{t}");
        assert_eq!(t["team"], json!([]));
        assert_ne!(t["premises"]["town"], "别的街道");
    }
    let (s, v) = app
        .post(
            &format!("/api/v1/sampling-plans/{plan}/draw"),
            &w.reviewer,
            json!({"seed": "again"}),
        )
        .await;
    assert_error(s, &v, 409, "already_drawn");

    // Verified by the plans' own route and by the same code the CLI runs, on the internal and
    // the public record; the public record says it is a sampling plan; tampering is seen.
    let (s, v) = app
        .post(
            &format!("/api/v1/plans/{plan}/draw/verify"),
            &w.admin,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["matches"], true, "{v}");
    let (s, record) = app
        .get(&format!("/api/v1/plans/{plan}/draw/record"), &w.admin)
        .await;
    assert_eq!(s, StatusCode::OK, "{record}");
    assert_eq!(record["input"]["inspectors"], json!([]));
    assert_eq!(record["outcome"]["teams"], json!([]));
    let (_, diffs) = foodcheck::cli::verify_record_text(&record.to_string()).unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");
    let mut tampered = record.clone();
    let first = tampered["outcome"]["drawn"][0].clone();
    tampered["outcome"]["drawn"][0] = tampered["outcome"]["drawn"][1].clone();
    tampered["outcome"]["drawn"][1] = first;
    let (_, diffs) = foodcheck::cli::verify_record_text(&tampered.to_string()).unwrap();
    assert!(!diffs.is_empty());
    let res = app
        .client
        .get(app.url(&format!("/public/v1/plans/{plan}/draw/record")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let public: Value = res.json().await.unwrap();
    assert_eq!(public["plan_kind"], "sampling", "{public}");
    let (_, diffs) = foodcheck::cli::verify_record_text(&public.to_string()).unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");
    let mut tampered = public.clone();
    tampered["pool"][0]["grade"] = json!("D");
    let (_, diffs) = foodcheck::cli::verify_record_text(&tampered.to_string()).unwrap();
    assert!(!diffs.is_empty());
    // The CLI itself, from the database.
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_foodcheck"));
    c.env_remove("RUST_LOG");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("FOODCHECK_") {
            c.env_remove(k);
        }
    }
    let run = c
        .args(["--data-dir", &app.dir.path().to_string_lossy()])
        .args(["--database-url", &app.state.config.database_url()])
        .args(["draw", "verify", "--plan", &plan])
        .output()
        .await
        .unwrap();
    assert!(
        run.status.success(),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    // The public draw and its page say it is a sampling plan, and name no sampler.
    let res = app
        .client
        .get(app.url(&format!("/public/v1/plans/{plan}/draw")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let pd: Value = res.json().await.unwrap();
    assert_eq!(pd["plan_kind"], "sampling");
    assert_eq!(pd["drawn"].as_array().unwrap().len(), 3);
    let page = app
        .client
        .get(app.url(&format!("/public/plans/{plan}/draw")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("食品安全抽检 随机抽取结果"), "{page}");
    assert!(page.contains("data-kind=\"sampling\""));

    // Teams: one person is refused, so is a sampler with a declared conflict at the premises.
    let (a, b) = (
        tasks[0]["id"].as_str().unwrap().to_string(),
        tasks[1]["id"].as_str().unwrap().to_string(),
    );
    let premises_a = tasks[0]["premises"]["id"].as_str().unwrap().to_string();
    let premises_b = tasks[1]["premises"]["id"].as_str().unwrap().to_string();
    let (s, v) = app
        .post(
            "/api/v1/conflicts",
            &w.admin,
            json!({"inspector_id": w.s3_id, "establishment_id": premises_a, "reason": "亲属关系"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = w.team(&a, &[&w.s1_id]).await;
    assert_error(s, &v, 422, "team_too_small");
    let (s, v) = w.team(&a, &[&w.s1_id, &w.s1_id]).await;
    assert_error(s, &v, 422, "team_too_small");
    let (s, v) = w.team(&a, &[&w.s1_id, &w.s3_id]).await;
    assert_error(s, &v, 422, "sampler_conflict");
    let (s, v) = w.team(&a, &[&w.s1_id, "not-an-account"]).await;
    assert_error(s, &v, 422, "sampler_not_active");
    let (s, v) = app
        .put(
            &format!("/api/v1/sampling-tasks/{a}/team"),
            &w.s1,
            json!({"sampler_ids": [w.s1_id, w.s2_id]}),
        )
        .await;
    assert_error(s, &v, 403, "forbidden");
    let (s, v) = w.team(&a, &[&w.s1_id, &w.s2_id]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "assigned");
    assert_eq!(v["team"][0]["user_id"], w.s1_id.as_str());
    assert_eq!(v["team"][1]["user_id"], w.s2_id.as_str());
    let (s, v) = w.team(&a, &[&w.s1_id, &w.s2_id]).await;
    assert_error(s, &v, 422, "team_unchanged");
    let (s, v) = w.team(&b, &[&w.s2_id, &w.s3_id]).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Each sampler sees their own tasks only; another team's task is answered as missing.
    let mine = |token: String| async move {
        let (s, v) = app.get("/api/v1/me/sampling-tasks", &token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        ids_of(&v)
    };
    assert_eq!(mine(w.s1.clone()).await, vec![a.clone()]);
    assert_eq!(mine(w.s3.clone()).await, vec![b.clone()]);
    let mut both = mine(w.s2.clone()).await;
    both.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(both, want);
    let (s, v) = app.get(&format!("/api/v1/sampling-tasks/{b}"), &w.s1).await;
    assert_error(s, &v, 404, "not_found");
    let (s, ghost) = app
        .get(&format!("/api/v1/sampling-tasks/{}", Uuid::new_v4()), &w.s1)
        .await;
    assert_eq!(v, ghost, "a hidden task must look like a missing one");
    let (s2, v) = app.get(&format!("/api/v1/sampling-tasks/{a}"), &w.s1).await;
    assert_eq!((s, s2), (StatusCode::NOT_FOUND, StatusCode::OK), "{v}");
    let (s, v) = app.get("/api/v1/me/sampling-tasks", &w.lab).await;
    assert_error(s, &v, 403, "forbidden");
    let (s, v) = app.get("/api/v1/sampling-tasks", &w.s1).await;
    assert_error(s, &v, 403, "forbidden");
    let (s, v) = app
        .get(
            &format!("/api/v1/sampling-tasks?plan_id={plan}&state=assigned"),
            &w.reviewer,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total_count"], 2, "{v}");

    // Samples against tasks: another team's task is unknown; a co-sampler off the team, other
    // premises or another purpose are refused by field; the sampler's own task is accepted.
    let (s, v) = app
        .post(
            "/api/v1/samples",
            &w.s1,
            w.sample(&premises_b, [&w.s1_id, &w.s2_id], Some(&b)),
        )
        .await;
    assert_error(s, &v, 422, "unknown_task");
    let (s, v) = app
        .post(
            "/api/v1/samples",
            &w.s1,
            w.sample(
                &premises_a,
                [&w.s1_id, &w.s2_id],
                Some(&Uuid::new_v4().to_string()),
            ),
        )
        .await;
    assert_error(s, &v, 422, "unknown_task");
    let (s, v) = app
        .post(
            "/api/v1/samples",
            &w.s2,
            w.sample(&premises_b, [&w.s2_id, &w.s1_id], Some(&b)),
        )
        .await;
    assert_error(s, &v, 422, "validation_failed");
    assert_eq!(v["error"]["details"][0]["field"], "sampler_2", "{v}");
    assert_eq!(
        v["error"]["details"][0]["code"], "sampler_not_on_team",
        "{v}"
    );
    let (s, v) = app
        .post(
            "/api/v1/samples",
            &w.s1,
            w.sample(&premises_b, [&w.s1_id, &w.s2_id], Some(&a)),
        )
        .await;
    assert_error(s, &v, 422, "validation_failed");
    assert_eq!(v["error"]["details"][0]["code"], "not_task_premises", "{v}");
    let mut other_purpose = w.sample(&premises_a, [&w.s1_id, &w.s2_id], Some(&a));
    other_purpose["form"]["purpose"] = json!("risk_monitoring");
    let (s, v) = app.post("/api/v1/samples", &w.s1, other_purpose).await;
    assert_error(s, &v, 422, "validation_failed");
    assert_eq!(v["error"]["details"][0]["code"], "not_task_purpose", "{v}");
    // A category outside the task's batches (专用小麦粉; the task's is 通用小麦粉): refused, the
    // category named.
    let mut other_category = w.sample(&premises_a, [&w.s1_id, &w.s2_id], Some(&a));
    other_category["category_code"] = json!("010102");
    other_category["form"]["food_category_3"] = json!("专用小麦粉");
    let (s, v) = app.post("/api/v1/samples", &w.s1, other_category).await;
    assert_error(s, &v, 422, "validation_failed");
    let d = &v["error"]["details"];
    assert_eq!(d.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        (&d[0]["field"], &d[0]["code"]),
        (&json!("category_code"), &json!("not_task_category")),
        "{v}"
    );
    let (s, v) = app
        .post(
            "/api/v1/samples",
            &w.s2,
            w.sample(&premises_a, [&w.s2_id, &w.s1_id], Some(&a)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["task_id"], a.as_str());

    // With a sample on it, its team no longer changes and the plan is not redrawn.
    let (s, v) = w.team(&a, &[&w.s2_id, &w.s1_id]).await;
    assert_error(s, &v, 409, "task_has_samples");
    let (s, v) = app
        .post(
            &format!("/api/v1/sampling-plans/{plan}/draw"),
            &w.reviewer,
            json!({"seed": "again", "reason": "摇号程序有误"}),
        )
        .await;
    assert_error(s, &v, 409, "draw_in_progress");
}

/// The store's per-sampler feed: a task reaches a sampler when they join its team (at that
/// change position), changes after a position are listed, and a sampler taken off is listed as
/// removed, never as theirs.
async fn a_samplers_change_feed_follows_team_changes(app: TestApp) {
    use foodcheck::store::sampling_plans::{changed_for_sampler, removed_for_sampler};
    let w = world(app).await;
    let app = &w.app;
    let plan = w.plan(2).await;
    let d = w.drawn(&plan).await;
    let task = d["tasks"][0]["id"].as_str().unwrap().to_string();
    let drawn_seq = d["tasks"][0]["seq"].as_i64().unwrap();
    let feed = |user: String, since: i64| async move {
        let mut conn = app.db().acquire().await.unwrap();
        let changed = changed_for_sampler(&mut conn, &user, since).await.unwrap();
        let removed = removed_for_sampler(&mut conn, &user, since, i64::MAX)
            .await
            .unwrap();
        (
            changed
                .into_iter()
                .map(|c| (c.id, c.seq, c.added_seq))
                .collect::<Vec<_>>(),
            removed,
        )
    };
    assert_eq!(feed(w.s1_id.clone(), 0).await, (vec![], vec![]));
    let (s, v) = w.team(&task, &[&w.s1_id, &w.s2_id]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let joined = v["seq"].as_i64().unwrap();
    assert!(joined > drawn_seq);
    assert_eq!(
        feed(w.s1_id.clone(), drawn_seq).await,
        (vec![(task.clone(), joined, joined)], vec![])
    );
    assert_eq!(feed(w.s1_id.clone(), joined).await, (vec![], vec![]));
    // s1 leaves, s3 joins: s1's device is told to delete it, s2 sees an update, s3 a new task.
    let (s, v) = w.team(&task, &[&w.s3_id, &w.s2_id]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let changed = v["seq"].as_i64().unwrap();
    assert!(changed > joined);
    assert_eq!(
        feed(w.s1_id.clone(), joined).await,
        (vec![], vec![task.clone()])
    );
    assert_eq!(
        feed(w.s2_id.clone(), joined).await,
        (vec![(task.clone(), changed, joined)], vec![])
    );
    assert_eq!(
        feed(w.s3_id.clone(), joined).await,
        (vec![(task.clone(), changed, changed)], vec![])
    );
    // s1 back on: no longer removed, theirs again from that change.
    let (s, v) = w.team(&task, &[&w.s1_id, &w.s2_id]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let back = v["seq"].as_i64().unwrap();
    assert_eq!(
        feed(w.s1_id.clone(), joined).await,
        (vec![(task.clone(), back, back)], vec![])
    );
    assert_eq!(
        feed(w.s3_id.clone(), changed).await,
        (vec![], vec![task.clone()])
    );
}
