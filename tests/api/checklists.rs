//! Checklist templates: the built-in 2016 table, draft → published lifecycle and immutability,
//! evaluation through HTTP, roles and error envelopes.

use foodcheck::auth::Role;
use foodcheck::ops;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::accounts::{audit_where, call_with_id};
use crate::common::{assert_error, TestApp};

both_backends!(
    default_template_is_installed_and_published,
    draft_publish_and_immutability,
    new_versions_increment_and_old_ones_stay,
    evaluate_default_template_table,
    evaluate_errors_and_visibility,
    invalid_content_is_422_with_problem_paths,
    roles_and_authentication,
    duplicate_code_is_409,
    malformed_bodies_are_envelopes,
    publish_revalidates_stored_content,
    concurrent_new_versions_let_one_win,
);

const DEFAULT_ID: &str = "00000000-0000-4000-8000-000000002016";
const KEY_CODES: [&str; 7] = ["3.1", "3.2", "4.1", "4.2", "6.1", "8.4", "9.3"];

fn default_path(rest: &str) -> String {
    format!("/api/v1/checklists/{DEFAULT_ID}{rest}")
}

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::PUT, path, Some(token), Some(body)).await
}

/// The content of the built-in table, as served.
async fn default_content(app: &TestApp, token: &str) -> Value {
    let (s, v) = app.get(&default_path("/versions/1"), token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["content"].clone()
}

/// Creates a template (as a draft) from the built-in content with another title.
async fn create_template(app: &TestApp, admin: &str, code: &str) -> (String, Value) {
    let mut content = default_content(app, admin).await;
    content["title"] = json!(format!("{code} 检查要点表"));
    let (s, body) = app
        .post(
            "/api/v1/checklists",
            admin,
            json!({"code": code, "name": format!("Template {code}"), "content": content}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    (body["id"].as_str().unwrap().to_string(), content)
}

fn general_codes(content: &Value) -> Vec<String> {
    content["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["items"].as_array().unwrap().iter())
        .filter(|i| i["key"] == false)
        .map(|i| i["code"].as_str().unwrap().to_string())
        .collect()
}

async fn default_template_is_installed_and_published(app: TestApp) {
    let inspector = app.token_for("insp1", Role::Inspector).await;
    let (s, list) = app.get("/api/v1/checklists", &inspector).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["total_count"], 1);
    assert_eq!(list["page"], 1);
    let t = &list["items"][0];
    assert_eq!(t["id"], DEFAULT_ID);
    assert_eq!(t["code"], "catering-2016");
    assert_eq!(t["latest_published_version"], 1);
    assert_eq!(t["has_draft"], false);
    assert_eq!(t["created_by"], Value::Null);

    let (s, detail) = app.get(&default_path(""), &inspector).await;
    assert_eq!(s, StatusCode::OK, "{detail}");
    let versions = detail["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0]["status"], "published");
    assert_eq!(versions[0]["item_count"], 30);
    assert_eq!(versions[0]["key_count"], 7);
    assert_eq!(versions[0]["rule_kind"], "pass_rate_2016");
    assert!(versions[0].get("content").is_none());

    let (s, v) = app.get(&default_path("/versions/1"), &inspector).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "published");
    assert_eq!(v["version"], 1);
    assert_eq!(v["template_code"], "catering-2016");
    assert!(v["published_at"].is_string());
    let content = &v["content"];
    assert_eq!(content["title"], "餐饮服务日常监督检查要点表");
    let sections = content["sections"].as_array().unwrap();
    assert_eq!(sections.len(), 9);
    let items: Vec<&Value> = sections
        .iter()
        .flat_map(|s| s["items"].as_array().unwrap())
        .collect();
    assert_eq!(items.len(), 30);
    let keys: Vec<&str> = items
        .iter()
        .filter(|i| i["key"] == true)
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(keys, KEY_CODES);
    assert_eq!(content["rule"]["kind"], "pass_rate_2016");
    assert_eq!(content["rule"]["coverage"]["min_key_checked"], 3);
    assert_eq!(content["rule"]["coverage"]["min_general_checked"], 7);
    assert_eq!(content["rule"]["basic_min_general_pass_rate_pct"], 70);

    // Installing again (another instance starting, a restart) changes nothing.
    ops::checklists::ensure_default(app.db()).await.unwrap();
    let (a, b) = tokio::join!(
        ops::checklists::ensure_default(app.db()),
        ops::checklists::ensure_default(app.db())
    );
    a.unwrap();
    b.unwrap();
    let (_, again) = app.get(&default_path("/versions/1"), &inspector).await;
    assert_eq!(again, v);
    let (_, detail2) = app.get(&default_path(""), &inspector).await;
    assert_eq!(detail2["versions"].as_array().unwrap().len(), 1);

    // Installed once, by the system; the later starts recorded nothing.
    let events = [
        audit_where(&app, "record_id = $1", DEFAULT_ID).await,
        audit_where(&app, "record_id = $1", &format!("{DEFAULT_ID}/1")).await,
    ]
    .concat();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["checklist_template_created", "checklist_version_created"]
    );
    assert!(events
        .iter()
        .all(|e| e.actor_id.is_none() && e.request_id.is_none()));
    assert_eq!(events[1].change("status").1, "published");
    assert_eq!(events[1].change("key_count").1, 7);
}

async fn draft_publish_and_immutability(app: TestApp) {
    let admin = app.token_for("admin1", Role::Admin).await;
    let inspector = app.token_for("insp1", Role::Inspector).await;
    let (id, mut content) = create_template(&app, &admin, "tianjin-2024").await;
    let base = format!("/api/v1/checklists/{id}");

    // A draft: admins see it, inspectors do not.
    let (s, detail) = app.get(&base, &admin).await;
    assert_eq!(s, StatusCode::OK, "{detail}");
    assert_eq!(detail["code"], "tianjin-2024");
    assert_eq!(detail["has_draft"], true);
    assert_eq!(detail["draft_version"], 1);
    assert_eq!(detail["latest_published_version"], Value::Null);
    assert_eq!(detail["versions"][0]["status"], "draft");
    let (s, b) = app.get(&format!("{base}/versions/1"), &inspector).await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app.get(&base, &inspector).await;
    assert_error(s, &b, 404, "not_found");
    let (_, list) = app.get("/api/v1/checklists", &inspector).await;
    assert_eq!(list["total_count"], 1, "only the built-in table: {list}");
    let (_, list) = app.get("/api/v1/checklists", &admin).await;
    assert_eq!(list["total_count"], 2);

    // Edit the draft.
    content["sections"][0]["items"][0]["text"] = json!("经营者持有效许可证（修订）");
    let (s, v) = put(
        &app,
        &format!("{base}/versions/1"),
        &admin,
        json!({"content": content}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "draft");
    assert_eq!(v["content"], content);

    // Publish.
    let (s, v) = call_with_id(
        &app,
        Method::POST,
        &format!("{base}/versions/1/publish"),
        Some(&admin),
        json!({}),
        "rid-publish-1",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "published");
    assert!(v["published_by"].is_string());
    let (s, published) = app.get(&format!("{base}/versions/1"), &inspector).await;
    assert_eq!(s, StatusCode::OK, "{published}");
    assert_eq!(published["content"], content);

    // Immutable: PUT and re-publish are refused and change nothing.
    let mut changed = content.clone();
    changed["title"] = json!("changed");
    let (s, b) = put(
        &app,
        &format!("{base}/versions/1"),
        &admin,
        json!({"content": changed}),
    )
    .await;
    assert_error(s, &b, 409, "version_published");
    let (s, b) = app
        .post(&format!("{base}/versions/1/publish"), &admin, json!({}))
        .await;
    assert_error(s, &b, 409, "version_published");
    let (_, after) = app.get(&format!("{base}/versions/1"), &admin).await;
    assert_eq!(after, published);

    // The database refuses too (trigger), on both backends.
    let direct = sqlx::query(
        "UPDATE checklist_versions SET title = 'x' WHERE template_id = $1 AND version = 1",
    )
    .bind(&id)
    .execute(app.db().pool())
    .await;
    assert!(direct.is_err(), "published row updated directly");
    let direct = sqlx::query("DELETE FROM checklist_versions WHERE template_id = $1")
        .bind(&id)
        .execute(app.db().pool())
        .await;
    assert!(direct.is_err(), "published row deleted directly");
    let (_, after) = app.get(&format!("{base}/versions/1"), &admin).await;
    assert_eq!(after, published);

    // Unknown versions and templates.
    let (s, b) = put(
        &app,
        &format!("{base}/versions/9"),
        &admin,
        json!({"content": content}),
    )
    .await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app
        .post(
            "/api/v1/checklists/no-such-id/versions/1/publish",
            &admin,
            json!({}),
        )
        .await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app
        .post(
            "/api/v1/checklists/no-such-id/versions",
            &admin,
            json!({"content": content}),
        )
        .await;
    assert_error(s, &b, 404, "not_found");

    // The writes are in the audit log, typed, with who and which request; the refused ones
    // (409, 404) left nothing.
    let admin_id = app.get("/api/v1/me", &admin).await.1["id"].clone();
    let version_id = format!("{id}/1");
    let events = audit_where(&app, "record_id = $1", &id).await;
    let events = [
        events,
        audit_where(&app, "record_id = $1", &version_id).await,
    ]
    .concat();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "checklist_template_created",
            "checklist_version_created",
            "checklist_draft_updated",
            "checklist_version_published"
        ]
    );
    for e in &events {
        assert_eq!(e.actor_id.as_deref(), admin_id.as_str(), "{e:?}");
        assert_eq!(e.actor_role.as_deref(), Some("admin"));
    }
    let (created, version, updated, publish) = (&events[0], &events[1], &events[2], &events[3]);
    assert_eq!(created.record_type, "checklist_template");
    assert_eq!(created.change("code"), (Value::Null, json!("tianjin-2024")));
    assert_eq!(version.record_type, "checklist_version");
    assert_eq!(version.change("status"), (Value::Null, json!("draft")));
    assert_eq!(version.change("item_count"), (Value::Null, json!(30)));
    // Only an item's text changed: the summary shows a new content hash and nothing else.
    assert_eq!(updated.fields(), ["content_sha256"]);
    let (old_sha, new_sha) = updated.change("content_sha256");
    assert_eq!(old_sha, version.change("content_sha256").1);
    assert_ne!(old_sha, new_sha);
    assert_eq!(publish.request_id.as_deref(), Some("rid-publish-1"));
    assert_eq!(
        publish.change("status"),
        (json!("draft"), json!("published"))
    );
    assert!(publish.change("published_at").1.is_i64());
    assert_eq!(publish.change("content_sha256").1, new_sha);
}

async fn new_versions_increment_and_old_ones_stay(app: TestApp) {
    let admin = app.token_for("admin1", Role::Admin).await;
    let reviewer = app.token_for("rev1", Role::Reviewer).await;
    let (s, v1) = app.get(&default_path("/versions/1"), &admin).await;
    assert_eq!(s, StatusCode::OK);
    let mut content = v1["content"].clone();
    content["title"] = json!("餐饮服务日常监督检查要点表（2025 修订）");

    let (s, v2) = app
        .post(
            &default_path("/versions"),
            &admin,
            json!({"content": content}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v2}");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["status"], "draft");
    assert_eq!(v2["template_id"], DEFAULT_ID);

    // Only one draft at a time.
    let (s, b) = app
        .post(
            &default_path("/versions"),
            &admin,
            json!({"content": content}),
        )
        .await;
    assert_error(s, &b, 409, "draft_exists");

    // Reviewers do not see the draft; the list says there is one for admins only.
    let (s, b) = app.get(&default_path("/versions/2"), &reviewer).await;
    assert_error(s, &b, 404, "not_found");
    let (_, d) = app.get(&default_path(""), &reviewer).await;
    assert_eq!(d["versions"].as_array().unwrap().len(), 1);
    assert_eq!(d["has_draft"], false);
    let (_, list) = app.get("/api/v1/checklists", &admin).await;
    assert_eq!(list["items"][0]["draft_version"], 2);
    assert_eq!(list["items"][0]["latest_published_version"], 1);

    // Key item removed from section 9 in the draft edit; still valid (6 key items ≥ 3).
    content["sections"][8]["items"][2]["key"] = json!(false);
    let (s, edited) = put(
        &app,
        &default_path("/versions/2"),
        &admin,
        json!({"content": content}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{edited}");
    assert_eq!(edited["key_count"], 6);
    let (s, p) = app
        .post(&default_path("/versions/2/publish"), &admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");

    // Version 1 is untouched.
    let (_, v1_again) = app.get(&default_path("/versions/1"), &reviewer).await;
    assert_eq!(v1_again, v1);
    let (_, list) = app.get("/api/v1/checklists", &reviewer).await;
    assert_eq!(list["items"][0]["latest_published_version"], 2);
    assert_eq!(list["items"][0]["has_draft"], false);

    // The next version is 3.
    let (s, v3) = app
        .post(
            &default_path("/versions"),
            &admin,
            json!({"content": content}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v3}");
    assert_eq!(v3["version"], 3);
    let (_, d) = app.get(&default_path(""), &admin).await;
    let statuses: Vec<(i64, &str)> = d["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(statuses, [(1, "published"), (2, "published"), (3, "draft")]);
}

/// Answers for the built-in table: `key` = (pass, fail), `general` = (pass, fail, n/a), taken
/// in template order.
fn answers(general: &[String], key: (usize, usize), gen: (usize, usize, usize)) -> Value {
    let mut out = Vec::new();
    let mut keys = KEY_CODES.iter();
    for status in std::iter::repeat_n("pass", key.0).chain(std::iter::repeat_n("fail", key.1)) {
        out.push(json!({"item_code": keys.next().unwrap(), "status": status}));
    }
    let mut codes = general.iter();
    for status in std::iter::repeat_n("pass", gen.0)
        .chain(std::iter::repeat_n("fail", gen.1))
        .chain(std::iter::repeat_n("not_applicable", gen.2))
    {
        out.push(json!({"item_code": codes.next().unwrap(), "status": status}));
    }
    json!({ "answers": out })
}

async fn evaluate_default_template_table(app: TestApp) {
    let inspector = app.token_for("insp1", Role::Inspector).await;
    let content = default_content(&app, &inspector).await;
    let general = general_codes(&content);
    assert_eq!(general.len(), 23);
    let path = default_path("/versions/1/evaluate");

    // (name, key (pass, fail), general (pass, fail, n/a), result, label, rate, coverage_ok)
    #[rustfmt::skip]
    let cases = [
        ("all pass",                      (7, 0), (23, 0, 0), "compliant",           "符合",     Some(100.0), true),
        ("exactly 70%, 0 key failed",     (3, 0), (7, 3, 0),  "basically_compliant", "基本符合", Some(70.0),  true),
        ("70% with N/A excluded",         (3, 0), (7, 3, 5),  "basically_compliant", "基本符合", Some(70.0),  true),
        ("69.56% (16/23)",                (7, 0), (16, 7, 0), "non_compliant",       "不符合",   Some(69.56), true),
        ("2 key failed",                  (5, 2), (23, 0, 0), "non_compliant",       "不符合",   Some(100.0), true),
        // The printed rule does not cover this case; the domain guide says 基本符合.
        ("gap: 1 key failed, 100%",       (6, 1), (23, 0, 0), "basically_compliant", "基本符合", Some(100.0), true),
        ("1 key failed, 80%",             (6, 1), (8, 2, 0),  "basically_compliant", "基本符合", Some(80.0),  true),
        ("coverage below minimum",        (2, 0), (6, 0, 0),  "compliant",           "符合",     Some(100.0), false),
    ];
    for (name, key, gen, result, label, rate, coverage_ok) in cases {
        let (s, e) = app
            .post(&path, &inspector, answers(&general, key, gen))
            .await;
        assert_eq!(s, StatusCode::OK, "{name}: {e}");
        assert_eq!(e["result"], result, "{name}: {e}");
        assert_eq!(e["result_label_zh"], label, "{name}");
        assert_eq!(e["general_pass_rate"].as_f64(), rate, "{name}");
        assert_eq!(e["coverage_ok"], coverage_ok, "{name}");
        assert_eq!(e["key_checked"], key.0 + key.1, "{name}");
        assert_eq!(e["key_failed"], key.1, "{name}");
        assert_eq!(e["general_checked"], gen.0 + gen.1 + gen.2, "{name}");
        assert_eq!(e["general_passed"], gen.0, "{name}");
        assert_eq!(e["general_not_applicable"], gen.2, "{name}");
        assert_eq!(e["version"], 1);
        assert_eq!(e["template_id"], DEFAULT_ID);
        assert_eq!(e["rule_kind"], "pass_rate_2016");
        if coverage_ok {
            assert_eq!(e["problems"], json!([]), "{name}");
        }
    }

    // Coverage problems are listed.
    let (_, e) = app
        .post(&path, &inspector, answers(&general, (2, 0), (6, 0, 0)))
        .await;
    let codes: Vec<&str> = e["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "key_coverage_below_minimum",
            "general_coverage_below_minimum"
        ]
    );

    // An unknown item code is a problem and is not counted.
    let mut body = answers(&general, (3, 0), (7, 0, 0));
    body["answers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"item_code": "99.1", "status": "fail"}));
    let (s, e) = app.post(&path, &inspector, body).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["result"], "compliant");
    assert_eq!(e["coverage_ok"], true);
    assert_eq!(e["problems"][0]["code"], "unknown_item");
    assert_eq!(e["problems"][0]["item_code"], "99.1");
    assert_eq!(e["failed_items"], json!([]));

    // No answers: coverage fails, the result is still computed.
    let (s, e) = app.post(&path, &inspector, json!({"answers": []})).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["coverage_ok"], false);
    assert_eq!(e["general_pass_rate"], Value::Null);
}

async fn evaluate_errors_and_visibility(app: TestApp) {
    let admin = app.token_for("admin1", Role::Admin).await;
    let inspector = app.token_for("insp1", Role::Inspector).await;
    let ok = json!({"answers": [{"item_code": "3.1", "status": "pass"}]});

    let (s, b) = app
        .post(
            "/api/v1/checklists/nope/versions/1/evaluate",
            &inspector,
            ok.clone(),
        )
        .await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app
        .post(
            &default_path("/versions/2/evaluate"),
            &inspector,
            ok.clone(),
        )
        .await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app
        .post(
            &default_path("/versions/-1/evaluate"),
            &inspector,
            ok.clone(),
        )
        .await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app
        .post(
            &default_path("/versions/x/evaluate"),
            &inspector,
            ok.clone(),
        )
        .await;
    assert_error(s, &b, 400, "bad_request");

    // Bad status value, wrong shapes.
    let (s, b) = app
        .post(
            &default_path("/versions/1/evaluate"),
            &inspector,
            json!({"answers": [{"item_code": "3.1", "status": "maybe"}]}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_body");
    let (s, b) = app
        .post(
            &default_path("/versions/1/evaluate"),
            &inspector,
            json!({"answers": "all good"}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_body");
    let (s, b) = app
        .post(&default_path("/versions/1/evaluate"), &inspector, json!({}))
        .await;
    assert_error(s, &b, 422, "invalid_body");

    // Too many answers.
    let many: Vec<Value> = (0..1001)
        .map(|_| json!({"item_code": "3.1", "status": "pass"}))
        .collect();
    let (s, b) = app
        .post(
            &default_path("/versions/1/evaluate"),
            &inspector,
            json!({ "answers": many }),
        )
        .await;
    assert_error(s, &b, 422, "validation_failed");

    // A draft: admins may evaluate it, inspectors get 404.
    let (id, _) = create_template(&app, &admin, "draft-only").await;
    let path = format!("/api/v1/checklists/{id}/versions/1/evaluate");
    let (s, e) = app.post(&path, &admin, ok.clone()).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["key_checked"], 1);
    let (s, b) = app.post(&path, &inspector, ok).await;
    assert_error(s, &b, 404, "not_found");
}

async fn invalid_content_is_422_with_problem_paths(app: TestApp) {
    let admin = app.token_for("admin1", Role::Admin).await;
    let mut content = default_content(&app, &admin).await;
    content["title"] = json!(" ");
    content["sections"][2]["items"][1]["code"] = json!("3.1");
    content["rule"]["basic_min_general_pass_rate_pct"] = json!(0);
    let (s, b) = app
        .post(
            "/api/v1/checklists",
            &admin,
            json!({"code": "Bad Code!", "name": "", "content": content}),
        )
        .await;
    assert_error(s, &b, 422, "validation_failed");
    let got: Vec<(&str, &str)> = b["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["path"].as_str().unwrap(), p["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("code", "invalid_template_code"),
            ("name", "name_empty"),
            ("content.title", "title_empty"),
            ("content.sections[2].items[1].code", "duplicate_item_code"),
            (
                "content.rule.basic_min_general_pass_rate_pct",
                "invalid_pass_rate_threshold"
            ),
        ]
    );
    assert!(b["error"]["details"][0]["message"].is_string());
    // Nothing was created.
    let (_, list) = app.get("/api/v1/checklists", &admin).await;
    assert_eq!(list["total_count"], 1);

    // Too few key items for the rule's coverage.
    let mut content = default_content(&app, &admin).await;
    for s in content["sections"].as_array_mut().unwrap() {
        for i in s["items"].as_array_mut().unwrap() {
            i["key"] = json!(false);
        }
    }
    let (s, b) = app
        .post(
            "/api/v1/checklists",
            &admin,
            json!({"code": "no-keys", "name": "No keys", "content": content}),
        )
        .await;
    assert_error(s, &b, 422, "validation_failed");
    assert_eq!(
        b["error"]["details"][0]["path"],
        "content.rule.coverage.min_key_checked"
    );

    // The same validation on new versions and draft edits.
    let mut bad = default_content(&app, &admin).await;
    bad["sections"] = json!([]);
    let (s, b) = app
        .post(&default_path("/versions"), &admin, json!({"content": bad}))
        .await;
    assert_error(s, &b, 422, "validation_failed");
    assert_eq!(b["error"]["details"][0]["path"], "content.sections");
    let (id, _) = create_template(&app, &admin, "edit-me").await;
    let (s, b) = put(
        &app,
        &format!("/api/v1/checklists/{id}/versions/1"),
        &admin,
        json!({"content": bad}),
    )
    .await;
    assert_error(s, &b, 422, "validation_failed");
}

async fn roles_and_authentication(app: TestApp) {
    let admin = app.token_for("admin1", Role::Admin).await;
    let inspector = app.token_for("insp1", Role::Inspector).await;
    let reviewer = app.token_for("rev1", Role::Reviewer).await;
    let lab = app.token_for("lab1", Role::Lab).await;
    let content = default_content(&app, &admin).await;
    let create = json!({"code": "x-1", "name": "X", "content": content});
    let answers = json!({"answers": []});

    let (s, b) = app
        .post("/api/v1/checklists", &inspector, create.clone())
        .await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app
        .post("/api/v1/checklists", &reviewer, create.clone())
        .await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app
        .post(
            &default_path("/versions"),
            &inspector,
            json!({"content": content}),
        )
        .await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = put(
        &app,
        &default_path("/versions/1"),
        &reviewer,
        json!({"content": content}),
    )
    .await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app
        .post(&default_path("/versions/1/publish"), &inspector, json!({}))
        .await;
    assert_error(s, &b, 403, "forbidden");

    // The lab role has no access at all.
    for path in [
        "/api/v1/checklists".to_string(),
        default_path(""),
        default_path("/versions/1"),
    ] {
        let (s, b) = app.get(&path, &lab).await;
        assert_error(s, &b, 403, "forbidden");
    }
    let (s, b) = app
        .post(&default_path("/versions/1/evaluate"), &lab, answers.clone())
        .await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app.post("/api/v1/checklists", &lab, create.clone()).await;
    assert_error(s, &b, 403, "forbidden");

    // Reviewers read and evaluate.
    let (s, _) = app.get(&default_path("/versions/1"), &reviewer).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .post(
            &default_path("/versions/1/evaluate"),
            &reviewer,
            answers.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // No token.
    let (s, b) = app
        .call(Method::GET, "/api/v1/checklists", None, None)
        .await;
    assert_error(s, &b, 401, "missing_token");
    let (s, b) = app
        .call(
            Method::POST,
            &default_path("/versions/1/evaluate"),
            None,
            Some(answers),
        )
        .await;
    assert_error(s, &b, 401, "missing_token");
    let (s, b) = app
        .call(Method::POST, "/api/v1/checklists", None, Some(create))
        .await;
    assert_error(s, &b, 401, "missing_token");

    // Paging parameters.
    let (s, l) = app
        .get("/api/v1/checklists?page=2&page_size=1", &admin)
        .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    assert_eq!(l["items"], json!([]));
    assert_eq!(l["total_count"], 1);
    let (s, b) = app.get("/api/v1/checklists?page=0", &admin).await;
    assert_error(s, &b, 400, "bad_request");
    let (s, b) = app.get("/api/v1/checklists?page_size=1000", &admin).await;
    assert_error(s, &b, 400, "bad_request");
}

async fn duplicate_code_is_409(app: TestApp) {
    let admin = app.token_for("admin1", Role::Admin).await;
    create_template(&app, &admin, "local-2024").await;
    let content = default_content(&app, &admin).await;
    for code in ["local-2024", " Local-2024 ", "catering-2016"] {
        let (s, b) = app
            .post(
                "/api/v1/checklists",
                &admin,
                json!({"code": code, "name": "Again", "content": content}),
            )
            .await;
        assert_error(s, &b, 409, "duplicate");
    }
}

async fn malformed_bodies_are_envelopes(app: TestApp) {
    let admin = app.token_for("admin1", Role::Admin).await;
    let send = |method: Method, path: String, body: &'static str| {
        let req = app
            .client
            .request(method, app.url(&path))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(body);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let (s, b) = send(Method::POST, "/api/v1/checklists".into(), "{\"code\": ").await;
    assert_error(s, &b, 400, "invalid_json");
    let (s, b) = send(
        Method::POST,
        "/api/v1/checklists".into(),
        "{\"code\": \"a\"}",
    )
    .await;
    assert_error(s, &b, 422, "invalid_body");
    let (s, b) = send(
        Method::POST,
        "/api/v1/checklists".into(),
        r#"{"code": "a", "name": "b", "content": {"title": "t", "sections": [], "rule": {"kind": "nope"}}}"#,
    )
    .await;
    assert_error(s, &b, 422, "invalid_body");
    let (s, b) = send(Method::PUT, default_path("/versions/1"), "[1, 2]").await;
    assert_error(s, &b, 422, "invalid_body");
    let (s, b) = send(Method::POST, default_path("/versions/1/evaluate"), "nope").await;
    assert_error(s, &b, 400, "invalid_json");
    let (s, b) = send(Method::DELETE, default_path("/versions/1"), "").await;
    assert_error(s, &b, 405, "method_not_allowed");
}

async fn publish_revalidates_stored_content(app: TestApp) {
    let admin = app.token_for("admin1", Role::Admin).await;
    let (id, mut content) = create_template(&app, &admin, "stale").await;
    // Content that was valid when saved but not now (e.g. rules tightened by an upgrade),
    // simulated by writing the draft directly.
    content["title"] = json!("");
    sqlx::query("UPDATE checklist_versions SET content = $1 WHERE template_id = $2")
        .bind(content.to_string())
        .bind(&id)
        .execute(app.db().pool())
        .await
        .unwrap();
    let (s, b) = app
        .post(
            &format!("/api/v1/checklists/{id}/versions/1/publish"),
            &admin,
            json!({}),
        )
        .await;
    assert_error(s, &b, 422, "validation_failed");
    assert_eq!(b["error"]["details"][0]["path"], "content.title");
    let (_, v) = app
        .get(&format!("/api/v1/checklists/{id}/versions/1"), &admin)
        .await;
    assert_eq!(v["status"], "draft");
}

async fn concurrent_new_versions_let_one_win(app: TestApp) {
    let admin = app.token_for("admin1", Role::Admin).await;
    let content = default_content(&app, &admin).await;
    let body = json!({ "content": content });
    let path = default_path("/versions");
    let results =
        futures::future::join_all((0..4).map(|_| app.post(&path, &admin, body.clone()))).await;
    let created: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(created.len(), 1, "{results:?}");
    assert_eq!(created[0]["version"], 2);
    for (s, b) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_error(*s, b, 409, "draft_exists");
    }
    // Concurrent publishes of that draft: one wins, the others see it published.
    let path = default_path("/versions/2/publish");
    let results =
        futures::future::join_all((0..3).map(|_| app.post(&path, &admin, json!({})))).await;
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{results:?}");
    for (s, b) in results.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert_error(*s, b, 409, "version_published");
    }
}
