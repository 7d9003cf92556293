//! What happens after a 不合格 sampling result (`POST /api/v1/samples/{id}/facts`): the chain
//! notified → served → 复检 (refused for a microbiological item, accepted otherwise) → 复检 lab
//! receipt and report → 核查处置 done, with the deadline queue at each step; the 复检 window on
//! the working-day calendar across the 2026 Spring Festival; who may record what (another
//! lab: 404); the 核查处置 follow-up in the reviewers' queue until it closes.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::assert_error;
use crate::sampling::{item, march_2_2026, world, World};

both_backends!(
    the_chain_after_an_unqualified_result,
    the_retest_window_spans_the_2026_spring_festival,
    recent_facts_queue_as_due_and_the_followup_waits,
    an_unqualified_sample_is_a_black_candidate,
);

const DAY: i64 = 86_400_000;

fn micro_item(name: &str) -> Value {
    json!({"name": name, "value": "5.2×10^5", "unit": "CFU/g", "limit": "≤10^5",
           "standard": "GB 29921-2021", "method": "GB 4789.2-2022", "verdict": "unqualified",
           "microbiological": true})
}

/// A sample sampled at `at`, sealed, dispatched and received within hours, reported 不合格 with `items` at `reported`.
pub(crate) async fn unqualified(w: &World, at: i64, reported: i64, items: Value) -> String {
    let sample = w.submitted(at).await;
    w.received(&sample, at + 60_000).await;
    let (s, v) = w
        .app
        .put(
            &format!("/api/v1/samples/{sample}/result"),
            &w.lab_a,
            json!({"report_no": format!("WT-{}", &sample[..8]), "overall": "unqualified", "items": items}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for kind in ["testing", "reported"] {
        let (s, v) = w
            .custody(&sample, &w.lab_a, json!({"id": Uuid::new_v4(), "kind": kind, "occurred_at": reported, "place": "A检验中心"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{kind}: {v}");
    }
    sample
}

async fn fact(w: &World, sample: &str, token: &str, body: Value) -> (StatusCode, Value) {
    w.app
        .post(&format!("/api/v1/samples/{sample}/facts"), token, body)
        .await
}

pub(crate) async fn recorded(w: &World, sample: &str, token: &str, body: Value) -> Value {
    let (s, v) = fact(w, sample, token, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{body}: {v}");
    v
}

/// The open deadlines of `sample` in the queue `status` (rule, due), in queue order.
async fn queued(w: &World, status: &str, sample: &str) -> Vec<(String, String)> {
    let (s, page) = w
        .app
        .get(
            &format!("/api/v1/sampling/deadlines?status={status}&limit=200"),
            &w.reviewer,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["sample_id"] == sample)
        .map(|e| {
            (
                e["deadline"]["rule"].as_str().unwrap().to_string(),
                e["deadline"]["due"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The sample follow-ups in the reviewers' rectifications_due queue: (sample, deadline, overdue).
async fn followup_queue(w: &World) -> Vec<(String, String, bool)> {
    let (s, page) = w
        .app
        .get(
            "/api/v1/review/queues/rectifications_due?within_days=366&limit=100",
            &w.reviewer,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["sample_id"].is_null())
        .map(|e| {
            assert_eq!(e["kind"], "followup", "{e}");
            assert_eq!(e["task_id"], Value::Null, "{e}");
            (
                e["sample_id"].as_str().unwrap().to_string(),
                e["due_date"].as_str().unwrap().to_string(),
                e["overdue"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn audit_actions(w: &World, record_id: &str) -> Vec<String> {
    let mut conn = w.app.db().acquire().await.unwrap();
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT action FROM audit_events WHERE record_id = $1 AND action NOT LIKE 'login%' ORDER BY id",
    )
    .bind(record_id)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    rows.into_iter().map(|r| r.0).collect()
}

async fn the_chain_after_an_unqualified_result(app: crate::common::TestApp) {
    let w = world(app).await;
    crate::common::cover_this_and_next_year(&w.app, &w.admin).await;
    let at = march_2_2026();
    // Sampled Monday 2 March 2026, reported 不合格 on Friday 6 March: 铅 and a microbiological item.
    let sample = unqualified(
        &w,
        at,
        at + 4 * DAY,
        json!([
            item("铅", "0.35", "≤0.2", "unqualified"),
            micro_item("菌落总数")
        ]),
    )
    .await;
    assert_eq!(
        queued(&w, "overdue", &sample).await,
        pairs(&[("unqualified_to_bureau", "2026-03-10")])
    );

    // Nothing is served before the bureau has the result; no date before the report.
    let (s, v) = fact(
        &w,
        &sample,
        &w.reviewer,
        json!({"kind": "served", "on": "2026-03-12"}),
    )
    .await;
    assert_error(s, &v, 409, "fact_out_of_order");
    let (s, v) = fact(
        &w,
        &sample,
        &w.reviewer,
        json!({"kind": "bureau_notified", "on": "2026-03-05"}),
    )
    .await;
    assert_error(s, &v, 422, "fact_before_predecessor");
    let tomorrow = (Utc::now() + Duration::hours(8) + Duration::days(1)).date_naive();
    let (s, v) = fact(
        &w,
        &sample,
        &w.reviewer,
        json!({"kind": "bureau_notified", "on": tomorrow}),
    )
    .await;
    assert_error(s, &v, 422, "fact_in_future");
    // The sample's lab records that the bureau has the result: the 核查处置 follow-up opens,
    // due 90 calendar days later.
    let v = recorded(
        &w,
        &sample,
        &w.lab_a,
        json!({"kind": "bureau_notified", "on": "2026-03-09", "note": "电话报送"}),
    )
    .await;
    assert_eq!(v["facts"][0]["kind"], "bureau_notified");
    assert_eq!(v["facts"][0]["note"], "电话报送");
    let followup = v["followup_id"].as_str().unwrap().to_string();
    // Replay: 200, unchanged; another date: 409.
    let (s, again) = fact(
        &w,
        &sample,
        &w.lab_a,
        json!({"kind": "bureau_notified", "on": "2026-03-09"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["facts"], v["facts"]);
    let (s, e) = fact(
        &w,
        &sample,
        &w.reviewer,
        json!({"kind": "bureau_notified", "on": "2026-03-10"}),
    )
    .await;
    assert_error(s, &e, 409, "fact_already_recorded");
    assert_eq!(
        queued(&w, "overdue", &sample).await,
        pairs(&[("service", "2026-03-16"), ("disposal", "2026-06-07")])
    );
    let (s, f) = w
        .app
        .get(&format!("/api/v1/followups/{followup}"), &w.reviewer)
        .await;
    assert_eq!(s, StatusCode::OK, "{f}");
    assert_eq!(f["sample_id"], sample);
    assert_eq!(f["inspection_id"], Value::Null);
    assert_eq!(f["state"], "open");
    assert_eq!(f["period_calendar_days"], 90);
    assert_eq!(f["deadline"], "2026-06-07");
    assert_eq!(f["failed_items"], json!(["铅", "菌落总数"]));
    assert_eq!(
        followup_queue(&w).await,
        [(sample.clone(), "2026-06-07".to_string(), true)]
    );
    // A sample's follow-up has no recheck.
    let (s, e) = w
        .app
        .post(
            &format!("/api/v1/followups/{followup}/recheck"),
            &w.reviewer,
            json!({}),
        )
        .await;
    assert_error(s, &e, 409, "invalid_state");

    // The lab may not serve the business; the bureau does.
    let (s, e) = fact(
        &w,
        &sample,
        &w.lab_a,
        json!({"kind": "served", "on": "2026-03-12"}),
    )
    .await;
    assert_error(s, &e, 403, "forbidden");
    recorded(
        &w,
        &sample,
        &w.reviewer,
        json!({"kind": "served", "on": "2026-03-12"}),
    )
    .await;
    assert_eq!(
        queued(&w, "overdue", &sample).await,
        pairs(&[
            ("retest_or_objection", "2026-03-23"),
            ("disposal", "2026-06-07")
        ])
    );

    // 复检 of every 不合格 item: refused for the microbiological one, with the reason.
    let (s, e) = fact(
        &w,
        &sample,
        &w.reviewer,
        json!({"kind": "retest_requested", "on": "2026-03-13", "retest_lab_id": w.lab_b_id}),
    )
    .await;
    assert_error(s, &e, 422, "retest_microbiological");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("菌落总数") && msg.contains("微生物"), "{msg}");
    assert!(!msg.contains("铅"), "{msg}");
    // The other lab may not record anything of a sample it neither tested nor retests: 404.
    let (s, e) = fact(
        &w,
        &sample,
        &w.lab_b,
        json!({"kind": "retest_received", "on": "2026-03-16"}),
    )
    .await;
    assert_error(s, &e, 404, "not_found");
    let (s, e) = fact(&w, &sample, &w.reviewer, json!({"kind": "retest_requested", "on": "2026-03-13", "retest_lab_id": w.lab_a_id, "items": ["铅"]})).await;
    assert_error(s, &e, 422, "validation_failed");
    // Only 铅, at lab B: accepted. The window is met.
    let v = recorded(&w, &sample, &w.reviewer, json!({"kind": "retest_requested", "on": "2026-03-13", "retest_lab_id": w.lab_b_id, "items": ["铅"]})).await;
    assert_eq!(v["retest_items"], json!(["铅"]));
    assert_eq!(v["retest_lab_id"], w.lab_b_id);
    let window = v["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["rule"] == "retest_or_objection")
        .unwrap();
    assert_eq!(window["status"], "met");
    assert_eq!(
        queued(&w, "overdue", &sample).await,
        pairs(&[("disposal", "2026-06-07")])
    );
    // No 复检 report before the 复检 lab received the backup sample; lab A is not the 复检 lab.
    let (s, e) = fact(
        &w,
        &sample,
        &w.lab_b,
        json!({"kind": "retest_reported", "on": "2026-03-20"}),
    )
    .await;
    assert_error(s, &e, 409, "fact_out_of_order");
    let (s, e) = fact(
        &w,
        &sample,
        &w.lab_a,
        json!({"kind": "retest_received", "on": "2026-03-16"}),
    )
    .await;
    assert_error(s, &e, 403, "forbidden");
    // Disposal waits for the 复检.
    let (s, e) = fact(
        &w,
        &sample,
        &w.reviewer,
        json!({"kind": "disposal_done", "on": "2026-03-20"}),
    )
    .await;
    assert_error(s, &e, 409, "fact_out_of_order");
    recorded(
        &w,
        &sample,
        &w.lab_b,
        json!({"kind": "retest_received", "on": "2026-03-16"}),
    )
    .await;
    assert_eq!(
        queued(&w, "overdue", &sample).await,
        pairs(&[("retest_report", "2026-03-30"), ("disposal", "2026-06-07")])
    );
    let (s, e) = fact(
        &w,
        &sample,
        &w.lab_b,
        json!({"kind": "retest_reported", "on": "2026-03-13"}),
    )
    .await;
    assert_error(s, &e, 422, "fact_before_predecessor");
    recorded(
        &w,
        &sample,
        &w.lab_b,
        json!({"kind": "retest_reported", "on": "2026-03-20"}),
    )
    .await;
    assert_eq!(
        queued(&w, "overdue", &sample).await,
        pairs(&[("disposal", "2026-06-07")])
    );
    // 核查处置 done: the follow-up closes and leaves the queue; no deadline of the sample is open.
    let v = recorded(
        &w,
        &sample,
        &w.reviewer,
        json!({"kind": "disposal_done", "on": "2026-03-25"}),
    )
    .await;
    assert_eq!(v["facts"].as_array().unwrap().len(), 6, "{v}");
    assert!(queued(&w, "overdue", &sample).await.is_empty());
    assert!(queued(&w, "due", &sample).await.is_empty());
    let (_, f) = w
        .app
        .get(&format!("/api/v1/followups/{followup}"), &w.reviewer)
        .await;
    assert_eq!(f["state"], "closed");
    assert!(f["closed_at"].is_string(), "{f}");
    assert!(followup_queue(&w).await.is_empty());
    // Every step is in the audit log; the follow-up's opening and closing under its own id.
    let actions = audit_actions(&w, &sample).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "sample_fact_recorded")
            .count(),
        6,
        "{actions:?}"
    );
    assert_eq!(
        audit_actions(&w, &followup).await,
        ["followup_opened", "followup_closed"]
    );
    // Inspectors record no facts.
    let (s, e) = fact(
        &w,
        &sample,
        &w.insp1,
        json!({"kind": "served", "on": "2026-03-12"}),
    )
    .await;
    assert_error(s, &e, 403, "forbidden");
}

async fn the_retest_window_spans_the_2026_spring_festival(app: crate::common::TestApp) {
    let w = world(app).await;
    crate::common::cover_this_and_next_year(&w.app, &w.admin).await;
    // Sampled Monday 2 February 2026, reported 不合格 Friday 6 February.
    let at = march_2_2026() - 28 * DAY;
    let sample = unqualified(
        &w,
        at,
        at + 4 * DAY,
        json!([item("铅", "0.35", "≤0.2", "unqualified")]),
    )
    .await;
    recorded(
        &w,
        &sample,
        &w.reviewer,
        json!({"kind": "bureau_notified", "on": "2026-02-09"}),
    )
    .await;
    let v = recorded(
        &w,
        &sample,
        &w.reviewer,
        json!({"kind": "served", "on": "2026-02-10"}),
    )
    .await;
    // Served Tuesday 10 February: 11, 12, 13, 14 (Saturday, 调休), then 24, 25, 26 (15–23 off).
    let window = v["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["rule"] == "retest_or_objection")
        .unwrap()
        .clone();
    assert_eq!(window["due"], "2026-02-26");
    let (s, e) = fact(
        &w,
        &sample,
        &w.reviewer,
        json!({"kind": "retest_requested", "on": "2026-02-27", "retest_lab_id": w.lab_b_id}),
    )
    .await;
    assert_error(s, &e, 422, "retest_window_closed");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2026-02-26"),
        "{e}"
    );
    let (s, e) = fact(
        &w,
        &sample,
        &w.reviewer,
        json!({"kind": "objection_filed", "on": "2026-02-27"}),
    )
    .await;
    assert_error(s, &e, 422, "objection_window_closed");
    // On the last day of the window: accepted.
    recorded(
        &w,
        &sample,
        &w.reviewer,
        json!({"kind": "retest_requested", "on": "2026-02-26", "retest_lab_id": w.lab_b_id}),
    )
    .await;
    // A 合格 sample has no later facts.
    let ok = w.submitted(at).await;
    let (s, e) = fact(
        &w,
        &ok,
        &w.reviewer,
        json!({"kind": "bureau_notified", "on": "2026-02-09"}),
    )
    .await;
    assert_error(s, &e, 409, "sample_not_unqualified");
    // Bad bodies are 422, unknown samples 404.
    let (s, e) = fact(
        &w,
        &sample,
        &w.reviewer,
        json!({"kind": "tested", "on": "2026-02-26"}),
    )
    .await;
    assert_error(s, &e, 422, "invalid_body");
    let (s, e) = fact(
        &w,
        &sample,
        &w.reviewer,
        json!({"kind": "served", "on": "26/02/2026"}),
    )
    .await;
    assert_error(s, &e, 422, "invalid_body");
    let (s, e) = fact(
        &w,
        &Uuid::new_v4().to_string(),
        &w.reviewer,
        json!({"kind": "served", "on": "2026-02-26"}),
    )
    .await;
    assert_error(s, &e, 404, "not_found");
}

async fn recent_facts_queue_as_due_and_the_followup_waits(app: crate::common::TestApp) {
    let w = world(app).await;
    crate::common::cover_this_and_next_year(&w.app, &w.admin).await;
    let now = Utc::now().timestamp_millis();
    let sample = unqualified(
        &w,
        now - 4 * 3_600_000,
        now - 600_000,
        json!([item("铅", "0.35", "≤0.2", "unqualified")]),
    )
    .await;
    let today = (Utc::now() + Duration::hours(8)).date_naive();
    let v = recorded(
        &w,
        &sample,
        &w.lab_a,
        json!({"kind": "bureau_notified", "on": today}),
    )
    .await;
    let disposal_due = (today + chrono::Days::new(90)).to_string();
    let due = queued(&w, "due", &sample).await;
    let rules: Vec<&str> = due.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(rules, ["service", "disposal"], "{due:?}");
    assert_eq!(due[1].1, disposal_due);
    assert!(queued(&w, "overdue", &sample).await.is_empty());
    assert_eq!(
        followup_queue(&w).await,
        [(sample.clone(), disposal_due, false)]
    );
    // Its samplers see the follow-up; an inspector who did not sample does not.
    let followup = v["followup_id"].as_str().unwrap();
    let (s, _) = w
        .app
        .get(&format!("/api/v1/followups/{followup}"), &w.insp2)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = w
        .app
        .get(&format!("/api/v1/followups/{followup}"), &w.outsider)
        .await;
    assert_error(s, &e, 404, "not_found");
}

async fn an_unqualified_sample_is_a_black_candidate(app: crate::common::TestApp) {
    let w = world(app).await;
    crate::common::cover_this_and_next_year(&w.app, &w.admin).await;
    let at = march_2_2026();
    let sample = unqualified(
        &w,
        at,
        at + 4 * DAY,
        json!([
            item("铅", "0.35", "≤0.2", "unqualified"),
            item("镉", "0.05", "≤0.1", "qualified")
        ]),
    )
    .await;
    let issue = |no: &str, start: &str, end: &str| {
        json!({"issue_no": no, "title": "宝坻区食品安全红黑榜", "theme": "食品安全抽检", "district": "宝坻区",
               "period_start": start, "period_end": end})
    };
    let (s, march) = w
        .app
        .post(
            "/api/v1/lists",
            &w.reviewer,
            issue("2026年第3期", "2026-03-01", "2026-03-31"),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{march}");
    let id = march["id"].as_str().unwrap().to_string();
    let (s, page) = w
        .app
        .get(&format!("/api/v1/lists/{id}/candidates"), &w.reviewer)
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["total_count"], 1, "{page}");
    let c = &page["items"][0];
    assert_eq!(c["establishment_id"], w.establishment);
    assert_eq!(c["list_type"], "black");
    assert_eq!(c["sample_id"], sample);
    assert_eq!(c["inspection_id"], Value::Null);
    assert_eq!(c["inspected_on"], "2026-03-06");
    let reason = c["reason"].as_str().unwrap().to_string();
    assert_eq!(
        reason,
        "2026年03月06日食品安全抽检（小麦粉）检验结论为“不合格”，不合格项目：铅。"
    );
    // Not red, not with both bases, not with photos.
    let entry = |list_type: &str, extra: Value| {
        let mut body = json!({"establishment_id": w.establishment, "list_type": list_type,
                              "sample_id": sample, "reason": reason});
        if list_type == "black" {
            body["measures"] = c["measures"].clone();
        }
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let path = format!("/api/v1/lists/{id}/entries");
    let (s, e) = w
        .app
        .post(&path, &w.reviewer, entry("red", json!({})))
        .await;
    assert_error(s, &e, 422, "basis_does_not_qualify");
    let (s, e) = w
        .app
        .post(
            &path,
            &w.reviewer,
            entry("black", json!({"inspection_id": Uuid::new_v4()})),
        )
        .await;
    assert_error(s, &e, 422, "basis_required");
    let (s, e) = w
        .app
        .post(
            &path,
            &w.reviewer,
            entry("black", json!({"photo_ids": [Uuid::new_v4()]})),
        )
        .await;
    assert_error(s, &e, 422, "invalid_photo");
    // In an issue of April the sample is outside the period.
    let (_, april) = w
        .app
        .post(
            "/api/v1/lists",
            &w.reviewer,
            issue("2026年第4期", "2026-04-01", "2026-04-30"),
        )
        .await;
    let april_id = april["id"].as_str().unwrap();
    let (_, none) = w
        .app
        .get(&format!("/api/v1/lists/{april_id}/candidates"), &w.reviewer)
        .await;
    assert_eq!(none["items"], json!([]), "{none}");
    let (s, e) = w
        .app
        .post(
            &format!("/api/v1/lists/{april_id}/entries"),
            &w.reviewer,
            entry("black", json!({})),
        )
        .await;
    assert_error(s, &e, 422, "basis_not_in_period");
    // Added from the candidate: the entry carries the sample.
    let (s, added) = w
        .app
        .post(&path, &w.reviewer, entry("black", json!({})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{added}");
    assert_eq!(added["sample_id"], sample);
    assert_eq!(added["inspection_id"], Value::Null);
    assert_eq!(added["result"], Value::Null);
    let (_, page) = w
        .app
        .get(&format!("/api/v1/lists/{id}/candidates"), &w.reviewer)
        .await;
    assert_eq!(page["total_count"], 0, "{page}");
    // Published: the public entry names the failed item and no person.
    let (s, p) = w
        .app
        .post(
            &format!("/api/v1/lists/{id}/publish"),
            &w.reviewer,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let res = w
        .app
        .client
        .get(w.app.url(&format!("/public/v1/lists/{id}/entries")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    assert!(body.contains("不合格项目：铅"), "{body}");
    for personal in [
        "王老五",
        "13800138000",
        "insp1",
        "insp2",
        &w.insp1_id,
        &w.insp2_id,
        "lab-a",
    ] {
        assert!(!body.contains(personal), "{personal} in {body}");
    }
}
