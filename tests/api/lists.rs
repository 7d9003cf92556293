//! The red/black list (红黑榜) write side through the real paths: a plan drawn, inspections
//! pushed by sync and approved by the review endpoint (tests/api/review_fixture.rs), then
//! candidates → entries → publish → revision → publish → a red entry revoked by a later
//! failing approval → a black entry rectified after its follow-up's recheck passed.

use foodcheck::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{assert_error, cover_this_and_next_year, TestApp};
use crate::review_fixture::{scene, Scene, Submission, GENERAL, KEY};

both_backends!(
    lifecycle_from_candidates_to_rectification,
    refusals_change_nothing,
    concurrent_publishes_one_wins,
    published_rows_resist_direct_sql,
    only_the_office_composes_lists,
);

fn today() -> chrono::NaiveDate {
    foodcheck::clock::BureauZone::SHANGHAI.date_at(chrono::Utc::now())
}

fn new_issue(no: &str) -> Value {
    let t = today();
    json!({"issue_no": no, "title": "武清区餐饮服务红黑榜", "theme": "餐饮具清洗消毒", "district": "武清区",
           "period_start": (t - chrono::Days::new(30)).to_string(), "period_end": t.to_string()})
}

/// Three establishments: 甲 compliant, 乙 不符合 (two key items failed, ordered to stop
/// operating), 丙 基本符合 (one general item failed); all approved through the review endpoint.
/// Returns the scene and the inspection ids.
async fn world(app: TestApp) -> (Scene, [String; 3]) {
    let s = scene(
        app,
        &["甲餐厅", "乙餐厅", "丙餐厅"],
        &["河西务镇", "杨村街道"],
    )
    .await;
    cover_this_and_next_year(&s.app, &s.admin).await;
    let a = s.submit(0, 0, Submission::default()).await;
    let b = s
        .submit(
            0,
            1,
            Submission {
                failed: &[KEY[0], KEY[1]],
                declared: "non_compliant",
                ..Submission::default()
            },
        )
        .await;
    let c = s
        .submit(
            0,
            2,
            Submission {
                failed: &[GENERAL[0]],
                declared: "basically_compliant",
                ..Submission::default()
            },
        )
        .await;
    s.review(&a, json!({"decision": "approved"})).await;
    s.review(
        &b,
        json!({"decision": "approved", "internal_note": "内部意见-不公开",
               "followup": {"stop_operating": true, "period_working_days": 5}}),
    )
    .await;
    s.review(&c, json!({"decision": "approved"})).await;
    (s, [a, b, c])
}

fn est(s: &Scene, task: usize) -> String {
    s.plans[0].tasks[task].1.clone()
}

async fn create(s: &Scene, no: &str) -> Value {
    let (st, i) = s
        .app
        .post("/api/v1/lists", &s.reviewer, new_issue(no))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{i}");
    i
}

async fn detail(s: &Scene, id: &str) -> Value {
    let (st, d) = s.app.get(&format!("/api/v1/lists/{id}"), &s.reviewer).await;
    assert_eq!(st, StatusCode::OK, "{d}");
    d
}

async fn lifecycle_from_candidates_to_rectification(app: TestApp) {
    let (mut s, [a, b, _c]) = world(app).await;
    // The public reads below go through another instance, which caches rendered pages: each
    // change made through the first must show there at once.
    let other = s.app.second_instance().await;
    let (none, _) = public_json(&other, "/public/v1/lists").await;
    assert_eq!(none["meta"]["total_count"], 0);
    let issue = create(&s, "2026年第11期").await;
    let id = issue["id"].as_str().unwrap().to_string();
    assert_eq!(issue["state"], "draft");
    assert_eq!(issue["revision"], 1);
    assert_eq!(issue["criteria"]["look_back_days"], 365);

    // Candidates: 甲 red, 乙 black with the failed key items' text and the order's measures;
    // 丙 (基本符合, no key failure) is neither.
    let (st, cands) = s
        .app
        .get(&format!("/api/v1/lists/{id}/candidates"), &s.reviewer)
        .await;
    assert_eq!(st, StatusCode::OK, "{cands}");
    assert_eq!(cands["total_count"], 3);
    let items = cands["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{cands}");
    let red = items
        .iter()
        .find(|c| c["establishment_id"] == est(&s, 0))
        .unwrap();
    let black = items
        .iter()
        .find(|c| c["establishment_id"] == est(&s, 1))
        .unwrap();
    assert_eq!(red["list_type"], "red");
    assert_eq!(red["inspection_id"], a.as_str());
    assert_eq!(red["measures"], Value::Null);
    assert_eq!(black["list_type"], "black");
    assert_eq!(black["result"], "non_compliant");
    assert_eq!(black["failed_key_items"].as_array().unwrap().len(), 2);
    let reason = black["reason"].as_str().unwrap();
    assert!(
        reason.contains("不符合") && reason.contains(KEY[0]),
        "{reason}"
    );
    assert!(!reason.contains("内部意见"), "{reason}");
    assert_eq!(
        black["measures"],
        "责令停止经营；下达责令改正通知书，限期5个工作日整改"
    );

    // Entries from the candidates.
    let mut entry_ids = Vec::new();
    for c in [red, black] {
        let (st, e) = s
            .app
            .post(
                &format!("/api/v1/lists/{id}/entries"),
                &s.reviewer,
                json!({"establishment_id": c["establishment_id"], "list_type": c["list_type"],
                       "inspection_id": c["inspection_id"], "reason": c["reason"], "measures": c["measures"]}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{e}");
        assert_eq!(e["sign_name"].as_str().unwrap().chars().count(), 3);
        assert_eq!(e["inspected_on"], today().to_string());
        // The WGS-84 point, not the GCJ-02 one the registry was given.
        assert!((e["lng"].as_f64().unwrap() - 117.29).abs() > 1e-4, "{e}");
        entry_ids.push(e["id"].as_str().unwrap().to_string());
    }
    let (st, e) = s
        .app
        .call(
            Method::PATCH,
            &format!("/api/v1/lists/{id}/entries/{}", entry_ids[0]),
            Some(&s.reviewer),
            Some(json!({"reason": "检查项目全部符合要求，予以表扬。"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(e["reason"], "检查项目全部符合要求，予以表扬。");
    // Already-listed establishments are no longer candidates.
    let (_, cands) = s
        .app
        .get(&format!("/api/v1/lists/{id}/candidates"), &s.reviewer)
        .await;
    assert_eq!(cands["total_count"], 1);
    assert_eq!(cands["items"], json!([]));

    // Publish: the checkpoint is taken first and stored.
    let (st, p) = s
        .app
        .post(
            &format!("/api/v1/lists/{id}/publish"),
            &s.reviewer,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["state"], "published");
    assert!(p["checkpoint"].as_str().unwrap().contains('\n'), "{p}");
    assert_eq!(p["entries"].as_array().unwrap().len(), 2);
    let (pubd, _) = public_json(&other, "/public/v1/lists").await;
    assert_eq!(pubd["meta"]["total_count"], 1, "{pubd}");
    let (_, first_etag) = public_json(&other, &format!("/public/v1/lists/{id}/entries")).await;

    // A revision: a new draft with the entries copied and the public note.
    let (st, r) = s
        .app
        .post(
            &format!("/api/v1/lists/{id}/revisions"),
            &s.reviewer,
            json!({"note": "更正乙餐厅的处理措施"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let rid = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["revision"], 2);
    assert_eq!(r["revises_id"], id.as_str());
    assert_eq!(r["state"], "draft");
    assert_eq!(r["entries"].as_array().unwrap().len(), 2);
    let (st, e) = s
        .app
        .post(
            &format!("/api/v1/lists/{id}/revisions"),
            &s.reviewer,
            json!({"note": "再次更正"}),
        )
        .await;
    assert_error(st, &e, 409, "revision_exists");
    let new_black = r["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["list_type"] == "black")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, e) = s
        .app
        .call(
            Method::PATCH,
            &format!("/api/v1/lists/{rid}/entries/{new_black}"),
            Some(&s.reviewer),
            Some(json!({"measures": "责令停止经营；下达责令改正通知书，限期5个工作日整改；立案调查"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    let (st, p2) = s
        .app
        .post(&format!("/api/v1/lists/{rid}/publish"), &s.admin, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{p2}");
    let old = detail(&s, &id).await;
    assert_eq!(old["superseded_by"], rid.as_str());
    let (pubd, _) = public_json(&other, "/public/v1/lists").await;
    assert_eq!(pubd["meta"]["total_count"], 2, "{pubd}");
    let first = pubd["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str());
    assert_eq!(first.unwrap()["superseded_by"], rid.as_str(), "{pubd}");
    let (entries, _) = public_json(&other, &format!("/public/v1/lists/{rid}/entries")).await;
    assert!(entries["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["revocation"].is_null()));
    // The listing pages by state, newest first.
    let (st, l) = s
        .app
        .get("/api/v1/lists?state=published&page_size=1", &s.reviewer)
        .await;
    assert_eq!(st, StatusCode::OK, "{l}");
    assert_eq!(l["total_count"], 2);
    assert_eq!(l["items"].as_array().unwrap().len(), 1);
    let (_, l) = s.app.get("/api/v1/lists?state=draft", &s.reviewer).await;
    assert_eq!(l["total_count"], 0);
    let (st, e) = s.app.get("/api/v1/lists?state=nope", &s.reviewer).await;
    assert_error(st, &e, 400, "bad_request");
    // The superseded issue is not revised again.
    let (st, e) = s
        .app
        .post(
            &format!("/api/v1/lists/{id}/revisions"),
            &s.reviewer,
            json!({"note": "x"}),
        )
        .await;
    assert_error(st, &e, 409, "issue_superseded");

    // A later failing approval at 甲 revokes its red entry in the current revision only.
    let p1 = s.draw_plan("2024年第2期", 3).await;
    let t = s.plans[p1]
        .tasks
        .iter()
        .position(|t| t.1 == est(&s, 0))
        .unwrap();
    let fail = s
        .submit(
            p1,
            t,
            Submission {
                failed: &[KEY[2], KEY[3]],
                declared: "non_compliant",
                ..Submission::default()
            },
        )
        .await;
    s.review(
        &fail,
        json!({"decision": "approved", "comment": "审核意见-不公开"}),
    )
    .await;
    let cur = detail(&s, &rid).await;
    let red_entry = cur["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["list_type"] == "red")
        .unwrap()
        .clone();
    let updates = red_entry["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 1, "{red_entry}");
    assert_eq!(updates[0]["kind"], "revoked");
    assert_eq!(updates[0]["created_by"], "system");
    assert_eq!(updates[0]["occurred_on"], today().to_string());
    let text = updates[0]["text"].as_str().unwrap();
    assert!(
        text.contains("不符合") && !text.contains("审核意见"),
        "{text}"
    );
    let (entries, _) = public_json(&other, &format!("/public/v1/lists/{rid}/entries")).await;
    let red_public = entries["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["list_type"] == "red");
    assert!(
        red_public.unwrap()["revocation"]["text"].is_string(),
        "{entries}"
    );
    // The superseded issue's page did not change, and keeps its tag.
    let (_, etag) = public_json(&other, &format!("/public/v1/lists/{id}/entries")).await;
    assert_eq!(etag, first_etag);
    // The superseded issue's entry is left as published.
    let old = detail(&s, &id).await;
    assert!(old["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["updates"] == json!([])));
    // Revoking by hand again: 409.
    let red_id = red_entry["id"].as_str().unwrap();
    let (st, e) = s
        .app
        .post(
            &format!("/api/v1/lists/entries/{red_id}/revocation"),
            &s.reviewer,
            json!({"reason": "x"}),
        )
        .await;
    assert_error(st, &e, 409, "already_revoked");

    // 乙's follow-up: the recheck is scheduled, pulled and submitted passed (closed), then the
    // recheck inspection approved; only then the black entry is rectified.
    let (_, f) = s
        .app
        .get(&format!("/api/v1/inspections/{b}"), &s.reviewer)
        .await;
    let followup = f["followup"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{f}"))
        .to_string();
    let recheck_task = s.schedule_recheck_on(&followup, &today().to_string()).await;
    let members = s.plans[0].tasks[1].2.clone();
    let black_est = est(&s, 1);
    s.plans[0].tasks.push((recheck_task, black_est, members));
    let recheck = s.submit(0, 3, Submission::default()).await;
    let (st, e) = s
        .app
        .post(
            &format!("/api/v1/lists/entries/{new_black}/rectification"),
            &s.reviewer,
            json!({"followup_id": followup}),
        )
        .await;
    assert_error(st, &e, 422, "recheck_not_passed");
    s.review(&recheck, json!({"decision": "approved"})).await;
    // The superseded issue's entry refuses; the current one takes it.
    let old_black = &entry_ids[1];
    let (st, e) = s
        .app
        .post(
            &format!("/api/v1/lists/entries/{old_black}/rectification"),
            &s.reviewer,
            json!({"followup_id": followup}),
        )
        .await;
    assert_error(st, &e, 409, "issue_superseded");
    let (st, e) = s
        .app
        .post(
            &format!("/api/v1/lists/entries/{new_black}/rectification"),
            &s.reviewer,
            json!({"followup_id": followup}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    let u = &e["updates"][0];
    assert_eq!(u["kind"], "rectified");
    assert_eq!(u["occurred_on"], today().to_string());
    assert_eq!(u["inspection_id"], recheck.as_str());
    assert!(u["text"].as_str().unwrap().contains("复查合格"));
    let (st, e) = s
        .app
        .post(
            &format!("/api/v1/lists/entries/{new_black}/rectification"),
            &s.reviewer,
            json!({"followup_id": followup}),
        )
        .await;
    assert_error(st, &e, 409, "already_rectified");
    let (entries, _) = public_json(&other, &format!("/public/v1/lists/{rid}/entries")).await;
    let black_public = entries["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == new_black.as_str());
    assert_eq!(
        black_public.unwrap()["rectification"]["occurred_on"],
        today().to_string(),
        "{entries}"
    );

    // Every step is in the audit log.
    let mut conn = s.app.db().acquire().await.unwrap();
    let actions: Vec<(String,)> = sqlx::query_as(
        "SELECT action FROM audit_events WHERE record_type IN ('list_issue', 'list_entry') ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let actions: Vec<&str> = actions.iter().map(|a| a.0.as_str()).collect();
    for want in [
        "list_issue_created",
        "list_entry_added",
        "list_entry_updated",
        "list_issue_published",
        "list_revision_created",
        "list_issue_superseded",
        "list_entry_revoked",
        "list_entry_rectified",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }

    // The plan's results are published once.
    let plan = s.plans[0].id.clone();
    let path = format!("/api/v1/plans/{plan}/publish-results");
    let (st, r) = s.app.post(&path, &s.reviewer, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let (st, e) = s.app.post(&path, &s.admin, json!({})).await;
    assert_error(st, &e, 409, "already_published");

    // What the public sees: both revisions (the first marked superseded), the current one's
    // lifecycle on its entries, never a draft, and nothing personal or internal on any route.
    let draft = create(&s, "2026年第12期").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _, body) = crate::public_data::get(&s.app, "/public/v1/lists").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let issues: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(issues["meta"]["total_count"], 2, "{issues}");
    let first = issues["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap();
    assert_eq!(first["superseded_by"], rid.as_str());
    let (_, _, body) =
        crate::public_data::get(&s.app, &format!("/public/v1/lists/{rid}/entries")).await;
    let entries: Value = serde_json::from_str(&body).unwrap();
    let by_id = |e: &str| {
        entries["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == e)
            .cloned()
            .unwrap_or_else(|| panic!("{e} not public: {entries}"))
    };
    assert!(by_id(red_id)["revocation"]["text"].is_string());
    assert_eq!(
        by_id(&new_black)["rectification"]["occurred_on"],
        today().to_string()
    );
    // Across issues, only the current revision is listed.
    let (_, _, body) = crate::public_data::get(&s.app, "/public/v1/entries").await;
    let all: Value = serde_json::from_str(&body).unwrap();
    assert!(all["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["issue_id"] == rid.as_str()));
    for path in [
        format!("/public/v1/lists/{draft}"),
        format!("/public/lists/{draft}"),
    ] {
        let (st, _, _) = crate::public_data::get(&s.app, &path).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}: a draft is public");
    }
    let mut secrets = crate::public_data::secrets(&s);
    secrets.extend(["内部意见".to_string(), "审核意见".to_string()]);
    let ids = crate::public_data::CrawlIds {
        lists: vec![id.clone(), rid.clone(), draft],
        establishments: (0..3).map(|t| est(&s, t)).collect(),
        plans: s.plans.iter().map(|p| p.id.clone()).collect(),
        photos: vec!["00000000-0000-4000-8000-00000000beef".into()],
        // The announcement routes without an id are visited here; those with one after the
        // announcement scenario (tests/api/announcements.rs).
        announcements: Vec::new(),
    };
    let read = crate::public_data::crawl(&s.app, &ids, &secrets).await;
    assert!(read >= 30, "the crawl read only {read} pages");
    crate::public_data::exports_read_back(&s.app, &rid, &secrets).await;
    for t in 0..3 {
        crate::public_data::history_exports_read_back(&s.app, &est(&s, t), &secrets).await;
    }
}

/// Rows of the list tables and their audit events: what a refused request must not change.
async fn footprint(s: &Scene) -> Vec<i64> {
    let mut out = Vec::new();
    for sql in [
        "SELECT COUNT(*) FROM list_issues",
        "SELECT COUNT(*) FROM list_entries",
        "SELECT COUNT(*) FROM list_entry_photos",
        "SELECT COUNT(*) FROM list_entry_updates",
        "SELECT COUNT(*) FROM audit_events",
        "SELECT COUNT(*) FROM plans WHERE results_published_at IS NOT NULL",
    ] {
        let (n,): (i64,) = sqlx::query_as(sql)
            .fetch_one(s.app.db().pool())
            .await
            .unwrap();
        out.push(n);
    }
    out
}

async fn refusals_change_nothing(app: TestApp) {
    let (s, [a, b, c]) = world(app).await;
    let issue = create(&s, "2026年第12期").await;
    let id = issue["id"].as_str().unwrap().to_string();
    // A photo record of 甲's inspection that is not processed (no bytes uploaded).
    let unprocessed: (String,) = sqlx::query_as("SELECT id FROM photos LIMIT 1")
        .fetch_optional(s.app.db().pool())
        .await
        .unwrap()
        .unwrap_or(("00000000-0000-4000-8000-000000000001".into(),));
    let (st, e) = s
        .app
        .post(
            &format!("/api/v1/lists/{id}/entries"),
            &s.reviewer,
            json!({"establishment_id": est(&s, 0), "list_type": "red", "inspection_id": a, "reason": "好"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{e}");
    let entry = e["id"].as_str().unwrap().to_string();

    let before = footprint(&s).await;
    let before_detail = detail(&s, &id).await;
    let t = today();
    let entries = format!("/api/v1/lists/{id}/entries");
    let cases: Vec<(Method, String, Value, u16, &str)> = vec![
        (
            Method::POST,
            "/api/v1/lists".into(),
            new_issue("2026年第12期"),
            409,
            "duplicate",
        ),
        (
            Method::POST,
            "/api/v1/lists".into(),
            json!({"issue_no": "x", "title": "t", "theme": "t", "district": "d", "period_start": "2026-13-01", "period_end": t.to_string()}),
            422,
            "validation_failed",
        ),
        (
            Method::POST,
            "/api/v1/lists".into(),
            json!({"issue_no": "x", "title": "t", "theme": "t", "district": "d", "period_start": t.to_string(), "period_end": "2020-01-01"}),
            422,
            "validation_failed",
        ),
        (
            Method::POST,
            "/api/v1/lists".into(),
            json!({"issue_no": "", "title": "t", "theme": "t", "district": "d", "period_start": t.to_string(), "period_end": t.to_string()}),
            422,
            "validation_failed",
        ),
        (
            Method::POST,
            entries.clone(),
            json!({"establishment_id": est(&s, 0), "list_type": "red", "inspection_id": a, "reason": "再次"}),
            409,
            "duplicate",
        ),
        (
            Method::POST,
            entries.clone(),
            json!({"establishment_id": est(&s, 1), "list_type": "red", "inspection_id": b, "reason": "x"}),
            422,
            "basis_does_not_qualify",
        ),
        (
            Method::POST,
            entries.clone(),
            json!({"establishment_id": est(&s, 2), "list_type": "black", "inspection_id": c, "reason": "x", "measures": "m"}),
            422,
            "basis_does_not_qualify",
        ),
        (
            Method::POST,
            entries.clone(),
            json!({"establishment_id": est(&s, 2), "list_type": "red", "inspection_id": c, "reason": "x"}),
            422,
            "basis_does_not_qualify",
        ),
        (
            Method::POST,
            entries.clone(),
            json!({"establishment_id": est(&s, 2), "list_type": "black", "inspection_id": b, "reason": "x", "measures": "m"}),
            422,
            "basis_not_found",
        ),
        (
            Method::POST,
            entries.clone(),
            json!({"establishment_id": est(&s, 1), "list_type": "black", "inspection_id": b, "reason": "x"}),
            422,
            "validation_failed",
        ),
        (
            Method::POST,
            entries.clone(),
            json!({"establishment_id": est(&s, 1), "list_type": "black", "inspection_id": b, "reason": "x", "measures": "m",
                   "photo_ids": [unprocessed.0]}),
            422,
            "invalid_photo",
        ),
        (
            Method::PATCH,
            format!("{entries}/{entry}"),
            json!({"measures": "红榜无措施"}),
            422,
            "validation_failed",
        ),
        (
            Method::PATCH,
            format!("{entries}/{entry}"),
            json!({"reason": "字".repeat(501)}),
            422,
            "validation_failed",
        ),
        (
            Method::POST,
            format!("/api/v1/lists/{id}/revisions"),
            json!({"note": "n"}),
            409,
            "issue_not_published",
        ),
        (
            Method::POST,
            format!("/api/v1/lists/entries/{entry}/revocation"),
            json!({"reason": "r"}),
            409,
            "issue_not_published",
        ),
        (
            Method::POST,
            format!("/api/v1/lists/entries/{entry}/rectification"),
            json!({"followup_id": "00000000-0000-4000-8000-000000000002"}),
            422,
            "unknown_followup",
        ),
        (
            Method::POST,
            format!(
                "/api/v1/plans/{}/publish-results",
                "00000000-0000-4000-8000-000000000003"
            ),
            json!({}),
            404,
            "not_found",
        ),
    ];
    for (m, path, body, status, code) in cases {
        let (st, e) = s
            .app
            .call(m.clone(), &path, Some(&s.reviewer), Some(body))
            .await;
        assert_error(st, &e, status, code);
        assert_eq!(footprint(&s).await, before, "{m} {path} changed something");
    }
    // An empty issue is not published.
    let empty = create(&s, "2026年第13期").await;
    let before = footprint(&s).await;
    let (st, e) = s
        .app
        .post(
            &format!("/api/v1/lists/{}/publish", empty["id"].as_str().unwrap()),
            &s.reviewer,
            json!({}),
        )
        .await;
    assert_error(st, &e, 422, "empty_issue");
    assert_eq!(footprint(&s).await, before);
    assert_eq!(detail(&s, &id).await, before_detail);

    // Once published, nothing about the issue's entries changes through the API.
    let (st, p) = s
        .app
        .post(
            &format!("/api/v1/lists/{id}/publish"),
            &s.reviewer,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let published = detail(&s, &id).await;
    let before = footprint(&s).await;
    for (m, path, body) in [
        (
            Method::POST,
            entries.clone(),
            json!({"establishment_id": est(&s, 1), "list_type": "black", "inspection_id": b, "reason": "x", "measures": "m"}),
        ),
        (
            Method::PATCH,
            format!("{entries}/{entry}"),
            json!({"reason": "改"}),
        ),
        (Method::DELETE, format!("{entries}/{entry}"), Value::Null),
        (
            Method::POST,
            format!("/api/v1/lists/{id}/publish"),
            json!({}),
        ),
    ] {
        let body = (!body.is_null()).then_some(body);
        let (st, e) = s.app.call(m.clone(), &path, Some(&s.reviewer), body).await;
        assert_error(st, &e, 409, "issue_published");
        assert_eq!(footprint(&s).await, before, "{m} {path} changed something");
    }
    assert_eq!(detail(&s, &id).await, published);
}

async fn concurrent_publishes_one_wins(app: TestApp) {
    let (s, [a, b, _]) = world(app).await;
    let issue = create(&s, "2026年第14期").await;
    let id = issue["id"].as_str().unwrap().to_string();
    let (st, e) = s
        .app
        .post(
            &format!("/api/v1/lists/{id}/entries"),
            &s.reviewer,
            json!({"establishment_id": est(&s, 0), "list_type": "red", "inspection_id": a, "reason": "好"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{e}");
    let path = format!("/api/v1/lists/{id}/publish");
    // An entry added while the issue is being published either makes it in before the
    // publication (and into its stored counts) or is refused; never in after.
    let entries_path = format!("/api/v1/lists/{id}/entries");
    let (x, y, add) = tokio::join!(
        s.app.post(&path, &s.reviewer, json!({})),
        s.app.post(&path, &s.admin, json!({})),
        s.app.post(
            &entries_path,
            &s.reviewer,
            json!({"establishment_id": est(&s, 1), "list_type": "black", "inspection_id": b,
                   "reason": "差", "measures": "责令改正通知书"}),
        ),
    );
    let mut statuses = [x.0.as_u16(), y.0.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} {}", x.1, y.1);
    assert!(
        [StatusCode::CREATED, StatusCode::CONFLICT].contains(&add.0),
        "{} {}",
        add.0,
        add.1
    );
    let (entries,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM list_entries WHERE issue_id = $1")
            .bind(&id)
            .fetch_one(s.app.db().pool())
            .await
            .unwrap();
    assert_eq!(entries, if add.0 == StatusCode::CREATED { 2 } else { 1 });
    let (_, _, body) = crate::public_data::get(&s.app, &format!("/public/v1/lists/{id}")).await;
    let public: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        public["red_count"].as_i64().unwrap() + public["black_count"].as_i64().unwrap(),
        entries,
        "{public}"
    );
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'list_issue_published' AND record_id = $1",
    )
    .bind(&id)
    .fetch_one(s.app.db().pool())
    .await
    .unwrap();
    assert_eq!(n, 1);
}

async fn published_rows_resist_direct_sql(app: TestApp) {
    let (s, [a, b, _]) = world(app).await;
    let issue = create(&s, "2026年第15期").await;
    let id = issue["id"].as_str().unwrap().to_string();
    let (_, e) = s
        .app
        .post(
            &format!("/api/v1/lists/{id}/entries"),
            &s.reviewer,
            json!({"establishment_id": est(&s, 0), "list_type": "red", "inspection_id": a, "reason": "好"}),
        )
        .await;
    let entry = e["id"].as_str().unwrap().to_string();
    let (st, p) = s
        .app
        .post(
            &format!("/api/v1/lists/{id}/publish"),
            &s.reviewer,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let pool = s.app.db().pool();
    for (sql, bind) in [
        (
            "UPDATE list_entries SET reason = 'tampered' WHERE id = $1",
            &entry,
        ),
        ("DELETE FROM list_entries WHERE id = $1", &entry),
        (
            "UPDATE list_issues SET title = 'tampered' WHERE id = $1",
            &id,
        ),
        (
            "UPDATE list_issues SET red_count = red_count + 1 WHERE id = $1",
            &id,
        ),
        ("DELETE FROM list_issues WHERE id = $1", &id),
        // A copy of the entry added to the published issue (its establishment is listed, so
        // the unique key refuses this too; the move below is the trigger's alone).
        (
            "INSERT INTO list_entries (id, issue_id, list_type, position, establishment_id, \
             inspection_id, inspected_on, result, sign_name, licensed_name, license_no, address, town, \
             category, lng, lat, reason, measures, created_by, created_at, updated_at) \
             SELECT 'forged-entry', issue_id, list_type, position + 1, establishment_id, inspection_id, \
             inspected_on, result, sign_name, licensed_name, license_no, address, town, category, lng, lat, \
             reason, measures, created_by, created_at, updated_at FROM list_entries WHERE id = $1",
            &entry,
        ),
    ] {
        let r = sqlx::query(sql).bind(bind).execute(pool).await;
        assert!(r.is_err(), "{sql} went through");
    }
    // A draft's entry moved into the published issue.
    let draft = create(&s, "2026年第16期").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, e) = s
        .app
        .post(
            &format!("/api/v1/lists/{draft}/entries"),
            &s.reviewer,
            json!({"establishment_id": est(&s, 1), "list_type": "black", "inspection_id": b,
                   "reason": "差", "measures": "责令改正通知书"}),
        )
        .await;
    assert!(st.is_success(), "{st} {e}");
    let moved = e["id"].as_str().unwrap().to_string();
    let r = sqlx::query("UPDATE list_entries SET issue_id = $1 WHERE id = $2")
        .bind(&id)
        .bind(&moved)
        .execute(pool)
        .await;
    assert!(
        r.is_err(),
        "a draft's entry was moved into a published issue"
    );
    let d = detail(&s, &id).await;
    assert_eq!(d["entries"].as_array().unwrap().len(), 1);
    assert_eq!(d["entries"][0]["reason"], "好");
    assert_eq!(d["title"], issue["title"]);
}

async fn only_the_office_composes_lists(app: TestApp) {
    let (s, [a, _, _]) = world(app).await;
    let issue = create(&s, "2026年第16期").await;
    let id = issue["id"].as_str().unwrap().to_string();
    let inspector = s.token(&s.inspectors[0].0).await;
    s.app.user("lab1", Role::Lab).await;
    let lab = s.app.login_full("lab1", "desk").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let before = footprint(&s).await;
    for token in [&inspector, &lab] {
        for (m, path, body) in [
            (
                Method::POST,
                "/api/v1/lists".to_string(),
                new_issue("2026年第17期"),
            ),
            (Method::GET, "/api/v1/lists".to_string(), Value::Null),
            (Method::GET, format!("/api/v1/lists/{id}"), Value::Null),
            (
                Method::GET,
                format!("/api/v1/lists/{id}/candidates"),
                Value::Null,
            ),
            (
                Method::POST,
                format!("/api/v1/lists/{id}/entries"),
                json!({"establishment_id": est(&s, 0), "list_type": "red", "inspection_id": a, "reason": "好"}),
            ),
            (
                Method::POST,
                format!("/api/v1/lists/{id}/publish"),
                json!({}),
            ),
            (
                Method::POST,
                format!("/api/v1/plans/{}/publish-results", s.plans[0].id),
                json!({}),
            ),
        ] {
            let body = (!body.is_null()).then_some(body);
            let (st, e) = s.app.call(m.clone(), &path, Some(token), body).await;
            assert_error(st, &e, 403, "forbidden");
        }
    }
    assert_eq!(footprint(&s).await, before);
}

/// A public page read twice through `app`, the second time from its page cache: both answers
/// must be the same bytes with the same ETag. Returns the page and its ETag.
async fn public_json(app: &TestApp, path: &str) -> (Value, String) {
    let (st, headers, body) = crate::public_data::get(app, path).await;
    assert_eq!(st, StatusCode::OK, "{path}: {body}");
    let (_, again_headers, again) = crate::public_data::get(app, path).await;
    assert_eq!(again, body, "{path}");
    let etag = headers[reqwest::header::ETAG].to_str().unwrap().to_string();
    assert_eq!(again_headers[reqwest::header::ETAG].to_str().unwrap(), etag);
    assert_eq!(etag, format!("\"{}\"", &hex_sha(body.as_bytes())), "{path}");
    (serde_json::from_str(&body).unwrap(), etag)
}

fn hex_sha(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(b)[..16])
}
