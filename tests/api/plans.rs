//! 随机查餐厅: plans, auditable draws, 回避, tasks and the public draw.

use std::collections::{BTreeMap, HashMap, HashSet};

use foodcheck::auth::Role;
use foodcheck::establishment::{Category, EstablishmentInput, EstablishmentStatus, RiskGrade};
use foodcheck::plan::{draw, TaskState};
use foodcheck::store::{self, establishments::Upsert};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{assert_error, TestApp};
use crate::establishments::{audit_count, audit_of, login, send_with_id};

both_backends!(
    plan_validation,
    draw_matches_an_independent_computation_and_survives_restart,
    redraw_needs_a_reason_and_keeps_history,
    conflicts_are_never_violated,
    public_draw_has_no_personal_data,
    redraw_reasons_are_never_published,
    inspectors_see_only_their_own_tasks,
    exclusion_and_must_check_items,
    bad_draw_input,
    plan_draw_and_task_writes_record_typed_audit_events,
    a_draw_refreshes_the_planner_statistics,
);

const TEMPLATE: &str = "00000000-0000-4000-8000-000000002016";
const SEED: &str = "2024-03-15 福彩双色球 07 12 19 23 28 31 + 05";

/// Registers establishments with fixed ids (`Uuid::from_u128(base + i)`) and the given grades.
async fn seed(
    app: &TestApp,
    base: u128,
    grades: &[RiskGrade],
    town: &str,
) -> Vec<(Uuid, RiskGrade)> {
    let rows: Vec<(String, EstablishmentInput)> = grades
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let id = Uuid::from_u128(base + i as u128);
            let input = EstablishmentInput {
                sign_name: format!("测试餐馆{}", base + i as u128),
                licensed_name: format!("测试餐饮有限公司{}", base + i as u128),
                uscc: None,
                license_no: Some(
                    foodcheck::establishment::codes::LicenseNo::parse(&format!(
                        "JY2120115{:07}",
                        base as usize + i
                    ))
                    .unwrap(),
                ),
                category: Category::SmallRestaurant,
                address: format!("宝坻区测试路{i}号"),
                town: town.into(),
                risk_grade: *g,
                quant_grade: None,
                status: EstablishmentStatus::Open,
                contact_name: Some("店主张三".into()),
                contact_phone: Some("13900001111".into()),
                location: None,
            };
            (id.to_string(), input)
        })
        .collect();
    let upserts: Vec<Upsert> = rows
        .iter()
        .map(|(id, input)| Upsert {
            id,
            input,
            warnings: &[],
        })
        .collect();
    let mut tx = app.db().begin_write().await.unwrap();
    store::establishments::upsert_many(tx.conn(), &upserts, store::now_ms())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    grades
        .iter()
        .enumerate()
        .map(|(i, g)| (Uuid::from_u128(base + i as u128), *g))
        .collect()
}

fn grades(spec: &[(RiskGrade, usize)]) -> Vec<RiskGrade> {
    spec.iter()
        .flat_map(|(g, n)| std::iter::repeat_n(*g, *n))
        .collect()
}

async fn inspectors(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(app.user(&format!("insp{i:02}"), Role::Inspector).await);
    }
    ids
}

fn plan_body(inspector_ids: &[String], quotas: Value) -> Value {
    json!({
        "name": "2024-03 宝坻",
        "round_title": "2024年3·15 随机查餐厅 第3期",
        "theme": "餐饮具清洗消毒",
        "period_start": "2024-03-01", "period_end": "2024-03-31", "due_date": "2099-03-31",
        "template_id": TEMPLATE, "template_version": 1,
        "filter": {"towns": ["周良街道"]},
        "quotas": quotas,
        "inspector_ids": inspector_ids,
        "team_size": 2
    })
}

async fn create_plan(app: &TestApp, admin: &str, body: Value) -> String {
    let (s, plan) = app.post("/api/v1/plans", admin, body).await;
    assert_eq!(s, StatusCode::CREATED, "{plan}");
    plan["id"].as_str().unwrap().to_string()
}

async fn do_draw(
    app: &TestApp,
    admin: &str,
    plan: &str,
    seed: &str,
    reason: Option<&str>,
) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/plans/{plan}/draw"),
        admin,
        json!({"seed": seed, "reason": reason}),
    )
    .await
}

async fn plan_validation(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let ids = inspectors(&app, 3).await;
    let reviewer_id = app.user("rev", Role::Reviewer).await;
    let q = json!({"explicit": {"D": 1}});
    let mut b = plan_body(&ids, q.clone());
    b["team_size"] = json!(1);
    let (s, e) = app.post("/api/v1/plans", &admin, b).await;
    assert_error(s, &e, 422, "validation_failed");
    assert_eq!(e["error"]["details"][0]["code"], "invalid_team_size");
    let (s, e) = app
        .post(
            "/api/v1/plans",
            &admin,
            plan_body(&[ids[0].clone(), reviewer_id], q.clone()),
        )
        .await;
    assert_error(s, &e, 422, "validation_failed");
    assert!(e.to_string().contains("not_an_inspector"), "{e}");
    let mut b = plan_body(&ids, q.clone());
    b["template_version"] = json!(99);
    let (s, e) = app.post("/api/v1/plans", &admin, b).await;
    assert_error(s, &e, 422, "validation_failed");
    let mut b = plan_body(&ids, q.clone());
    b["quotas"] = json!({"weighted": {"total": 5, "weights": {}}});
    let (s, e) = app.post("/api/v1/plans", &admin, b).await;
    assert_error(s, &e, 422, "validation_failed");
    let mut b = plan_body(&ids, q.clone());
    b["quotas"] = json!({"lottery": 5});
    let (s, e) = app.post("/api/v1/plans", &admin, b).await;
    assert_error(s, &e, 422, "invalid_body");
    let inspector = app.login_full("insp00", "d").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, e) = app
        .post("/api/v1/plans", &inspector, plan_body(&ids, q.clone()))
        .await;
    assert_error(s, &e, 403, "forbidden");
    let (s, e) = app.get("/api/v1/plans", &inspector).await;
    assert_error(s, &e, 403, "forbidden");
}

async fn draw_matches_an_independent_computation_and_survives_restart(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let pool = seed(
        &app,
        1_000,
        &grades(&[
            (RiskGrade::A, 10),
            (RiskGrade::B, 10),
            (RiskGrade::C, 10),
            (RiskGrade::D, 10),
        ]),
        "周良街道",
    )
    .await;
    // Outside the filter: never drawn.
    seed(&app, 5_000, &grades(&[(RiskGrade::D, 5)]), "海滨街道").await;
    let ids = inspectors(&app, 6).await;
    let quotas = json!({"explicit": {"A": 1, "B": 2, "C": 3, "D": 4}});
    let plan = create_plan(&app, &admin, plan_body(&ids, quotas)).await;
    let (s, view) = do_draw(&app, &admin, &plan, SEED, None).await;
    assert_eq!(s, StatusCode::CREATED, "{view}");
    assert_eq!(view["draw"]["pool_size"], 40);
    assert_eq!(view["allocation"], json!({"A": 1, "B": 2, "C": 3, "D": 4}));

    // The same inputs through the pure algorithm, computed here: identical on either backend.
    let input = draw::DrawInput {
        plan_id: Uuid::parse_str(&plan).unwrap(),
        seed: SEED.into(),
        pool: draw::canonical_pool(
            pool.iter()
                .map(|(id, g)| draw::Candidate {
                    id: *id,
                    grade: foodcheck::plan::grade_of(*g),
                })
                .collect(),
        )
        .unwrap(),
        quotas: draw::Quotas::Explicit(BTreeMap::from([
            (draw::Grade::A, 1),
            (draw::Grade::B, 2),
            (draw::Grade::C, 3),
            (draw::Grade::D, 4),
        ])),
        inspectors: ids
            .iter()
            .map(|i| draw::Inspector {
                id: Uuid::parse_str(i).unwrap(),
            })
            .collect(),
        team_size: 2,
        conflicts: vec![],
    };
    let expected = draw::draw(&input).unwrap();
    assert_eq!(view["draw"]["pool_hash"], expected.pool_hash);
    let drawn: Vec<String> = view["drawn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["establishment_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        drawn,
        expected
            .drawn
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
    );
    for (entry, team) in view["drawn"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&expected.teams)
    {
        let got: Vec<&str> = entry["team"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["inspector_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            got,
            team.inspector_ids
                .iter()
                .map(|u| u.to_string())
                .collect::<Vec<_>>()
        );
        assert!(
            entry["team"][0]["name"].as_str().is_some(),
            "internal view names the team"
        );
    }
    // One task per drawn establishment, for its team.
    let (_, tasks) = app
        .get(&format!("/api/v1/tasks?plan_id={plan}"), &admin)
        .await;
    assert_eq!(tasks["total_count"], 10);
    let (_, detail) = app.get(&format!("/api/v1/plans/{plan}"), &admin).await;
    assert_eq!(detail["plan"]["progress"]["assigned"], 10);
    assert_eq!(detail["plan"]["status"], "drawn");

    // Verify now, and again after a restart of the server.
    let (s, v) = app
        .post(
            &format!("/api/v1/plans/{plan}/draw/verify"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["matches"], true, "{v}");
    let app = app.restart().await;
    let admin = app.login_full("admin", "d2").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = app
        .post(
            &format!("/api/v1/plans/{plan}/draw/verify"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(v["matches"], true, "{v}");
    // The internal record verifies offline (what `foodcheck draw verify --record` does), and a
    // tampered one does not.
    let (_, record) = app
        .get(&format!("/api/v1/plans/{plan}/draw/record"), &admin)
        .await;
    let (_, diffs) = foodcheck::cli::verify_record_text(&record.to_string()).unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");
    let mut tampered = record.clone();
    let first = tampered["outcome"]["drawn"][0].clone();
    tampered["outcome"]["drawn"][0] = tampered["outcome"]["drawn"][1].clone();
    tampered["outcome"]["drawn"][1] = first;
    let (_, diffs) = foodcheck::cli::verify_record_text(&tampered.to_string()).unwrap();
    assert!(!diffs.is_empty());

    // One changed pool member (a grade) changes the pool hash of the next round.
    let mut conn = app.db().acquire().await.unwrap();
    let changed = store::establishments::get(&mut conn, &pool[0].0.to_string())
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    assert_eq!(changed.risk_grade, RiskGrade::A);
    sqlx::query("UPDATE establishments SET risk_grade = 'B' WHERE id = $1")
        .bind(changed.id)
        .execute(app.db().pool())
        .await
        .unwrap();
    let plan2 = create_plan(&app, &admin, plan_body(&ids, json!({"explicit": {"D": 1}}))).await;
    let (_, view2) = do_draw(&app, &admin, &plan2, SEED, None).await;
    assert_eq!(view2["draw"]["pool_size"], 40);
    assert_ne!(view2["draw"]["pool_hash"], view["draw"]["pool_hash"]);
}

async fn redraw_needs_a_reason_and_keeps_history(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    seed(
        &app,
        2_000,
        &grades(&[(RiskGrade::C, 12), (RiskGrade::D, 12)]),
        "周良街道",
    )
    .await;
    let ids = inspectors(&app, 4).await;
    let plan = create_plan(
        &app,
        &admin,
        plan_body(
            &ids,
            json!({"weighted": {"total": 6, "weights": {"C": 1, "D": 3}}}),
        ),
    )
    .await;
    let (s, first) = do_draw(&app, &admin, &plan, SEED, None).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    // Weighted: D drawn more often than C.
    assert!(
        first["allocation"]["D"].as_u64() > first["allocation"]["C"].as_u64(),
        "{}",
        first["allocation"]
    );
    let (s, e) = do_draw(&app, &admin, &plan, "another seed", None).await;
    assert_error(s, &e, 409, "already_drawn");
    let (s, second) = do_draw(
        &app,
        &admin,
        &plan,
        "another seed",
        Some("种子公布有误，经局务会决定重新抽取"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{second}");
    assert_eq!(second["draw"]["seq"], 2);
    let (_, detail) = app.get(&format!("/api/v1/plans/{plan}"), &admin).await;
    let draws = detail["draws"].as_array().unwrap();
    assert_eq!(draws.len(), 2);
    assert!(draws[0]["superseded_at"].is_string());
    assert!(draws[1]["superseded_at"].is_null());
    assert_eq!(draws[1]["reason"], "种子公布有误，经局务会决定重新抽取");
    // The first draw's tasks are cancelled, the new ones assigned.
    let (_, current) = app
        .get(&format!("/api/v1/tasks?plan_id={plan}"), &admin)
        .await;
    assert_eq!(current["total_count"], 6);
    let (_, all) = app
        .get(
            &format!("/api/v1/tasks?plan_id={plan}&include_superseded=true&state=cancelled"),
            &admin,
        )
        .await;
    assert_eq!(all["total_count"], 6);
    // Once field work starts, no more redraws.
    let task = &current["items"][0];
    let member = task["team"][0]["user_id"].as_str().unwrap();
    assert_eq!(task["team"][0]["role"], "officer");
    let username = format!("insp{:02}", ids.iter().position(|i| i == member).unwrap());
    let t = app.login_full(&username, "phone").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, started) = app
        .post(
            &format!("/api/v1/tasks/{}/start", task["id"].as_str().unwrap()),
            &t,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    let (s, e) = do_draw(&app, &admin, &plan, "third", Some("again")).await;
    assert_error(s, &e, 409, "draw_in_progress");
}

async fn conflicts_are_never_violated(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let pool = seed(&app, 3_000, &grades(&[(RiskGrade::D, 30)]), "周良街道").await;
    let ids = inspectors(&app, 5).await;
    // 4 of 5 inspectors conflict with the first establishment: no team of 2 is possible there.
    for inspector in &ids[..4] {
        let (s, c) = app
            .post("/api/v1/conflicts", &admin, json!({"inspector_id": inspector, "establishment_id": pool[0].0, "reason": "亲属关系"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
    }
    // Scattered conflicts elsewhere.
    for (k, (est, _)) in pool.iter().enumerate().skip(1).step_by(3) {
        let inspector = &ids[k % 5];
        app.post(
            "/api/v1/conflicts",
            &admin,
            json!({"inspector_id": inspector, "establishment_id": est, "reason": "曾任职"}),
        )
        .await;
    }
    let (s, e) = app
        .post(
            "/api/v1/conflicts",
            &admin,
            json!({"inspector_id": ids[0], "establishment_id": pool[0].0, "reason": "dup"}),
        )
        .await;
    assert_error(s, &e, 409, "duplicate");
    let (s, e) = app
        .post(
            "/api/v1/conflicts",
            &admin,
            json!({"inspector_id": ids[0], "establishment_id": Uuid::nil(), "reason": "x"}),
        )
        .await;
    assert_error(s, &e, 422, "validation_failed");
    let plan = create_plan(
        &app,
        &admin,
        plan_body(&ids, json!({"explicit": {"D": 30}})),
    )
    .await;
    let (s, view) = do_draw(&app, &admin, &plan, SEED, None).await;
    assert_eq!(s, StatusCode::CREATED, "{view}");
    assert_eq!(view["unassignable_count"], 1);
    let (_, conflicts) = app.get("/api/v1/conflicts?page_size=200", &admin).await;
    let declared: HashSet<(String, String)> = conflicts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["inspector_id"].as_str().unwrap().to_string(),
                c["establishment_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut load: HashMap<String, usize> = HashMap::new();
    for entry in view["drawn"].as_array().unwrap() {
        let est = entry["establishment_id"].as_str().unwrap();
        if est == pool[0].0.to_string() {
            assert!(entry["team"].as_array().unwrap().is_empty());
            assert!(
                entry["unassignable_reason"].as_str().unwrap().contains('1'),
                "{entry}"
            );
            continue;
        }
        let team: Vec<&str> = entry["team"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["inspector_id"].as_str().unwrap())
            .collect();
        assert_eq!(team.len(), 2);
        assert_ne!(team[0], team[1]);
        for m in team {
            assert!(
                !declared.contains(&(m.to_string(), est.to_string())),
                "回避 violated: {m} at {est}"
            );
            *load.entry(m.to_string()).or_default() += 1;
        }
    }
    let (min, max) = (load.values().min().unwrap(), load.values().max().unwrap());
    assert!(max - min <= 2, "workload too uneven: {load:?}");
    // Only the 29 assignable establishments became tasks.
    let (_, tasks) = app
        .get(&format!("/api/v1/tasks?plan_id={plan}"), &admin)
        .await;
    assert_eq!(tasks["total_count"], 29);
    let id = conflicts["items"][0]["id"].as_str().unwrap();
    let (s, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/conflicts/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let reviewer = app.token_for("rev", Role::Reviewer).await;
    let (s, e) = app.get("/api/v1/conflicts", &reviewer).await;
    assert_error(s, &e, 403, "forbidden");
}

async fn public_draw_has_no_personal_data(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    seed(
        &app,
        4_000,
        &grades(&[(RiskGrade::B, 8), (RiskGrade::D, 8)]),
        "周良街道",
    )
    .await;
    let ids = inspectors(&app, 4).await;
    let plan = create_plan(
        &app,
        &admin,
        plan_body(&ids, json!({"explicit": {"B": 2, "D": 3}})),
    )
    .await;
    let (s, e) = app
        .call(
            reqwest::Method::GET,
            &format!("/public/v1/plans/{plan}/draw"),
            None,
            None,
        )
        .await;
    assert_error(s, &e, 404, "not_found");
    do_draw(&app, &admin, &plan, SEED, None).await;
    let (s, public) = app
        .call(
            reqwest::Method::GET,
            &format!("/public/v1/plans/{plan}/draw"),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{public}");
    assert_eq!(public["draw"]["seed"], SEED);
    assert_eq!(public["draw"]["pool_size"], 16);
    assert_eq!(public["draw"]["algorithm"], "foodcheck-draw-v1");
    assert_eq!(public["drawn"].as_array().unwrap().len(), 5);
    assert!(public["drawn"][0]["sign_name"]
        .as_str()
        .unwrap()
        .starts_with("测试餐馆"));
    let (s, record) = app
        .call(
            reqwest::Method::GET,
            &format!("/public/v1/plans/{plan}/draw/record"),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let text = format!("{public}{record}");
    for (i, id) in ids.iter().enumerate() {
        for needle in [
            format!("Name of insp{i:02}"),
            format!("TJ-insp{i:02}"),
            format!("insp{i:02}"),
            id.clone(),
        ] {
            assert!(!text.contains(&needle), "public draw leaks {needle}");
        }
    }
    for needle in ["13800138000", "13900001111", "店主张三", "Name of admin"] {
        assert!(!text.contains(needle), "public draw leaks {needle}");
    }
    // The public record alone re-runs the selection.
    let (kind, diffs) = foodcheck::cli::verify_record_text(&record.to_string()).unwrap();
    assert!(
        kind.contains("public") && diffs.is_empty(),
        "{kind} {diffs:?}"
    );
}

async fn inspectors_see_only_their_own_tasks(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    seed(&app, 6_000, &grades(&[(RiskGrade::C, 10)]), "周良街道").await;
    let ids = inspectors(&app, 4).await;
    let plan = create_plan(&app, &admin, plan_body(&ids, json!({"explicit": {"C": 6}}))).await;
    do_draw(&app, &admin, &plan, SEED, None).await;
    let (_, all) = app
        .get(&format!("/api/v1/tasks?plan_id={plan}"), &admin)
        .await;
    let all = all["items"].as_array().unwrap().clone();
    let token = app.login_full("insp00", "phone").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, mine) = app.get("/api/v1/tasks", &token).await;
    assert_eq!(s, StatusCode::OK);
    let mine_ids: HashSet<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    for t in &all {
        let member = t["team"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["user_id"] == ids[0].as_str());
        let id = t["id"].as_str().unwrap();
        assert_eq!(member, mine_ids.contains(id), "task {id}");
        let (s, body) = app.get(&format!("/api/v1/tasks/{id}"), &token).await;
        if member {
            assert_eq!(s, StatusCode::OK);
            assert_eq!(
                body["establishment"]["sign_name"],
                t["establishment"]["sign_name"]
            );
            assert!(body["establishment"].get("contact_phone").is_none());
        } else {
            assert_error(s, &body, 404, "not_found");
            let (s, body) = app
                .post(&format!("/api/v1/tasks/{id}/start"), &token, json!({}))
                .await;
            assert_error(s, &body, 404, "not_found");
        }
    }
    assert!(!mine_ids.is_empty());
    let own = mine["items"][0]["id"].as_str().unwrap();
    let (s, t) = app
        .post(&format!("/api/v1/tasks/{own}/start"), &token, json!({}))
        .await;
    assert_eq!(
        (s, t["state"].as_str()),
        (StatusCode::OK, Some("in_progress"))
    );
    let (s, e) = app
        .post(&format!("/api/v1/tasks/{own}/start"), &token, json!({}))
        .await;
    assert_error(s, &e, 409, "invalid_state");
    // Cancelling: admins only, with a reason.
    let (s, e) = app
        .post(
            &format!("/api/v1/tasks/{own}/cancel"),
            &token,
            json!({"reason": "x"}),
        )
        .await;
    assert_error(s, &e, 403, "forbidden");
    let (s, e) = app
        .post(
            &format!("/api/v1/tasks/{own}/cancel"),
            &admin,
            json!({"reason": " "}),
        )
        .await;
    assert_error(s, &e, 422, "validation_failed");
    let (s, t) = app
        .post(
            &format!("/api/v1/tasks/{own}/cancel"),
            &admin,
            json!({"reason": "已停业"}),
        )
        .await;
    assert_eq!(
        (s, t["state"].as_str(), t["cancel_reason"].as_str()),
        (StatusCode::OK, Some("cancelled"), Some("已停业"))
    );
    let (s, e) = app
        .post(
            &format!("/api/v1/tasks/{own}/cancel"),
            &admin,
            json!({"reason": "again"}),
        )
        .await;
    assert_error(s, &e, 409, "invalid_state");
    // Reviewers see progress; labs see nothing.
    let reviewer = app.token_for("rev", Role::Reviewer).await;
    let (_, detail) = app.get(&format!("/api/v1/plans/{plan}"), &reviewer).await;
    assert_eq!(detail["plan"]["progress"]["cancelled"], 1);
    assert_eq!(detail["plan"]["progress"]["assigned"], 5);
    let lab = app.token_for("labby", Role::Lab).await;
    let (s, e) = app.get("/api/v1/tasks", &lab).await;
    assert_error(s, &e, 403, "forbidden");
    let (s, e) = app.get("/api/v1/tasks?state=flying", &admin).await;
    assert_error(s, &e, 400, "bad_request");
}

async fn exclusion_and_must_check_items(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let pool = seed(&app, 7_000, &grades(&[(RiskGrade::D, 4)]), "周良街道").await;
    let ids = inspectors(&app, 2).await;
    // The first establishment failed items 3.1 and 9.3 last time.
    let mut tx = app.db().begin_write().await.unwrap();
    store::plans::set_followup(tx.conn(), &pool[0].0.to_string(), r#"["3.1","9.3"]"#, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let plan = create_plan(&app, &admin, plan_body(&ids, json!({"explicit": {"D": 4}}))).await;
    do_draw(&app, &admin, &plan, SEED, None).await;
    let (_, tasks) = app
        .get(&format!("/api/v1/tasks?plan_id={plan}"), &admin)
        .await;
    let items = tasks["items"].as_array().unwrap();
    let first = items
        .iter()
        .find(|t| t["establishment"]["id"] == pool[0].0.to_string())
        .unwrap();
    assert_eq!(first["must_check_items"], json!(["3.1", "9.3"]));
    assert!(items
        .iter()
        .filter(|t| t["establishment"]["id"] != pool[0].0.to_string())
        .all(|t| t["must_check_items"] == json!([])));
    // Submit one: a round that excludes recent inspections leaves it out, and leaves out the
    // ones still open in the first round.
    let submitted = items[0]["id"].as_str().unwrap();
    let mut tx = app.db().begin_write().await.unwrap();
    assert!(store::plans::set_task_state(
        tx.conn(),
        submitted,
        TaskState::Assigned,
        TaskState::Submitted,
        None
    )
    .await
    .unwrap());
    tx.commit().await.unwrap();
    seed(&app, 7_100, &grades(&[(RiskGrade::D, 3)]), "周良街道").await;
    let mut body = plan_body(&ids, json!({"explicit": {"D": 3}}));
    body["exclude_inspected_within_days"] = json!(30);
    let plan2 = create_plan(&app, &admin, body).await;
    let (s, view) = do_draw(&app, &admin, &plan2, SEED, None).await;
    assert_eq!(s, StatusCode::CREATED, "{view}");
    assert_eq!(view["draw"]["pool_size"], 3, "{view}");
    let (s, e) = do_draw(
        &app,
        &admin,
        &create_plan(&app, &admin, {
            let mut b = plan_body(&ids, json!({"explicit": {"D": 4}}));
            b["exclude_inspected_within_days"] = json!(30);
            b
        })
        .await,
        SEED,
        None,
    )
    .await;
    // 3 left after exclusion (the same 3 are open in plan2 now: 0 candidates) → impossible.
    assert_error(s, &e, 422, "draw_impossible");
}

async fn bad_draw_input(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    seed(&app, 8_000, &grades(&[(RiskGrade::A, 2)]), "周良街道").await;
    let ids = inspectors(&app, 2).await;
    let plan = create_plan(&app, &admin, plan_body(&ids, json!({"explicit": {"A": 5}}))).await;
    let (s, e) = do_draw(&app, &admin, &plan, "   ", None).await;
    assert_error(s, &e, 422, "validation_failed");
    let (s, e) = do_draw(&app, &admin, &plan, SEED, None).await;
    assert_error(s, &e, 422, "draw_impossible");
    // Nothing was recorded by the failed attempts.
    let (_, detail) = app.get(&format!("/api/v1/plans/{plan}"), &admin).await;
    assert_eq!(detail["draws"], json!([]));
    assert_eq!(detail["plan"]["status"], "draft");
    let (s, e) = do_draw(
        &app,
        &admin,
        "00000000-0000-0000-0000-000000000000",
        SEED,
        None,
    )
    .await;
    assert_error(s, &e, 404, "not_found");
    let (s, e) = app
        .post(
            &format!("/api/v1/plans/{plan}/draw/verify"),
            &admin,
            json!({}),
        )
        .await;
    assert_error(s, &e, 404, "not_found");
    let reviewer = app.token_for("rev", Role::Reviewer).await;
    let (s, e) = do_draw(&app, &reviewer, &plan, SEED, None).await;
    assert_error(s, &e, 403, "forbidden");
}

/// A redraw reason is internal: it may name an informant or a colleague and carry a phone
/// number. The public draw page and record never show it; the internal plan view does.
async fn redraw_reasons_are_never_published(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    seed(&app, 5_000, &grades(&[(RiskGrade::C, 6)]), "周良街道").await;
    let ids = inspectors(&app, 4).await;
    let plan = create_plan(&app, &admin, plan_body(&ids, json!({"explicit": {"C": 2}}))).await;
    let (s, _) = do_draw(&app, &admin, &plan, SEED, None).await;
    assert_eq!(s, StatusCode::CREATED);
    let reason = "王小明（13912345678）反映种子提前泄露，经局务会决定重新抽取";
    let (s, second) = do_draw(&app, &admin, &plan, "another seed", Some(reason)).await;
    assert_eq!(s, StatusCode::CREATED, "{second}");
    let (_, detail) = app.get(&format!("/api/v1/plans/{plan}"), &admin).await;
    assert_eq!(detail["draws"][1]["reason"], reason);
    for path in [
        format!("/public/v1/plans/{plan}/draw"),
        format!("/public/v1/plans/{plan}/draw/record"),
    ] {
        let res = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let text = res.text().await.unwrap();
        for needle in ["王小明", "13912345678", "泄露", "\"reason\""] {
            assert!(
                !text.contains(needle),
                "{path} publishes {needle:?}: {text}"
            );
        }
    }
}

/// "Overdue" is decided on the bureau's calendar (`time_zone`), not the host's: a plan due on
/// the day that is today at UTC−12 is already overdue at UTC+14 (26 hours ahead) and not yet
/// overdue at UTC−12, whatever the machine's own zone and hour.
mod bureau_day {
    use super::*;
    use crate::common::Kind;

    async fn overdue_for(app: &TestApp) -> (i64, Vec<bool>) {
        let admin = app.token_for("admin", Role::Admin).await;
        seed(app, 9_000, &grades(&[(RiskGrade::C, 4)]), "周良街道").await;
        let ids = inspectors(app, 2).await;
        let west = chrono::FixedOffset::west_opt(12 * 3600).unwrap();
        let due = chrono::Utc::now().with_timezone(&west).date_naive();
        let mut body = plan_body(&ids, json!({"explicit": {"C": 2}}));
        body["due_date"] = json!(due.format("%Y-%m-%d").to_string());
        let plan = create_plan(app, &admin, body).await;
        let (s, d) = do_draw(app, &admin, &plan, SEED, None).await;
        assert_eq!(s, StatusCode::CREATED, "{d}");
        let (_, p) = app.get(&format!("/api/v1/plans/{plan}"), &admin).await;
        let (_, tasks) = app
            .get(&format!("/api/v1/tasks?plan_id={plan}"), &admin)
            .await;
        let flags = tasks["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["overdue"].as_bool().unwrap())
            .collect();
        (
            p["plan"]["progress"]["overdue"]
                .as_i64()
                .unwrap_or_else(|| panic!("{p}")),
            flags,
        )
    }

    mod east {
        use super::*;
        both_backends!(@spawn spawn; a_day_ahead_it_is_overdue);
        async fn spawn(kind: Kind) -> TestApp {
            TestApp::spawn_with(kind, |c| {
                c.time_zone = foodcheck::clock::BureauZone::parse("+14:00").unwrap()
            })
            .await
        }
        async fn a_day_ahead_it_is_overdue(app: TestApp) {
            assert_eq!(overdue_for(&app).await, (2, vec![true, true]));
        }
    }

    mod west {
        use super::*;
        both_backends!(@spawn spawn; on_the_due_day_it_is_not_overdue);
        async fn spawn(kind: Kind) -> TestApp {
            TestApp::spawn_with(kind, |c| {
                c.time_zone = foodcheck::clock::BureauZone::parse("-12:00").unwrap()
            })
            .await
        }
        async fn on_the_due_day_it_is_not_overdue(app: TestApp) {
            assert_eq!(overdue_for(&app).await, (0, vec![false, false]));
        }
    }
}

async fn plan_draw_and_task_writes_record_typed_audit_events(app: TestApp) {
    use reqwest::Method;
    let (admin_id, admin) = login(&app, "admin", Role::Admin).await;
    let pool = seed(&app, 9_000, &grades(&[(RiskGrade::D, 6)]), "周良街道").await;
    let ids = inspectors(&app, 2).await;

    let (s, plan) = send_with_id(
        &app,
        Method::POST,
        "/api/v1/plans",
        &admin,
        "req-plan",
        Some(plan_body(&ids, json!({"explicit": {"D": 2}}))),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{plan}");
    let plan_id = plan["id"].as_str().unwrap().to_string();
    let events = audit_of(&app, "plan", &plan_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.action, "plan_created");
    assert_eq!(e.actor_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(e.actor_role.as_deref(), Some("admin"));
    assert_eq!(e.device_id.as_deref(), Some("test-device"));
    assert_eq!(e.request_id.as_deref(), Some("req-plan"));
    assert_eq!(e.change("name"), Some((Value::Null, json!("2024-03 宝坻"))));
    assert_eq!(e.change("status"), Some((Value::Null, json!("draft"))));
    assert_eq!(
        e.change("due_date"),
        Some((Value::Null, json!("2099-03-31")))
    );
    assert_eq!(e.change("inspector_ids"), Some((Value::Null, json!(ids))));

    // A conflict declared, then withdrawn: the withdrawal keeps what was declared.
    let (s, c) = send_with_id(
        &app,
        Method::POST,
        "/api/v1/conflicts",
        &admin,
        "req-conflict",
        Some(json!({"inspector_id": ids[0], "establishment_id": pool[5].0, "reason": "亲属关系"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let cid = c["id"].as_str().unwrap();
    let (s, _) = send_with_id(
        &app,
        Method::DELETE,
        &format!("/api/v1/conflicts/{cid}"),
        &admin,
        "req-unconflict",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let events = audit_of(&app, "conflict", cid).await;
    assert_eq!(
        events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["conflict_declared", "conflict_removed"]
    );
    assert_eq!(events[0].request_id.as_deref(), Some("req-conflict"));
    assert_eq!(
        events[0].change("reason"),
        Some((Value::Null, json!("亲属关系")))
    );
    assert_eq!(
        events[0].change("inspector_id"),
        Some((Value::Null, json!(ids[0])))
    );
    assert_eq!(events[1].request_id.as_deref(), Some("req-unconflict"));
    assert_eq!(
        events[1].change("reason"),
        Some((json!("亲属关系"), Value::Null))
    );

    // The draw: seed, pool hash, counts; the plan's status and current draw change with it.
    let (s, v) = send_with_id(
        &app,
        Method::POST,
        &format!("/api/v1/plans/{plan_id}/draw"),
        &admin,
        "req-draw-1",
        Some(json!({"seed": SEED})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let draw1 = v["draw"]["id"].as_str().unwrap().to_string();
    let events = audit_of(&app, "draw", &draw1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.action, "draw_made");
    assert_eq!(e.request_id.as_deref(), Some("req-draw-1"));
    assert_eq!(e.actor_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(e.change("seed"), Some((Value::Null, json!(SEED))));
    assert_eq!(
        e.change("pool_hash"),
        Some((Value::Null, v["draw"]["pool_hash"].clone()))
    );
    assert_eq!(e.change("selected"), Some((Value::Null, json!(2))));
    assert_eq!(e.change("redraw"), Some((Value::Null, json!(false))));
    assert!(e.change("reason").is_none(), "{e:?}");
    let events = audit_of(&app, "plan", &plan_id).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].action, "plan_updated");
    assert_eq!(events[1].request_id.as_deref(), Some("req-draw-1"));
    assert_eq!(
        events[1].change("status"),
        Some((json!("draft"), json!("drawn")))
    );
    assert_eq!(
        events[1].change("current_draw_id"),
        Some((Value::Null, json!(draw1)))
    );

    // An inspector of the team starts a task; the admin cancels it with a reason.
    let (_, tasks) = app
        .get(&format!("/api/v1/tasks?plan_id={plan_id}"), &admin)
        .await;
    let task_ids: Vec<String> = tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(task_ids.len(), 2, "{tasks}");
    let inspector = app.login_full("insp00", "phone-7").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, t) = send_with_id(
        &app,
        Method::POST,
        &format!("/api/v1/tasks/{}/start", task_ids[0]),
        &inspector,
        "req-start",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let before = audit_count(&app).await;
    let (s, e) = send_with_id(
        &app,
        Method::POST,
        &format!("/api/v1/tasks/{}/cancel", task_ids[0]),
        &admin,
        "req-cancel-bad",
        Some(json!({"reason": "  "})),
    )
    .await;
    assert_error(s, &e, 422, "validation_failed");
    assert_eq!(
        audit_count(&app).await,
        before,
        "a refused cancel records nothing"
    );
    let (s, t) = send_with_id(
        &app,
        Method::POST,
        &format!("/api/v1/tasks/{}/cancel", task_ids[0]),
        &admin,
        "req-cancel",
        Some(json!({"reason": "已停业"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let events = audit_of(&app, "task", &task_ids[0]).await;
    assert_eq!(
        events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["task_state_changed", "task_cancelled"]
    );
    assert_eq!(events[0].actor_id.as_deref(), Some(ids[0].as_str()));
    assert_eq!(events[0].actor_role.as_deref(), Some("inspector"));
    assert_eq!(events[0].device_id.as_deref(), Some("phone-7"));
    assert_eq!(events[0].request_id.as_deref(), Some("req-start"));
    assert_eq!(
        events[0].change("state"),
        Some((json!("assigned"), json!("in_progress")))
    );
    assert_eq!(events[1].actor_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(events[1].request_id.as_deref(), Some("req-cancel"));
    assert_eq!(
        events[1].change("state"),
        Some((json!("in_progress"), json!("cancelled")))
    );
    assert_eq!(
        events[1].change("cancel_reason"),
        Some((Value::Null, json!("已停业")))
    );

    // A redraw: its reason, and each open task of the replaced draw cancelled on record.
    let (s, v) = send_with_id(
        &app,
        Method::POST,
        &format!("/api/v1/plans/{plan_id}/draw"),
        &admin,
        "req-redraw",
        Some(json!({"seed": "second seed", "reason": "店铺搬迁"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let draw2 = v["draw"]["id"].as_str().unwrap().to_string();
    let events = audit_of(&app, "draw", &draw2).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].change("redraw"), Some((Value::Null, json!(true))));
    assert_eq!(
        events[0].change("reason"),
        Some((Value::Null, json!("店铺搬迁")))
    );
    assert_eq!(
        events[0].change("replaced_draw_id"),
        Some((Value::Null, json!(draw1)))
    );
    let events = audit_of(&app, "task", &task_ids[1]).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].action, "task_cancelled");
    assert_eq!(events[0].request_id.as_deref(), Some("req-redraw"));
    assert_eq!(
        events[0].change("state"),
        Some((json!("assigned"), json!("cancelled")))
    );
    assert_eq!(
        events[0].change("cancel_reason"),
        Some((Value::Null, json!("superseded by a redraw")))
    );
    // The task cancelled before is not cancelled again.
    assert_eq!(audit_of(&app, "task", &task_ids[0]).await.len(), 2);

    // Handing out the internal record (inspector ids, conflicts) is recorded as an export;
    // a refused request is not.
    let (_, reviewer) = login(&app, "rev", Role::Reviewer).await;
    let before = audit_count(&app).await;
    let (s, e) = send_with_id(
        &app,
        Method::GET,
        &format!("/api/v1/plans/{plan_id}/draw/record"),
        &reviewer,
        "req-export-rev",
        None,
    )
    .await;
    assert_error(s, &e, 403, "forbidden");
    assert_eq!(audit_count(&app).await, before);
    let (s, record) = send_with_id(
        &app,
        Method::GET,
        &format!("/api/v1/plans/{plan_id}/draw/record"),
        &admin,
        "req-export",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{record}");
    let events = audit_of(&app, "draw", &draw2).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].action, "personal_data_exported");
    assert_eq!(events[1].actor_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(events[1].request_id.as_deref(), Some("req-export"));
    assert_eq!(
        events[1].change("plan_id"),
        Some((Value::Null, json!(plan_id)))
    );
    assert_eq!(
        events[1].change("inspectors"),
        Some((Value::Null, json!(2)))
    );
}

/// A draw is a bulk write: on PostgreSQL the tables it filled are analysed right after it
/// commits (autovacuum would get to them minutes later, and until then sync queries are
/// planned on empty-table statistics). SQLite gathers no statistics (see
/// `Db::refresh_statistics`).
async fn a_draw_refreshes_the_planner_statistics(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    seed(&app, 1_000, &grades(&[(RiskGrade::B, 20)]), "周良街道").await;
    let ids = inspectors(&app, 4).await;
    let plan = create_plan(
        &app,
        &admin,
        plan_body(&ids, json!({"explicit": {"B": 10}})),
    )
    .await;
    let analysed = |table: &'static str| {
        let db = app.db().clone();
        async move {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM pg_stat_user_tables WHERE relname = $1 \
                 AND last_analyze IS NOT NULL",
            )
            .bind(table)
            .fetch_one(db.pool())
            .await
            .unwrap();
            n
        }
    };
    let postgres = app.backend() == foodcheck::store::Backend::Postgres;
    if postgres {
        assert_eq!(
            analysed("tasks").await,
            0,
            "a fresh database, never analysed"
        );
    }
    let (s, view) = do_draw(&app, &admin, &plan, SEED, None).await;
    assert_eq!(s, StatusCode::CREATED, "{view}");
    if postgres {
        for table in ["tasks", "task_members", "draws"] {
            assert_eq!(analysed(table).await, 1, "{table}");
        }
    } else {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'")
                .fetch_one(app.db().pool())
                .await
                .unwrap();
        assert_eq!(n, 0, "SQLite keeps its plans without statistics");
    }
}
