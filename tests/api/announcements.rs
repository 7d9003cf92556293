//! The public sampling announcement (抽检信息公告) over HTTP: a draft proposes the samples with
//! a result reported in its period (qualified and unqualified), a sample is excluded with an
//! internal reason and included again, publication copies the public facts (later edits of a
//! sample change nothing published) and is audited with a checkpoint, the copied rows are
//! frozen at the database, a draft is 404 on every public route, the exports read back, and
//! the public crawl finds no personal data.

use foodcheck::auth::Role;
use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{assert_error, TestApp};
use crate::public_data::{assert_no_secret, get};

both_backends!(
    draft_exclusion_publication_and_public_read,
    published_rows_are_copied_and_frozen,
    exports_read_back_and_the_crawl_finds_nothing_personal,
);

const CATEGORIES: &str = "分类编码,级别,上级编码,分类名称,微生物\n\
    01,1,,粮食加工品,\n\
    0101,2,01,小麦粉,否\n\
    010101,3,0101,通用小麦粉,否\n\
    02,1,,食用油,\n";

const REASON: &str = "EXCLUSION-REASON 样品信息待核实";

struct World {
    app: TestApp,
    admin: String,
    reviewer: String,
    insp1: String,
    insp1_id: String,
    insp2_id: String,
    lab_a: String,
    lab_a_id: String,
    establishment: String,
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
    // Lab results start working-day deadlines from today: the calendar must cover them.
    crate::common::cover_this_and_next_year(&app, &admin).await;
    let reviewer = app.token_for("reviewer", Role::Reviewer).await;
    let insp1_id = app.user("insp1", Role::Inspector).await;
    let insp2_id = app.user("insp2", Role::Inspector).await;
    let lab_user = app.user("lab-a", Role::Lab).await;
    let (s, v) = app
        .post(
            "/api/v1/labs",
            &admin,
            json!({"name": "宝坻区食品检验中心", "code": "LABA"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let lab_a_id = v["id"].as_str().unwrap().to_string();
    let (s, v) = app
        .put(
            &format!("/api/v1/users/{lab_user}/lab"),
            &admin,
            json!({"lab_id": lab_a_id}),
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
    let (s, e) = app
        .post(
            "/api/v1/establishments",
            &admin,
            json!({"sign_name": "老王粮油店", "licensed_name": "天津市老王粮油商行",
                   "license_no": "JY21201150000001", "category": "small_restaurant",
                   "address": "测试路1号", "town": "周良街道", "risk_grade": "B",
                   "contact_name": "CONTACT-NAME 王联系", "contact_phone": "13900139000"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    World {
        insp1: login(&app, "insp1").await,
        lab_a: login(&app, "lab-a").await,
        establishment: e["id"].as_str().unwrap().to_string(),
        app,
        admin,
        reviewer,
        insp1_id,
        insp2_id,
        lab_a_id,
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl World {
    fn today(&self) -> String {
        self.app.state.config.time_zone.today()
    }

    /// Submits a complete 抽样单 (sampled an hour ago), takes it through custody to lab A and
    /// reports `items` (name, value, limit, verdict) with the verdict that follows.
    async fn sample_with_result(
        &self,
        name: &str,
        brand: &str,
        report_no: &str,
        items: &[(&str, &str, &str, &str)],
    ) -> String {
        let id = Uuid::new_v4().to_string();
        let at = now_ms() - 3_600_000;
        let mut form = json!({
            "task_source": "2026年第一季度监督抽检",
            "purpose": "supervision",
            "stage": "流通",
            "food_category_1": "粮食加工品",
            "food_category_2": "小麦粉",
            "food_category_3": "通用小麦粉",
            "food_category_4": "/",
            "premises_name": "老王粮油店",
            "premises_address": "测试路1号",
            "premises_credit_code": "/",
            "premises_licence_no": "JY21201150000001",
            "premises_legal_representative": "LEGAL-REP 王老五",
            "premises_contact": "13700137000",
            "producer_name": "天津某面粉厂",
            "producer_address": "天津市宝坻区面粉路9号",
            "producer_sc_licence": "SC10112011500012",
            "sample_name": name,
            "sample_brand": brand,
            "sample_specification": "1kg/袋",
            "sample_production_date": "2026-02-01"
        });
        let rest = json!({
            "sample_batch": "/",
            "sample_shelf_life": "12个月",
            "sample_standard": "GB 1355",
            "sample_price": "12.50",
            "sample_imported": false,
            "sample_storage": "常温",
            "sampling_method": "non_aseptic",
            "sampling_base": 100.0,
            "sampling_base_unit": "袋",
            "sample_quantity": 4.0,
            "sample_quantity_unit": "袋",
            "backup_quantity": 2.0,
            "backup_quantity_unit": "袋",
            "sampled_at": at,
            "lng": 117.3,
            "lat": 39.7,
            "crs": "wgs84",
            "sampler_1": self.insp1_id,
            "sampler_2": self.insp2_id,
            "premises_opinion": "有异议",
            "premises_opinion_text": "OPINION-TEXT 对封样有意见"
        });
        form.as_object_mut()
            .unwrap()
            .extend(rest.as_object().unwrap().clone());
        let (s, v) = self
            .app
            .post(
                "/api/v1/samples",
                &self.insp1,
                json!({"id": id, "establishment_id": self.establishment, "lab_id": self.lab_a_id,
                       "category_code": "010101", "form": form}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        for (token, kind, t, extra) in [
            (&self.insp1, "sealed", at, json!({})),
            (&self.insp1, "dispatched", at + 60_000, json!({})),
            (
                &self.lab_a,
                "received",
                at + 120_000,
                json!({"sample_condition": "包装完好", "seal_intact": true}),
            ),
        ] {
            let mut body = json!({"id": Uuid::new_v4(), "kind": kind, "occurred_at": t, "place": "老王粮油店"});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let (s, v) = self
                .app
                .post(&format!("/api/v1/samples/{id}/custody"), token, body)
                .await;
            assert_eq!(s, StatusCode::CREATED, "{kind}: {v}");
        }
        let unqualified = items.iter().any(|i| i.3 == "unqualified");
        let items: Vec<Value> = items
            .iter()
            .map(|(n, v, l, verdict)| {
                json!({"name": n, "value": v, "unit": "mg/kg", "limit": l,
                       "standard": "GB 2762-2022", "method": "GB 5009.12-2023", "verdict": verdict})
            })
            .collect();
        let (s, v) = self
            .app
            .put(
                &format!("/api/v1/samples/{id}/result"),
                &self.lab_a,
                json!({"report_no": report_no,
                       "overall": if unqualified { "unqualified" } else { "qualified" },
                       "items": items}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        id
    }

    async fn draft(&self, no: &str, extra: Value) -> String {
        let mut body = json!({"announcement_no": no, "title": "食品安全监督抽检信息公告",
                              "period_start": self.today(), "period_end": self.today()});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (s, v) = self
            .app
            .post("/api/v1/announcements", &self.reviewer, body)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["state"], "draft");
        v["id"].as_str().unwrap().to_string()
    }
}

/// Three samples (two qualified, one unqualified with a failed and a passed item) and a
/// published announcement without the third, excluded; and a second draft.
struct Scenario {
    w: World,
    published: String,
    draft: String,
    qualified: String,
    unqualified: String,
    excluded: String,
}

async fn scenario(app: TestApp) -> Scenario {
    let w = world(app).await;
    let qualified = w
        .sample_with_result(
            "特一粉",
            "=HYPERLINK(\"http://x\")",
            "WT2026-0001",
            &[("铅(以Pb计)", "0.05", "≤0.2", "qualified")],
        )
        .await;
    let unqualified = w
        .sample_with_result(
            "高筋小麦粉",
            "/",
            "WT2026-0002",
            &[
                ("铅(以Pb计)", "0.35", "≤0.2", "unqualified"),
                ("镉(以Cd计)", "0.01", "≤0.1", "qualified"),
            ],
        )
        .await;
    let excluded = w
        .sample_with_result(
            "全麦粉",
            "金龙",
            "WT2026-0003",
            &[("铅(以Pb计)", "0.01", "≤0.2", "qualified")],
        )
        .await;
    let published = w.draft("2026年第3期", json!({"category_code": "01"})).await;
    let (s, v) = w
        .app
        .post(
            &format!("/api/v1/announcements/{published}/exclusions"),
            &w.reviewer,
            json!({"sample_id": excluded, "reason": REASON}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = w
        .app
        .post(
            &format!("/api/v1/announcements/{published}/publish"),
            &w.admin,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let draft = w.draft("2026年第4期", json!({})).await;
    Scenario {
        w,
        published,
        draft,
        qualified,
        unqualified,
        excluded,
    }
}

fn ids(rows: &Value) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["sample_id"].as_str().unwrap().to_string())
        .collect()
}

async fn draft_exclusion_publication_and_public_read(app: TestApp) {
    let w = world(app).await;
    let app = &w.app;
    let ok = w
        .sample_with_result(
            "特一粉",
            "/",
            "WT-1",
            &[("铅", "0.05", "≤0.2", "qualified")],
        )
        .await;
    let bad = w
        .sample_with_result(
            "高筋小麦粉",
            "/",
            "WT-2",
            &[
                ("铅", "0.35", "≤0.2", "unqualified"),
                ("镉", "0.01", "≤0.1", "qualified"),
            ],
        )
        .await;
    // Refusals: bad input, other roles.
    let (s, v) = app
        .post(
            "/api/v1/announcements",
            &w.reviewer,
            json!({"announcement_no": "", "title": "t", "period_start": "2026-13-01",
                   "period_end": "2026-01-01", "stage": "门店", "category_code": "99"}),
        )
        .await;
    assert_error(s, &v, 422, "validation_failed");
    let fields: Vec<&str> = v["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for f in ["announcement_no", "period_start", "stage", "category_code"] {
        assert!(fields.contains(&f), "{f} not named: {v}");
    }
    let (s, v) = app
        .post(
            "/api/v1/announcements",
            &w.insp1,
            json!({"announcement_no": "x", "title": "t", "period_start": w.today(), "period_end": w.today()}),
        )
        .await;
    assert_error(s, &v, 403, "forbidden");

    let id = w
        .draft("2026年第3期", json!({"stage": "circulation"}))
        .await;
    let (s, v) = app
        .post(
            "/api/v1/announcements",
            &w.admin,
            json!({"announcement_no": "2026年第3期", "title": "t", "period_start": w.today(), "period_end": w.today()}),
        )
        .await;
    assert_error(s, &v, 409, "duplicate");
    // The draft proposes both samples, each in its verdict's table; only failed items show.
    let path = format!("/api/v1/announcements/{id}");
    let (s, d) = app.get(&path, &w.reviewer).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(ids(&d["qualified"]), std::slice::from_ref(&ok));
    assert_eq!(ids(&d["unqualified"]), std::slice::from_ref(&bad));
    let failed = &d["unqualified"][0]["failed_items"];
    assert_eq!(failed.as_array().unwrap().len(), 1, "{d}");
    assert_eq!(
        (
            &failed[0]["name"],
            &failed[0]["value"],
            &failed[0]["limit"],
            &failed[0]["standard"]
        ),
        (
            &json!("铅"),
            &json!("0.35"),
            &json!("≤0.2"),
            &json!("GB 2762-2022")
        )
    );
    assert_eq!(d["unqualified"][0]["report_no"], "WT-2");
    assert_eq!(
        d["qualified"][0]["premises_licensed_name"],
        "天津市老王粮油商行"
    );
    assert_eq!(d["qualified"][0]["town"], "周良街道");
    assert_eq!(d["qualified"][0]["production_date_or_batch"], "2026-02-01");
    // A draft for another stage, or another period, proposes nothing and cannot be published.
    for (no, extra) in [
        ("餐饮", json!({"stage": "catering"})),
        ("油", json!({"category_code": "02"})),
        (
            "去年",
            json!({"period_start": "2025-01-01", "period_end": "2025-01-31"}),
        ),
    ] {
        let other = w.draft(no, extra).await;
        let (_, d) = app
            .get(&format!("/api/v1/announcements/{other}"), &w.reviewer)
            .await;
        assert_eq!(
            (
                d["qualified"].as_array().unwrap().len(),
                d["unqualified"].as_array().unwrap().len()
            ),
            (0, 0),
            "{no}: {d}"
        );
        let (s, v) = app
            .post(
                &format!("/api/v1/announcements/{other}/publish"),
                &w.reviewer,
                json!({}),
            )
            .await;
        assert_error(s, &v, 422, "empty_announcement");
    }
    // Exclusion: only of a proposed sample, once, with a reason; included again; excluded.
    let exclusions = format!("{path}/exclusions");
    let (s, v) = app
        .post(
            &exclusions,
            &w.reviewer,
            json!({"sample_id": Uuid::new_v4(), "reason": "x"}),
        )
        .await;
    assert_error(s, &v, 422, "not_proposed");
    let (s, v) = app
        .post(
            &exclusions,
            &w.reviewer,
            json!({"sample_id": ok, "reason": " "}),
        )
        .await;
    assert_error(s, &v, 422, "validation_failed");
    let (s, v) = app
        .post(
            &exclusions,
            &w.reviewer,
            json!({"sample_id": ok, "reason": REASON}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app
        .post(
            &exclusions,
            &w.reviewer,
            json!({"sample_id": ok, "reason": REASON}),
        )
        .await;
    assert_error(s, &v, 409, "duplicate");
    let (_, d) = app.get(&path, &w.reviewer).await;
    assert_eq!(ids(&d["qualified"]).len(), 0, "{d}");
    assert_eq!(d["excluded"][0]["reason"], REASON);
    let (s, v) = app
        .call(
            reqwest::Method::DELETE,
            &format!("{exclusions}/{ok}"),
            Some(&w.reviewer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v) = app
        .call(
            reqwest::Method::DELETE,
            &format!("{exclusions}/{ok}"),
            Some(&w.reviewer),
            None,
        )
        .await;
    assert_error(s, &v, 404, "not_found");
    let (_, d) = app.get(&path, &w.reviewer).await;
    assert_eq!(ids(&d["qualified"]), std::slice::from_ref(&ok));
    let (s, _) = app
        .post(
            &exclusions,
            &w.reviewer,
            json!({"sample_id": ok, "reason": REASON}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    // Unpublished: 404 on every public route, absent from the indexes.
    for p in [
        format!("/public/v1/announcements/{id}"),
        format!("/public/v1/announcements/{id}/export?format=csv"),
        format!("/public/v1/announcements/{id}/export?format=xlsx"),
        format!("/public/announcements/{id}"),
    ] {
        let (st, _, body) = get(app, &p).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{p}: a draft is public: {body}");
    }
    let (_, _, body) = get(app, "/public/v1/announcements").await;
    let index: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(index["meta"]["total_count"], 0);

    // Publication: checkpoint first, audited, then frozen for the API.
    let (s, p) = app
        .post(&format!("{path}/publish"), &w.reviewer, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["state"], "published");
    assert!(
        p["checkpoint"].as_str().is_some_and(|c| !c.is_empty()),
        "{p}"
    );
    assert_eq!(
        (p["qualified_count"].clone(), p["unqualified_count"].clone()),
        (json!(0), json!(1))
    );
    let (s, v) = app
        .post(&format!("{path}/publish"), &w.admin, json!({}))
        .await;
    assert_error(s, &v, 409, "announcement_published");
    let (s, v) = app
        .call(
            reqwest::Method::DELETE,
            &format!("{exclusions}/{ok}"),
            Some(&w.reviewer),
            None,
        )
        .await;
    assert_error(s, &v, 409, "announcement_published");
    let mut conn = app.db().acquire().await.unwrap();
    let actions: Vec<(String,)> =
        sqlx::query_as("SELECT action FROM audit_events WHERE record_id = $1 ORDER BY id")
            .bind(&id)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let actions: Vec<&str> = actions.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "announcement_created",
            "announcement_sample_excluded",
            "announcement_sample_included",
            "announcement_sample_excluded",
            "announcement_published"
        ]
    );
    drop(conn);

    // Public read: paging meta, the tables, nothing internal.
    let (st, h, body) = get(app, "/public/v1/announcements").await;
    assert_eq!(st, StatusCode::OK);
    let index: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        index["meta"],
        json!({"total_count": 1, "page": 1, "page_size": 50, "total_pages": 1, "extract_date": w.today()})
    );
    assert_eq!(index["items"][0]["id"], id.as_str());
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(h.contains_key(header::CACHE_CONTROL));
    let (s, _, _) = get(app, "/public/v1/announcements?page_size=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (st, h, body) = get(app, &format!("/public/v1/announcements/{id}")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["qualified"].as_array().unwrap().len(), 0);
    assert_eq!(v["unqualified"][0]["sample_name"], "高筋小麦粉");
    assert_eq!(v["unqualified"][0]["failed_items"][0]["value"], "0.35");
    assert!(v["unqualified"][0].get("sample_id").is_none(), "{v}");
    assert!(!body.contains(REASON) && !body.contains(&ok), "{body}");
    // ETag and 304.
    let etag = h[header::ETAG].to_str().unwrap().to_string();
    let res = app
        .client
        .get(app.url(&format!("/public/v1/announcements/{id}")))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    // The pages.
    let (st, _, html) = get(app, "/public/announcements").await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        html.contains(&format!("/public/announcements/{id}")),
        "{html}"
    );
    let (st, h, html) = get(app, &format!("/public/announcements/{id}")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(h[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    for want in [
        "不合格产品信息",
        "合格产品信息",
        "高筋小麦粉",
        "0.35",
        "GB 2762-2022",
        "WT-2",
        "抽检结果仅对所抽检样品负责",
    ] {
        assert!(html.contains(want), "the page lacks {want:?}");
    }
    assert!(!html.contains("<script"), "no JavaScript on public pages");
}

async fn published_rows_are_copied_and_frozen(app: TestApp) {
    let s = scenario(app).await;
    let app = &s.w.app;
    let path = format!("/public/v1/announcements/{}", s.published);
    let (_, _, before) = get(app, &path).await;
    let v: Value = serde_json::from_str(&before).unwrap();
    assert_eq!(
        v["qualified"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["sample_name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["特一粉"]
    );
    assert_eq!(v["unqualified"][0]["position"], 1);
    // Edits of the samples, their results and the registry after publication change nothing.
    let mut conn = app.db().acquire().await.unwrap();
    for (sql, id) in [
        (
            "UPDATE samples SET premises_name = '改名后的店', sample_name = '改名' WHERE id = $1",
            &s.unqualified,
        ),
        (
            "UPDATE lab_result_items SET value = '9.99' WHERE sample_id = $1",
            &s.unqualified,
        ),
        (
            "UPDATE lab_results SET report_no = 'CHANGED' WHERE sample_id = $1",
            &s.qualified,
        ),
        (
            "UPDATE establishments SET licensed_name = '新执照名', town = '新镇' WHERE id = $1",
            &s.w.establishment,
        ),
    ] {
        sqlx::query(sql).bind(id).execute(&mut *conn).await.unwrap();
    }
    let (_, _, after) = get(app, &path).await;
    let mut a: Value = serde_json::from_str(&after).unwrap();
    let mut b: Value = serde_json::from_str(&before).unwrap();
    a["extract_date"] = Value::Null;
    b["extract_date"] = Value::Null;
    assert_eq!(a, b, "a published announcement changed with its samples");
    // The draft, by contrast, proposes the samples as they are now.
    let (_, d) = app
        .get(&format!("/api/v1/announcements/{}", s.draft), &s.w.reviewer)
        .await;
    assert_eq!(d["unqualified"][0]["premises_licensed_name"], "新执照名");
    assert_eq!(d["unqualified"][0]["failed_items"][0]["value"], "9.99");
    // Direct SQL against the frozen rows is refused by the database, on both backends.
    let id = &s.published;
    for sql in [
        "UPDATE announcements SET title = 'x' WHERE id = $1",
        "UPDATE announcements SET updated_at = updated_at + 1 WHERE id = $1",
        "DELETE FROM announcements WHERE id = $1",
        "UPDATE announcement_samples SET premises_name = 'x' WHERE announcement_id = $1",
        "DELETE FROM announcement_samples WHERE announcement_id = $1",
        "UPDATE announcement_items SET value = '0' WHERE announcement_id = $1",
        "DELETE FROM announcement_items WHERE announcement_id = $1",
        "DELETE FROM announcement_exclusions WHERE announcement_id = $1",
        "UPDATE announcement_exclusions SET reason = 'x' WHERE announcement_id = $1",
    ] {
        let r = sqlx::query(sql).bind(id).execute(&mut *conn).await;
        assert!(r.is_err(), "{sql} was allowed on a published announcement");
    }
    for (table, sql) in [
        ("announcement_exclusions", format!(
            "INSERT INTO announcement_exclusions (announcement_id, sample_id, reason, created_by, created_at) \
             SELECT '{id}', '{}', 'x', created_by, 1 FROM announcements WHERE id = '{id}'", s.qualified)),
        ("announcement_items", format!(
            "INSERT INTO announcement_items (announcement_id, sample_id, position, name, value) \
             VALUES ('{id}', '{}', 9, 'x', '1')", s.unqualified)),
    ] {
        let r = sqlx::query(&sql).execute(&mut *conn).await;
        assert!(r.is_err(), "an insert into {table} was allowed on a published announcement");
    }
    // A draft's exclusions still change.
    sqlx::query(
        "INSERT INTO announcement_exclusions (announcement_id, sample_id, reason, created_by, created_at) \
         SELECT $1, $2, 'x', created_by, 1 FROM announcements WHERE id = $1",
    )
    .bind(&s.draft)
    .bind(&s.excluded)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("DELETE FROM announcement_exclusions WHERE announcement_id = $1")
        .bind(&s.draft)
        .execute(&mut *conn)
        .await
        .unwrap();
    let (_, _, again) = get(app, &path).await;
    let mut c: Value = serde_json::from_str(&again).unwrap();
    c["extract_date"] = Value::Null;
    assert_eq!(c, b);
}

/// Sampler names, badges, usernames and ids, premises contact and legal representative, the
/// premises' objection text, the registry's contact, the exclusion reason, the excluded sample.
fn secrets(s: &Scenario) -> Vec<String> {
    let mut out: Vec<String> = [
        "Name of insp1",
        "Name of insp2",
        "TJ-insp1",
        "TJ-insp2",
        "13800138000",
        "13700137000",
        "13900139000",
        "LEGAL-REP",
        "CONTACT-NAME",
        "OPINION-TEXT",
        "EXCLUSION-REASON",
        "全麦粉",
        "WT2026-0003",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    out.extend([
        s.w.insp1_id.clone(),
        s.w.insp2_id.clone(),
        s.excluded.clone(),
        s.qualified.clone(),
        s.unqualified.clone(),
        "\"insp1\"".into(),
        "reviewer".into(),
    ]);
    out
}

async fn exports_read_back_and_the_crawl_finds_nothing_personal(app: TestApp) {
    let s = scenario(app).await;
    let app = &s.w.app;
    let secrets = secrets(&s);
    let fetch = |format: &'static str| {
        let url = app.url(&format!(
            "/public/v1/announcements/{}/export?format={format}",
            s.published
        ));
        let client = app.client.clone();
        async move {
            let res = client.get(url).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{format}");
            let disposition = res.headers()[header::CONTENT_DISPOSITION]
                .to_str()
                .unwrap()
                .to_string();
            assert!(disposition.starts_with("attachment"), "{disposition}");
            res.bytes().await.unwrap().to_vec()
        }
    };
    // CSV: BOM, RFC 4180 read back by a CSV parser, one line per qualified sample and per
    // failed item, formula text neutralised.
    let csv = fetch("csv").await;
    assert!(csv.starts_with(b"\xEF\xBB\xBF"), "CSV without BOM");
    let text = String::from_utf8(csv[3..].to_vec()).unwrap();
    assert_no_secret("csv", &text, &secrets);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(headers[0], "结论");
    assert_eq!(headers.len(), 22);
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 2, "{text}");
    assert_eq!(&records[0][0], "合格");
    assert_eq!(&records[0][col("商标")], "'=HYPERLINK(\"http://x\")");
    assert_eq!(&records[1][0], "不合格");
    assert_eq!(&records[1][col("不合格项目")], "铅(以Pb计)");
    assert_eq!(&records[1][col("检验结果")], "0.35");
    assert_eq!(&records[1][col("标准值")], "≤0.2");
    assert_eq!(&records[1][col("判定依据")], "GB 2762-2022");
    assert_eq!(&records[1][col("检验报告编号")], "WT2026-0002");
    assert_eq!(&records[1][col("标称生产企业名称")], "天津某面粉厂");
    assert_eq!(&records[1][col("抽样环节")], "流通");
    // XLSX: 合格, 不合格, 说明, read back by calamine.
    let xlsx = fetch("xlsx").await;
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx)).unwrap();
    assert_eq!(
        calamine::Reader::sheet_names(&wb),
        vec!["合格", "不合格", "说明"]
    );
    let ok = calamine::Reader::worksheet_range(&mut wb, "合格").unwrap();
    assert_eq!(ok.rows().count(), 2);
    assert_eq!(ok.get_value((0, 1)).unwrap().to_string(), "抽样单编号");
    assert_eq!(ok.get_value((1, 5)).unwrap().to_string(), "周良街道");
    assert_eq!(
        ok.get_value((1, 7)).unwrap().to_string(),
        "'=HYPERLINK(\"http://x\")"
    );
    let bad = calamine::Reader::worksheet_range(&mut wb, "不合格").unwrap();
    assert_eq!(bad.rows().count(), 2);
    assert_eq!(bad.get_value((1, 16)).unwrap().to_string(), "铅(以Pb计)");
    assert_eq!(bad.get_value((1, 17)).unwrap().to_string(), "0.35");
    let notes = calamine::Reader::worksheet_range(&mut wb, "说明").unwrap();
    let notes_text: Vec<String> = notes
        .rows()
        .flat_map(|r| r.iter().map(|c| c.to_string()))
        .collect();
    assert!(
        notes_text.iter().any(|t| t == "2026年第3期"),
        "{notes_text:?}"
    );
    for sheet in [&ok, &bad, &notes] {
        let all: String = sheet
            .rows()
            .flat_map(|r| r.iter().map(|c| c.to_string()))
            .collect();
        assert_no_secret("xlsx", &all, &secrets);
    }
    // JSON.
    let json: Value = serde_json::from_slice(&fetch("json").await).unwrap();
    assert_eq!(
        json["unqualified"][0]["failed_items"][0]["standard"],
        "GB 2762-2022"
    );
    assert_no_secret("json", &json.to_string(), &secrets);
    let (st, _, _) = get(
        app,
        &format!(
            "/public/v1/announcements/{}/export?format=geojson",
            s.published
        ),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // The crawl: every public route and page, with the published announcement and the draft
    // (404), answers without a secret.
    let ids = crate::public_data::CrawlIds {
        establishments: vec![s.w.establishment.clone()],
        announcements: vec![
            s.published.clone(),
            s.draft.clone(),
            Uuid::new_v4().to_string(),
        ],
        ..Default::default()
    };
    let read = crate::public_data::crawl(app, &ids, &secrets).await;
    assert!(read >= 8, "the crawl read only {read} pages");
    for p in [
        format!("/public/v1/announcements/{}", s.draft),
        format!("/public/announcements/{}", s.draft),
        format!("/public/v1/announcements/{}/export?format=json", s.draft),
    ] {
        let (st, _, _) = get(app, &p).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{p}");
    }
}
