//! Streamed pulls: a table whose `updated` rows pass the writer's buffer is read a second time
//! from the same snapshot and answers the very same JSON; a pull that fails part way ends its
//! body in an error (never a truncated answer that parses), or answers a 500 while nothing has
//! been sent yet.

use foodcheck::auth::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::TestApp;

both_backends!(
    updated_rows_past_the_buffer_answer_the_same_json,
    a_pull_failing_part_way_ends_its_body_in_an_error,
);

const TEMPLATE: &str = "00000000-0000-4000-8000-000000002016";
/// The 30 item codes of the 2016 table.
const ITEMS: [&str; 30] = [
    "1.1", "2.1", "2.2", "2.3", "3.1", "3.2", "4.1", "4.2", "4.3", "4.4", "5.1", "5.2", "5.3",
    "5.4", "6.1", "6.2", "6.3", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "8.1", "8.2", "8.3",
    "8.4", "9.1", "9.2", "9.3",
];

struct World {
    app: TestApp,
    team: String,
    /// (task id, establishment id)
    tasks: Vec<(String, String)>,
}

/// Two inspectors, both in the team of each of `n` tasks.
async fn world(app: TestApp, n: usize) -> World {
    let admin = app.token_for("admin", Role::Admin).await;
    let mut inspectors = Vec::new();
    for name in ["stream_a", "stream_b"] {
        let id = app.user(name, Role::Inspector).await;
        inspectors.push((name.to_string(), id));
    }
    for i in 0..n {
        let (s, e) = app
            .post(
                "/api/v1/establishments",
                &admin,
                json!({"sign_name": format!("流式店{i}"), "licensed_name": format!("流式公司{i}"), "license_no": format!("JY21201170{i:06}"),
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
                   "due_date": "2099-03-31", "template_id": TEMPLATE, "template_version": 1, "quotas": {"explicit": {"C": n}},
                   "inspector_ids": ids, "team_size": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{plan}");
    let plan = plan["id"].as_str().unwrap().to_string();
    let (s, draw) = app
        .post(
            &format!("/api/v1/plans/{plan}/draw"),
            &admin,
            json!({"seed": "s"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{draw}");
    let tasks: Vec<(String, String)> = crate::common::drawn_tasks(&app, &admin, &plan, &inspectors)
        .await
        .into_iter()
        .map(|(t, e, _)| (t, e))
        .collect();
    assert_eq!(tasks.len(), n);
    let team: Vec<Value> = inspectors
        .iter()
        .map(|(n, id)| json!({"user_id": id, "name": n, "badge_no": format!("TJ-{n}")}))
        .collect();
    World {
        app,
        team: serde_json::to_string(&team).unwrap(),
        tasks,
    }
}

impl World {
    /// A token of `user` on a device of its own (the pull hooks are per device).
    async fn device(&self, user: &str) -> (String, String) {
        let device = format!("stream-{}", Uuid::new_v4());
        let token = self.app.login_full(user, &device).await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        (device, token)
    }

    /// One inspection of task `task` with an answer to each of the 30 items.
    fn inspection(&self, task: usize) -> Value {
        let (task_id, est) = &self.tasks[task];
        let id = Uuid::new_v4().to_string();
        let answers: Vec<Value> = ITEMS
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let aid = Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("{id}:{item}").as_bytes());
                json!({"id": aid, "inspection_id": id, "item_code": item, "status": if i % 7 == 3 { "fail" } else { "pass" },
                       "note": if i % 5 == 0 { Value::from(format!("第{i}项：后厨地面有积水，已要求当场整改。")) } else { Value::Null }})
            })
            .collect();
        json!({
            "inspections": {"created": [{"id": id, "task_id": task_id, "establishment_id": est,
                "started_at": 1_710_000_000_000i64, "finished_at": 1_710_000_900_000i64, "lng": 117.2903, "lat": 39.7102,
                "gps_accuracy_m": 12.5, "crs": "gcj02", "team": self.team, "representative_name": "王店长",
                "representative_signed": true, "representative_refused": false, "business_opinion": "无异议",
                "other_findings": "冷藏柜温度计缺失", "declared_result": "basically_compliant", "submitted": false,
                "computed_result": null, "review_state": null, "server_flags": null}], "updated": [], "deleted": []},
            "answers": {"created": answers, "updated": [], "deleted": []},
        })
    }

    async fn push(&self, token: &str, last: i64, changes: Value) {
        let (s, r) = self
            .app
            .post(
                &format!("/api/v1/sync?last_pulled_at={last}"),
                token,
                json!({ "changes": changes }),
            )
            .await;
        assert_eq!((s, &r), (StatusCode::OK, &json!({})));
    }

    async fn pull(&self, token: &str, last: Option<i64>) -> Value {
        let last = last.map_or("null".to_string(), |l| l.to_string());
        let (s, body) = self
            .app
            .get(
                &format!("/api/v1/sync?last_pulled_at={last}&schema_version=7&migration=null"),
                token,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body
    }
}

/// Every array sorted by record id (the order of the records is not part of the protocol).
fn normalized(mut body: Value) -> Value {
    for (_, t) in body["changes"].as_object_mut().unwrap().iter_mut() {
        for (_, list) in t.as_object_mut().unwrap().iter_mut() {
            let list = list.as_array_mut().unwrap();
            list.sort_by_key(|r| r.get("id").unwrap_or(r).to_string());
        }
    }
    body
}

fn count(body: &Value, table: &str, list: &str) -> usize {
    body["changes"][table][list].as_array().unwrap().len()
}

async fn updated_rows_past_the_buffer_answer_the_same_json(app: TestApp) {
    let w = world(app, 4).await;
    let (device_a, a) = w.device("stream_a").await;
    let (_, b) = w.device("stream_b").await;
    let c0 = w.pull(&a, None).await["timestamp"].as_i64().unwrap();
    // Three inspections from a's device (they come back to it as updated), one from b's (new
    // to a's device: created), and a deletion.
    for task in 0..3 {
        w.push(&a, c0, w.inspection(task)).await;
    }
    let cb = w.pull(&b, None).await["timestamp"].as_i64().unwrap();
    let from_b = w.inspection(3);
    w.push(&b, cb, from_b.clone()).await;
    let gone = from_b["answers"]["created"][0]["id"].clone();
    let cb = w.pull(&b, Some(cb)).await["timestamp"].as_i64().unwrap();
    w.push(
        &b,
        cb,
        json!({"answers": {"created": [], "updated": [], "deleted": [gone]}}),
    )
    .await;

    let whole = w.pull(&a, Some(c0)).await;
    assert_eq!(count(&whole, "answers", "updated"), 90, "{whole}");
    assert_eq!(count(&whole, "answers", "created"), 29);
    assert_eq!(count(&whole, "inspections", "updated"), 3);
    assert_eq!(count(&whole, "inspections", "created"), 1);
    assert!(count(&whole, "tasks", "updated") >= 3);
    // The deletion of a record a never received is still listed (harmless, as before).
    assert_eq!(whole["changes"]["answers"]["deleted"], json!([gone]));

    // The same pull with a buffer that a single record overflows: every table with updated
    // rows is read again for them.
    foodcheck::ops::sync::debug::pull_updated_buffer(&device_a, 64);
    let bounded = w.pull(&a, Some(c0)).await;
    // (PostgreSQL's cursor may move between two pulls: other transactions end meanwhile.)
    assert_eq!(
        normalized(bounded)["changes"],
        normalized(whole.clone())["changes"]
    );

    // A first pull through the small buffer too (all of it created: no second pass).
    let first = w.pull(&a, None).await;
    assert_eq!(count(&first, "answers", "created"), 119);
    let (_, other) = w.device("stream_a").await;
    assert_eq!(
        normalized(first)["changes"],
        normalized(w.pull(&other, None).await)["changes"]
    );
}

async fn a_pull_failing_part_way_ends_its_body_in_an_error(app: TestApp) {
    // Enough for an answer of some 170 KB.
    const TASKS: usize = 24;
    let w = world(app, TASKS).await;
    let (_, b) = w.device("stream_b").await;
    let cb = w.pull(&b, None).await["timestamp"].as_i64().unwrap();
    for task in 0..TASKS {
        w.push(&b, cb, w.inspection(task)).await;
    }
    let (_, a) = w.device("stream_a").await;
    let path = "/api/v1/sync?last_pulled_at=null&schema_version=7&migration=null";
    let whole = w
        .app
        .client
        .get(w.app.url(path))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    serde_json::from_slice::<Value>(&whole).unwrap();
    // Past the first chunks the writer hands over before the answer starts (4 + 64 KiB).
    assert!(whole.len() > 2 * 70 * 1024, "{} bytes", whole.len());

    for accept in [None, Some("gzip")] {
        let (device, token) = w.device("stream_a").await;
        foodcheck::ops::sync::debug::fail_pull_after(&device, whole.len() as u64 / 2);
        let mut req = w.app.client.get(w.app.url(path)).bearer_auth(&token);
        if let Some(accept) = accept {
            req = req.header(reqwest::header::ACCEPT_ENCODING, accept);
        }
        // The connection is cut: the client sees an error, during the body or, when the cut
        // came before the server's buffered headers went out, instead of an answer.
        if let Ok(res) = req.send().await {
            assert_eq!(res.status(), StatusCode::OK);
            let body = res.bytes().await;
            assert!(
                body.is_err(),
                "{accept:?}: the body ended as if complete ({} bytes)",
                body.map(|b| b.len()).unwrap_or(0)
            );
        }

        // Failing before anything was sent: a proper 500.
        let (device, token) = w.device("stream_a").await;
        foodcheck::ops::sync::debug::fail_pull_after(&device, 100);
        let mut req = w.app.client.get(w.app.url(path)).bearer_auth(&token);
        if let Some(accept) = accept {
            req = req.header(reqwest::header::ACCEPT_ENCODING, accept);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    // The failed pulls' connections went back to the pool: pulls still answer.
    assert_eq!(
        count(&w.pull(&a, None).await, "answers", "created"),
        TASKS * ITEMS.len()
    );
}
