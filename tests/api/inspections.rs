//! The inspection detail (`GET /api/v1/inspections/{id}`), the task list's results and the
//! printable result record (`GET /api/v1/inspections/{id}/record`), over state written by the
//! real paths: sync submissions, review decisions, follow-ups opened by approval (see
//! tests/api/review_fixture.rs).

use foodcheck::auth::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{assert_error, Kind, TestApp};
use crate::review_fixture::{scene, Submission, GENERAL, KEY};

/// The day approvals that open a follow-up are decided: the Monday after the inspections
/// (10 March 2024); 10 working days later is Monday 25 March.
const APPROVED_ON: &str = "2024-03-11";
const DEADLINE: &str = "2024-03-25";

async fn spawn(kind: Kind) -> TestApp {
    TestApp::spawn_with(kind, |c| {
        c.run_workers = false;
        c.public_base_url = "https://scjg.example.gov.cn/bd".into();
    })
    .await
}

both_backends!(@spawn spawn;
    detail_has_everything_in_one_call,
    detail_is_scoped_to_the_team_and_hides_internal_notes,
    task_list_shows_results_and_review_state,
    record_prints_the_approved_result_and_nothing_internal,
    record_escapes_every_text,
);

async fn detail_has_everything_in_one_call(app: TestApp) {
    let mut s = scene(app, &["老王面馆", "小李饭店"], &["周良街道"]).await;
    // An earlier inspection at the same establishment, in another plan.
    let est = s.plans[0].tasks[0].1.clone();
    let first = s.submit(0, 0, Submission::default()).await;
    s.review(&first, json!({"decision": "approved"})).await;
    s.draw_plan("2024年第2期", 2).await;
    let task = s.plans[1].tasks.iter().position(|t| t.1 == est).unwrap();
    let iid = s
        .submit(
            1,
            task,
            Submission {
                failed: &[KEY[1], GENERAL[3], KEY[0]],
                declared: "basically_compliant",
                photo_item: Some(KEY[0]),
                note: Some("餐具未消毒"),
                ..Submission::default()
            },
        )
        .await;
    // Declared 基本符合, computed 不符合: the submission flags it.
    s.sql_photo_flags(&iid, r#"["outside_radius"]"#).await;
    let followup = s
        .approve_on(
            &iid,
            json!({"decision": "approved", "override_result": "basically_compliant",
                   "override_reason": "现场已整改部分问题"}),
            APPROVED_ON,
        )
        .await
        .expect("基本符合 opens a follow-up");

    let (st, d) = s
        .app
        .get(&format!("/api/v1/inspections/{iid}"), &s.reviewer)
        .await;
    assert_eq!(st, StatusCode::OK, "{d}");
    assert_eq!(d["id"], iid.as_str());
    assert_eq!(d["plan_id"], s.plans[1].id.as_str());
    assert_eq!(d["round_title"], "2024年第2期");
    // Failed items first, in the checklist's order, with text and key flag.
    let answers = d["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 14);
    let codes: Vec<&str> = answers
        .iter()
        .map(|a| a["item_code"].as_str().unwrap())
        .collect();
    assert_eq!(&codes[..3], &["2.3", "3.1", "3.2"], "{codes:?}");
    assert!(answers[..3].iter().all(|a| a["status"] == "fail"));
    assert!(answers[3..].iter().all(|a| a["status"] != "fail"));
    assert_eq!(answers[1]["key"], true);
    assert_eq!(answers[0]["key"], false);
    assert!(
        answers[1]["text"].as_str().unwrap().chars().count() > 4,
        "{}",
        answers[1]
    );
    assert_eq!(answers[1]["section_code"], "3");
    assert!(answers[1]["section_title"].is_string());
    assert_eq!(answers[1]["note"], "餐具未消毒");
    // Computed result with its counts and rule edition; override and effective result.
    assert_eq!(d["computed_result"], "non_compliant");
    assert_eq!(d["evaluation"]["key_failed"], 2);
    assert_eq!(d["evaluation"]["general_checked"], 7);
    assert_eq!(d["evaluation"]["general_passed"], 6);
    assert_eq!(
        d["evaluation"]["failed_items"],
        json!(["2.3", "3.1", "3.2"])
    );
    assert_eq!(d["rule_edition"], "pass_rate_2016");
    assert_eq!(d["override_result"], "basically_compliant");
    assert_eq!(d["override_reason"], "现场已整改部分问题");
    assert_eq!(d["effective_result"], "basically_compliant");
    assert_eq!(d["declared_result"], "basically_compliant");
    assert_eq!(d["flags"], json!(["declared_result_differs"]));
    assert_eq!(d["review_state"], "approved");
    // The 整改 order the approval opened.
    assert_eq!(d["followup"]["id"], followup.as_str());
    assert_eq!(d["followup"]["state"], "open");
    assert_eq!(d["followup"]["ordered_on"], APPROVED_ON);
    assert_eq!(d["followup"]["deadline"], DEADLINE);
    assert_eq!(d["followup"]["stop_operating"], false);
    // Photos with links and flags.
    let photos = d["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 1);
    let pid = photos[0]["id"].as_str().unwrap();
    assert_eq!(photos[0]["item_code"], KEY[0]);
    assert_eq!(
        photos[0]["thumbnail_url"],
        format!("/api/v1/photos/{pid}/thumbnail").as_str()
    );
    assert_eq!(
        photos[0]["preview_url"],
        format!("/api/v1/photos/{pid}/preview").as_str()
    );
    assert_eq!(photos[0]["flags"], json!(["outside_radius"]));
    assert!(photos[0].get("exif_taken_at").is_some());
    // The point as reported, in WGS-84 too, and the distance to the registered location.
    assert_eq!(d["point"]["crs"], "gcj02");
    assert_eq!(d["point"]["lng"], 117.2903);
    let wlng = d["point"]["wgs84_lng"].as_f64().unwrap();
    assert!(
        (wlng - 117.2903).abs() > 0.001 && (wlng - 117.2903).abs() < 0.02,
        "{wlng}"
    );
    assert_eq!(d["establishment"]["id"], est.as_str());
    assert_eq!(d["establishment"]["location"]["crs"], "gcj02");
    assert_eq!(d["establishment"]["license_no"].as_str().unwrap().len(), 16);
    let dist = d["distance_m"].as_f64().unwrap();
    // (117.2903, 39.7102) is about 40 m from (117.29, 39.71).
    assert!((20.0..60.0).contains(&dist), "{dist}");
    // The team with badges.
    let team = d["team"].as_array().unwrap();
    assert_eq!(team.len(), 2);
    assert!(team
        .iter()
        .all(|m| m["badge_no"].as_str().unwrap().starts_with("TJ-insp")));
    // The establishment's earlier result, not this one.
    let prev = d["previous_results"].as_array().unwrap();
    assert_eq!(prev.len(), 1, "{prev:?}");
    assert_eq!(prev[0]["inspection_id"], first.as_str());
    assert_eq!(prev[0]["effective_result"], "compliant");
    assert_eq!(prev[0]["review_state"], "approved");
    assert_eq!(prev[0]["round_title"], "2024年第1期");

    // Unknown ids: 404; labs: 403.
    let (st, b) = s
        .app
        .get(
            "/api/v1/inspections/00000000-0000-4000-8000-00000000dead",
            &s.reviewer,
        )
        .await;
    assert_error(st, &b, 404, "not_found");
    let lab = s.app.token_for("lab", Role::Lab).await;
    let (st, b) = s.app.get(&format!("/api/v1/inspections/{iid}"), &lab).await;
    assert_error(st, &b, 403, "forbidden");
}

async fn detail_is_scoped_to_the_team_and_hides_internal_notes(app: TestApp) {
    let s = scene(app, &["老王面馆", "小李饭店"], &["周良街道"]).await;
    let sub = || Submission {
        failed: &[KEY[0]],
        ..Submission::default()
    };
    let iid = s.submit(0, 0, sub()).await;
    s.review(
        &iid,
        json!({"decision": "returned", "comment": "请补拍3.1照片",
               "item_comments": [{"item_code": "3.1", "comment": "照片模糊"}],
               "internal_note": "内部：该店上次也有类似问题"}),
    )
    .await;
    s.resubmit(0, 0, &iid, sub()).await;
    s.approve_on(
        &iid,
        json!({"decision": "approved", "internal_note": "第二次"}),
        APPROVED_ON,
    )
    .await;

    let (st, d) = s
        .app
        .get(&format!("/api/v1/inspections/{iid}"), &s.reviewer)
        .await;
    assert_eq!(st, StatusCode::OK, "{d}");
    let reviews = d["reviews"].as_array().unwrap();
    assert_eq!(reviews.len(), 2);
    assert_eq!(reviews[0]["decision"], "returned");
    assert_eq!(reviews[0]["round"], 1);
    assert_eq!(reviews[0]["comment"], "请补拍3.1照片");
    assert_eq!(reviews[0]["item_comments"][0]["comment"], "照片模糊");
    assert_eq!(reviews[0]["internal_note"], "内部：该店上次也有类似问题");
    assert_eq!(reviews[0]["reviewer_name"], "Name of reviewer");
    assert_eq!(reviews[1]["decision"], "approved");
    assert_eq!(reviews[1]["round"], 2);
    assert_eq!(reviews[1]["internal_note"], "第二次");

    // A member of the task's team reads it without internal notes.
    let member = s.token(&s.plans[0].tasks[0].2[1]).await;
    let (st, m) = s
        .app
        .get(&format!("/api/v1/inspections/{iid}"), &member)
        .await;
    assert_eq!(st, StatusCode::OK, "{m}");
    assert_eq!(m["reviews"][0]["comment"], "请补拍3.1照片");
    assert!(
        m["reviews"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.get("internal_note").is_none()),
        "{m}"
    );
    assert!(!m.to_string().contains("内部"), "{m}");
    assert!(!m.to_string().contains("第二次"), "{m}");
    // Another team's inspector: exactly as a missing id.
    let other = s.token(&s.outsider(0, 0)).await;
    let (st, b) = s
        .app
        .get(&format!("/api/v1/inspections/{iid}"), &other)
        .await;
    assert_error(st, &b, 404, "not_found");
    let (st2, b2) = s
        .app
        .get(
            "/api/v1/inspections/00000000-0000-4000-8000-00000000dead",
            &other,
        )
        .await;
    assert_eq!(
        (st, b["error"]["message"].clone()),
        (st2, b2["error"]["message"].clone())
    );
}

async fn task_list_shows_results_and_review_state(app: TestApp) {
    let s = scene(app, &["老王面馆", "小李饭店"], &["周良街道"]).await;
    let iid = s
        .submit(
            0,
            0,
            Submission {
                failed: &[KEY[0], KEY[1]],
                ..Submission::default()
            },
        )
        .await;
    s.approve_on(
        &iid,
        json!({"decision": "approved", "override_result": "basically_compliant",
               "override_reason": "理由"}),
        APPROVED_ON,
    )
    .await;
    let (st, tasks) = s
        .app
        .get(
            &format!("/api/v1/tasks?plan_id={}", s.plans[0].id),
            &s.reviewer,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{tasks}");
    let items = tasks["items"].as_array().unwrap();
    let done = items
        .iter()
        .find(|t| t["id"] == s.plans[0].tasks[0].0.as_str())
        .unwrap();
    assert_eq!(
        done["result"],
        json!({"inspection_id": iid, "review_state": "approved", "computed_result": "non_compliant",
               "override_result": "basically_compliant", "effective_result": "basically_compliant"})
    );
    let open = items
        .iter()
        .find(|t| t["id"] == s.plans[0].tasks[1].0.as_str())
        .unwrap();
    assert_eq!(open["result"], Value::Null);
    // The team sees its own task's result too.
    let member = s.token(&s.plans[0].tasks[0].2[0]).await;
    let (_, mine) = s
        .app
        .get(&format!("/api/v1/tasks/{}", s.plans[0].tasks[0].0), &member)
        .await;
    assert_eq!(mine["result"]["effective_result"], "basically_compliant");
    // GET /api/v1/inspections?task_id= still works.
    let (st, list) = s
        .app
        .get(
            &format!("/api/v1/inspections?task_id={}", s.plans[0].tasks[0].0),
            &s.reviewer,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0]["id"], iid.as_str());
}

async fn get_html(app: &TestApp, path: &str, token: &str) -> (StatusCode, String, String) {
    let res = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, res.text().await.unwrap())
}

async fn record_prints_the_approved_result_and_nothing_internal(app: TestApp) {
    let s = scene(app, &["老王面馆"], &["周良街道"]).await;
    // One key item failed: 基本符合, overridden to 不符合 on approval (立即停止经营 and 立案 are
    // for 不符合 only).
    let sub = || Submission {
        failed: &[KEY[0]],
        business_opinion: Some("已知悉，将按期整改"),
        refused: true,
        ..Submission::default()
    };
    let iid = s.submit(0, 0, sub()).await;
    let path = format!("/api/v1/inspections/{iid}/record");
    // Not approved yet (submitted, then returned): 409.
    let (st, b) = s.app.get(&path, &s.reviewer).await;
    assert_error(st, &b, 409, "not_approved");
    s.review(
        &iid,
        json!({"decision": "returned", "comment": "RETURN-COMMENT-7f3",
               "item_comments": [{"item_code": "3.1", "comment": "ITEM-COMMENT-7f3"}],
               "internal_note": "INTERNAL-NOTE-7f3"}),
    )
    .await;
    let (st, b) = s.app.get(&path, &s.reviewer).await;
    assert_error(st, &b, 409, "not_approved");
    s.resubmit(0, 0, &iid, sub()).await;
    s.approve_on(
        &iid,
        json!({"decision": "approved", "comment": "APPROVE-COMMENT-7f3",
               "internal_note": "INTERNAL-NOTE-2-7f3", "override_result": "non_compliant",
               "override_reason": "OVERRIDE-REASON-7f3",
               "followup": {"stop_operating": true, "case_opened": true}}),
        APPROVED_ON,
    )
    .await
    .expect("不符合 opens a follow-up");

    let (st, ct, html) = get_html(&s.app, &path, &s.reviewer).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(ct.starts_with("text/html"), "{ct}");
    for want in [
        "监督检查结果记录表",
        "老王面馆",
        "老王面馆餐饮有限公司",
        "JY21201150000000",
        "周良街道0号",
        "2024-03-10",
        "2024年第1期",
        "*3.1",
        "*3.2",
        "☑不符合",
        "☐基本符合",
        "☐符合",
        "复核认定：不符合（系统判定：基本符合）",
        "限期整改",
        "立即停止经营",
        "立案调查",
        DEADLINE,
        "Name of insp",
        "TJ-insp",
        "已知悉，将按期整改",
        "拒绝签字",
        "<svg",
        "https://scjg.example.gov.cn/bd/public/establishments/",
        "@page",
        "A4",
    ] {
        assert!(html.contains(want), "the record lacks {want:?}:\n{html}");
    }
    // The QR code opens the establishment's public page.
    let est = &s.plans[0].tasks[0].1;
    assert!(html.contains(&format!("/public/establishments/{est}")));
    // Failed items first, marked.
    let failed_row = html.find("class=\"failed\" data-item=\"3.1\"").unwrap();
    let passed_row = html.find("class=\"pass\"").unwrap();
    assert!(failed_row < passed_row);
    assert!(!html.contains("{{"), "an unfilled placeholder");
    // Never the section's own texts.
    for secret in [
        "RETURN-COMMENT",
        "ITEM-COMMENT",
        "INTERNAL-NOTE",
        "APPROVE-COMMENT",
        "OVERRIDE-REASON",
    ] {
        assert!(!html.contains(secret), "{secret} is on the record");
    }
    // Admins too; inspectors and labs not; unknown ids 404.
    let (st, _, _) = get_html(&s.app, &path, &s.admin).await;
    assert_eq!(st, StatusCode::OK);
    let member = s.token(&s.plans[0].tasks[0].2[0]).await;
    let (st, b) = s.app.get(&path, &member).await;
    assert_error(st, &b, 403, "forbidden");
    let (st, b) = s
        .app
        .get(
            "/api/v1/inspections/00000000-0000-4000-8000-00000000dead/record",
            &s.reviewer,
        )
        .await;
    assert_error(st, &b, 404, "not_found");
}

async fn record_escapes_every_text(app: TestApp) {
    let evil = "<script>alert(1)</script>&\"'";
    let s = scene(app, &["<b>黑店</b>&\"'"], &["<i>镇</i>"]).await;
    let iid = s
        .submit(
            0,
            0,
            Submission {
                business_opinion: Some(evil),
                ..Submission::default()
            },
        )
        .await;
    s.review(&iid, json!({"decision": "approved"})).await;
    let (st, _, html) = get_html(
        &s.app,
        &format!("/api/v1/inspections/{iid}/record"),
        &s.reviewer,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<b>黑店"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;"),
        "{html}"
    );
    assert!(
        html.contains("&lt;b&gt;黑店&lt;/b&gt;&amp;&quot;&#39;"),
        "{html}"
    );
    assert!(html.contains("☑符合"));
    assert!(html.contains("已签字：王店长"));
}
