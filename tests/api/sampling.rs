//! 食品安全抽检 over HTTP: labs and lab accounts, the category import, sample submission
//! (idempotency, field checks, unique numbers under races), the append-only chain of custody,
//! lab results (JSON and file) with another lab shut out, deadlines and the reviewers' queue.

use foodcheck::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{assert_error, TestApp};

both_backends!(
    labs_and_lab_accounts,
    category_import_checks_the_tree_by_row,
    submission_is_checked_and_idempotent,
    racing_submissions_get_distinct_numbers,
    custody_is_ordered_and_append_only,
    lab_results_are_checked_and_only_the_samples_lab_reports,
    deadlines_follow_the_facts_and_queue_for_reviewers,
);

const CATEGORIES: &str = "分类编码,级别,上级编码,分类名称,微生物\n\
    01,1,,粮食加工品,\n\
    0101,2,01,小麦粉,否\n\
    010101,3,0101,通用小麦粉,否\n";

pub(crate) struct World {
    pub(crate) app: TestApp,
    pub(crate) admin: String,
    pub(crate) reviewer: String,
    /// Two inspectors who sample together, and one who is not a sampler.
    pub(crate) insp1: String,
    pub(crate) insp1_id: String,
    pub(crate) insp2: String,
    pub(crate) insp2_id: String,
    pub(crate) outsider: String,
    pub(crate) outsider_id: String,
    /// The lab a sample is sent to, and another.
    pub(crate) lab_a: String,
    pub(crate) lab_a_id: String,
    pub(crate) lab_b: String,
    pub(crate) lab_b_id: String,
    pub(crate) establishment: String,
}

pub(crate) async fn login(app: &TestApp, username: &str) -> String {
    app.login_full(username, "phone").await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

pub(crate) async fn post_raw(
    app: &TestApp,
    path: &str,
    token: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let res = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn new_lab(app: &TestApp, admin: &str, code: &str) -> String {
    let (s, v) = app
        .post(
            "/api/v1/labs",
            admin,
            json!({"name": format!("{code}检验中心"), "code": code}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

pub(crate) async fn world(app: TestApp) -> World {
    app.user("admin", Role::Admin).await;
    let admin = login(&app, "admin").await;
    let reviewer = app.token_for("reviewer", Role::Reviewer).await;
    let insp1_id = app.user("insp1", Role::Inspector).await;
    let insp2_id = app.user("insp2", Role::Inspector).await;
    let outsider_id = app.user("outsider", Role::Inspector).await;
    let lab_a_user = app.user("lab-a", Role::Lab).await;
    let lab_b_user = app.user("lab-b", Role::Lab).await;
    let lab_a_id = new_lab(&app, &admin, "LABA").await;
    let lab_b_id = new_lab(&app, &admin, "LABB").await;
    for (user, lab) in [(&lab_a_user, &lab_a_id), (&lab_b_user, &lab_b_id)] {
        let (s, v) = app
            .put(
                &format!("/api/v1/users/{user}/lab"),
                &admin,
                json!({"lab_id": lab}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, v) = post_raw(
        &app,
        "/api/v1/food-categories/import",
        &admin,
        CATEGORIES.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, e) = app
        .post(
            "/api/v1/establishments",
            &admin,
            json!({"sign_name": "老王粮油店", "licensed_name": "天津市老王粮油商行",
                   "license_no": "JY21201150000001", "category": "small_restaurant",
                   "address": "测试路1号", "town": "周良街道", "risk_grade": "B"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    World {
        insp1: login(&app, "insp1").await,
        insp2: login(&app, "insp2").await,
        outsider: login(&app, "outsider").await,
        lab_a: login(&app, "lab-a").await,
        lab_b: login(&app, "lab-b").await,
        establishment: e["id"].as_str().unwrap().to_string(),
        app,
        admin,
        reviewer,
        insp1_id,
        insp2_id,
        outsider_id,
        lab_a_id,
        lab_b_id,
    }
}

/// 2026-03-02 (a Monday) 10:00 in Tianjin.
pub(crate) fn march_2_2026() -> i64 {
    chrono::NaiveDate::from_ymd_opt(2026, 3, 2)
        .unwrap()
        .and_hms_opt(2, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

impl World {
    /// A complete 抽样单 by the two samplers, sent to lab A.
    pub(crate) fn sample(&self, id: &str, sampled_at: i64) -> Value {
        // Two halves: one json! of the whole form passes the macro recursion limit.
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
                "premises_legal_representative": "王老五",
                "premises_contact": "13800138000",
                "producer_name": "天津某面粉厂",
                "producer_address": "天津市宝坻区",
                "producer_sc_licence": "SC10112011500012",
                "sample_name": "小麦粉",
                "sample_brand": "/",
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
                "sampled_at": sampled_at,
                "lng": 117.3,
                "lat": 39.7,
                "crs": "wgs84",
                "sampler_1": self.insp1_id,
                "sampler_2": self.insp2_id,
                "premises_opinion": "no_objection"
        });
        form.as_object_mut()
            .unwrap()
            .extend(rest.as_object().unwrap().clone());
        json!({
            "id": id,
            "establishment_id": self.establishment,
            "lab_id": self.lab_a_id,
            "category_code": "010101",
            "form": form
        })
    }

    pub(crate) async fn submitted(&self, at: i64) -> String {
        let id = Uuid::new_v4().to_string();
        let (s, v) = self
            .app
            .post("/api/v1/samples", &self.insp1, self.sample(&id, at))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        id
    }

    pub(crate) async fn custody(
        &self,
        sample: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        self.app
            .post(&format!("/api/v1/samples/{sample}/custody"), token, body)
            .await
    }

    /// Sealed and dispatched by the samplers, received (seal intact) by lab A; times from `at`.
    pub(crate) async fn received(&self, sample: &str, at: i64) {
        let hour = 3_600_000;
        for (token, kind, t) in [
            (&self.insp1, "sealed", at),
            (&self.insp2, "dispatched", at + hour),
        ] {
            let (s, v) = self
                .custody(sample, token, json!({"id": Uuid::new_v4(), "kind": kind, "occurred_at": t, "place": "老王粮油店"}))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{kind}: {v}");
        }
        let (s, v) = self
            .custody(
                sample,
                &self.lab_a,
                json!({"id": Uuid::new_v4(), "kind": "received", "occurred_at": at + 2 * hour,
                       "place": "A检验中心收样室", "sample_condition": "包装完好", "seal_intact": true}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "received: {v}");
    }
}

/// The audit actions recorded for a record, oldest first (logins left out).
async fn audit_actions(app: &TestApp, record_id: &str) -> Vec<String> {
    let mut conn = app.db().acquire().await.unwrap();
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT action FROM audit_events WHERE record_id = $1 AND action NOT LIKE 'login%' ORDER BY id")
            .bind(record_id)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    rows.into_iter().map(|(a,)| a).collect()
}

async fn labs_and_lab_accounts(app: TestApp) {
    let w = world(app).await;
    let app = &w.app;
    let (s, v) = app
        .post(
            "/api/v1/labs",
            &w.admin,
            json!({"name": "重复", "code": "laba"}),
        )
        .await;
    assert_error(s, &v, 409, "duplicate");
    let (s, v) = app
        .post("/api/v1/labs", &w.admin, json!({"name": "", "code": "a b"}))
        .await;
    assert_error(s, &v, 422, "validation_failed");
    let (s, v) = app
        .post(
            "/api/v1/labs",
            &w.reviewer,
            json!({"name": "x", "code": "X"}),
        )
        .await;
    assert_error(s, &v, 403, "forbidden");
    let (s, v) = app.get("/api/v1/labs", &w.insp1).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let codes: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["LABA", "LABB"]);
    // Only lab accounts belong to a lab, and only to one that exists.
    let (s, v) = app
        .put(
            &format!("/api/v1/users/{}/lab", w.insp1_id),
            &w.admin,
            json!({"lab_id": w.lab_a_id}),
        )
        .await;
    assert_error(s, &v, 422, "not_a_lab_account");
    let lab_user = app.user("lab-c", Role::Lab).await;
    let (s, v) = app
        .put(
            &format!("/api/v1/users/{lab_user}/lab"),
            &w.admin,
            json!({"lab_id": Uuid::new_v4()}),
        )
        .await;
    assert_error(s, &v, 422, "unknown_lab");
    let (s, v) = app
        .put(
            &format!("/api/v1/users/{}/lab", Uuid::new_v4()),
            &w.admin,
            json!({"lab_id": w.lab_a_id}),
        )
        .await;
    assert_error(s, &v, 404, "not_found");
    let (s, v) = app
        .put(
            &format!("/api/v1/users/{lab_user}/lab"),
            &w.admin,
            json!({"lab_id": w.lab_b_id}),
        )
        .await;
    assert_eq!(
        (s, v),
        (
            StatusCode::OK,
            json!({"user_id": lab_user, "lab_id": w.lab_b_id})
        )
    );
    // A lab account without samples sees an empty list; a reviewer may not list a lab's.
    let lab_c = login(app, "lab-c").await;
    let (s, v) = app.get("/api/v1/lab/samples", &lab_c).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total_count"], 0);
    let (s, v) = app.get("/api/v1/lab/samples", &w.reviewer).await;
    assert_error(s, &v, 403, "forbidden");
    assert_eq!(audit_actions(app, &w.lab_a_id).await, ["lab_created"]);
    assert_eq!(
        audit_actions(app, &lab_user).await,
        ["user_created", "user_lab_set"]
    );
}

async fn category_import_checks_the_tree_by_row(app: TestApp) {
    let w = world(app).await;
    let app = &w.app;
    let path = "/api/v1/food-categories/import";
    // Row 3's parent is missing, row 4 skips a level; nothing is written.
    let bad =
        "code,level,parent_code,name\n02,1,,食用油\n0201,2,09,花生油\n020101,4,0201,压榨花生油\n";
    let (s, v) = post_raw(app, path, &w.admin, bad.as_bytes().to_vec()).await;
    assert_error(s, &v, 422, "import_failed");
    let errors: Vec<(i64, &str)> = v["error"]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_i64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(errors, [(3, "parent_missing"), (4, "level_inconsistent")]);
    let listed = |v: &Value| v["items"].as_array().unwrap().len();
    let (_, v) = app.get("/api/v1/food-categories", &w.admin).await;
    assert_eq!(listed(&v), 3, "nothing written: {v}");

    // A dry run reports and writes nothing; an XLSX whose parent is stored already imports.
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in ["分类编码", "级别", "上级编码", "分类名称", "微生物"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for (c, v) in ["01010101", "4", "010101", "特制一等小麦粉", "是"]
        .iter()
        .enumerate()
    {
        sheet.write_string(1, c as u16, *v).unwrap();
    }
    let xlsx = book.save_to_buffer().unwrap();
    let (s, v) = post_raw(app, &format!("{path}?dry_run=true"), &w.admin, xlsx.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["dry_run"].clone(),
            v["format"].clone(),
            v["created"].clone()
        ),
        (json!(true), json!("xlsx"), json!(1))
    );
    let (_, v) = app.get("/api/v1/food-categories", &w.admin).await;
    assert_eq!(listed(&v), 3);
    let (s, v) = post_raw(app, path, &w.admin, xlsx).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = app.get("/api/v1/food-categories", &w.insp1).await;
    let leaf = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "01010101")
        .cloned()
        .unwrap();
    assert_eq!(
        leaf,
        json!({"code": "01010101", "level": 4, "parent_code": "010101", "name": "特制一等小麦粉", "microbiological": true})
    );
    // Re-importing the same file updates; a stored code cannot change level.
    let (s, v) = post_raw(app, path, &w.admin, CATEGORIES.as_bytes().to_vec()).await;
    assert_eq!((s, v["updated"].clone()), (StatusCode::OK, json!(3)), "{v}");
    let (s, v) = post_raw(app, path, &w.admin, b"code,level,name\n0101,1,x\n".to_vec()).await;
    assert_error(s, &v, 422, "import_failed");
    let (s, v) = post_raw(app, path, &w.insp1, CATEGORIES.as_bytes().to_vec()).await;
    assert_error(s, &v, 403, "forbidden");
    let (s, v) = post_raw(app, path, &w.admin, b"%PDF-1.4\0binary".to_vec()).await;
    assert_eq!(s.as_u16(), 415, "{v}");
}

async fn submission_is_checked_and_idempotent(app: TestApp) {
    let w = world(app).await;
    let app = &w.app;
    let id = Uuid::new_v4().to_string();
    let body = w.sample(&id, march_2_2026());
    let (s, first) = app.post("/api/v1/samples", &w.insp1, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let no = first["sample_no"].as_str().unwrap();
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .format("%Y%m%d")
        .to_string();
    assert_eq!(no, format!("FC-{today}-0001"));
    assert_eq!(first["sample_no_kind"], "generated");
    assert_eq!(first["state"], "submitted");
    assert_eq!(first["samplers"], json!([w.insp1_id, w.insp2_id]));
    // "/" is kept apart from missing.
    assert_eq!(first["form"]["sample_brand"], "/");
    assert_eq!(first["form"]["gps_accuracy_m"], Value::Null);
    // The same body again (either sampler): the same answer; another body: 409.
    let (s, again) = app.post("/api/v1/samples", &w.insp2, body.clone()).await;
    assert_eq!((s, &again), (StatusCode::OK, &first));
    let mut changed = body.clone();
    changed["form"]["sample_brand"] = json!("金龙鱼");
    let (s, v) = app.post("/api/v1/samples", &w.insp1, changed).await;
    assert_error(s, &v, 409, "sample_id_conflict");
    assert_eq!(audit_actions(app, &id).await, ["sample_submitted"]);

    // A missing field is named; "/" where a value is needed is refused.
    let fresh = || w.sample(&Uuid::new_v4().to_string(), march_2_2026());
    let mut b = fresh();
    b["form"].as_object_mut().unwrap().remove("sample_storage");
    b["form"]["sample_name"] = json!("/");
    let (s, v) = app.post("/api/v1/samples", &w.insp1, b).await;
    assert_error(s, &v, 422, "validation_failed");
    let fields: Vec<(&str, &str)> = v["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["field"].as_str().unwrap(), d["code"].as_str().unwrap()))
        .collect();
    assert!(fields.contains(&("sample_storage", "required")), "{v}");
    assert!(
        fields.contains(&("sample_name", "not_applicable_not_allowed")),
        "{v}"
    );
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sample_storage"));
    // The category path must match the form's category texts.
    let mut b = fresh();
    b["form"]["food_category_2"] = json!("大米");
    let (s, v) = app.post("/api/v1/samples", &w.insp1, b).await;
    assert_error(s, &v, 422, "validation_failed");
    assert_eq!(v["error"]["details"][0]["field"], "food_category_2", "{v}");
    // Samplers: the submitter among them, enabled inspectors, no 回避 at the premises.
    let (s, v) = app.post("/api/v1/samples", &w.outsider, fresh()).await;
    assert_error(s, &v, 422, "validation_failed");
    assert_eq!(v["error"]["details"][0]["code"], "submitter_not_sampler");
    let (s, v) = app
        .post(
            "/api/v1/conflicts",
            &w.admin,
            json!({"inspector_id": w.insp2_id, "establishment_id": w.establishment, "reason": "亲属经营"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app.post("/api/v1/samples", &w.insp1, fresh()).await;
    assert_error(s, &v, 422, "validation_failed");
    assert_eq!(
        (
            v["error"]["details"][0]["field"].clone(),
            v["error"]["details"][0]["code"].clone()
        ),
        (json!("sampler_2"), json!("sampler_conflict"))
    );
    // The replay of the first submission still stands.
    let (s, again) = app.post("/api/v1/samples", &w.insp1, body).await;
    assert_eq!((s, again), (StatusCode::OK, first.clone()));
    let (_, conflicts) = app.get("/api/v1/conflicts", &w.admin).await;
    let conflict = conflicts["items"][0]["id"].as_str().unwrap().to_string();
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/conflicts/{conflict}"),
            Some(&w.admin),
            None,
        )
        .await;
    assert!(s.is_success());

    // A national number is kept (normalised), and is unique.
    let mut b = fresh();
    b["form"]["sampling_no"] = json!("dc26120000123456789");
    let (s, v) = app.post("/api/v1/samples", &w.insp1, b).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["sample_no"].clone(), v["sample_no_kind"].clone()),
        (json!("DC26120000123456789"), json!("national"))
    );
    let mut b = fresh();
    b["form"]["sampling_no"] = json!("DC26120000123456789");
    let (s, v) = app.post("/api/v1/samples", &w.insp2, b).await;
    assert_error(s, &v, 409, "sample_no_taken");
    // A generated-looking number is the server's to give.
    let mut b = fresh();
    b["form"]["sampling_no"] = json!("FC-20260302-0099");
    let (s, v) = app.post("/api/v1/samples", &w.insp1, b).await;
    assert_error(s, &v, 422, "validation_failed");
    let mut b = fresh();
    b["lab_id"] = json!(Uuid::new_v4());
    let (s, v) = app.post("/api/v1/samples", &w.insp1, b).await;
    assert_error(s, &v, 422, "unknown_lab");
    let (s, v) = app.post("/api/v1/samples", &w.reviewer, fresh()).await;
    assert_error(s, &v, 403, "forbidden");
    // The next generated number follows on.
    let (s, v) = app.post("/api/v1/samples", &w.insp2, fresh()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["sample_no"], format!("FC-{today}-0002"));
}

async fn racing_submissions_get_distinct_numbers(app: TestApp) {
    let w = world(app).await;
    let app = &w.app;
    // The same national number from two devices at once: one wins, the other is told.
    let mut a = w.sample(&Uuid::new_v4().to_string(), march_2_2026());
    let mut b = w.sample(&Uuid::new_v4().to_string(), march_2_2026());
    a["form"]["sampling_no"] = json!("DC26120000000000001");
    b["form"]["sampling_no"] = json!("DC26120000000000001");
    let (ra, rb) = tokio::join!(
        app.post("/api/v1/samples", &w.insp1, a),
        app.post("/api/v1/samples", &w.insp2, b)
    );
    let mut statuses = [ra.0.as_u16(), rb.0.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{ra:?} {rb:?}");
    let loser = if ra.0 == StatusCode::CONFLICT {
        &ra.1
    } else {
        &rb.1
    };
    assert_eq!(loser["error"]["code"], "sample_no_taken", "{loser}");
    // Generated numbers: every racer gets its own.
    let bodies: Vec<Value> = (0..4)
        .map(|_| w.sample(&Uuid::new_v4().to_string(), march_2_2026()))
        .collect();
    let answers = futures::future::join_all(
        bodies
            .iter()
            .map(|b| app.post("/api/v1/samples", &w.insp1, b.clone())),
    )
    .await;
    let mut numbers: Vec<String> = answers
        .iter()
        .map(|(s, v)| {
            assert_eq!(*s, StatusCode::CREATED, "{v}");
            v["sample_no"].as_str().unwrap().to_string()
        })
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 4, "{numbers:?}");
}

async fn custody_is_ordered_and_append_only(app: TestApp) {
    let w = world(app).await;
    let app = &w.app;
    let at = march_2_2026();
    let sample = w.submitted(at).await;
    let sealed = json!({"id": Uuid::new_v4(), "kind": "sealed", "occurred_at": at, "place": "老王粮油店", "note": "双人封样"});
    let (s, first) = w.custody(&sample, &w.insp1, sealed.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(
        (first["actor_id"].clone(), first["actor_role"].clone()),
        (json!(w.insp1_id), json!("inspector"))
    );
    // Resent: the same answer; the same id edited: refused.
    let (s, again) = w.custody(&sample, &w.insp1, sealed.clone()).await;
    assert_eq!((s, &again), (StatusCode::OK, &first));
    let mut edited = sealed.clone();
    edited["note"] = json!("改过");
    let (s, v) = w.custody(&sample, &w.insp1, edited).await;
    assert_error(s, &v, 409, "custody_event_edited");
    // Out of order, twice the same kind, before the previous event.
    let (s, v) = w
        .custody(&sample, &w.lab_a, json!({"id": Uuid::new_v4(), "kind": "testing", "occurred_at": at + 10, "place": "实验室"}))
        .await;
    assert_error(s, &v, 409, "custody_out_of_order");
    let (s, v) = w
        .custody(
            &sample,
            &w.insp2,
            json!({"id": Uuid::new_v4(), "kind": "sealed", "occurred_at": at + 10, "place": "x"}),
        )
        .await;
    assert_error(s, &v, 409, "custody_already_recorded");
    let (s, v) = w
        .custody(&sample, &w.insp2, json!({"id": Uuid::new_v4(), "kind": "dispatched", "occurred_at": at - 1, "place": "x"}))
        .await;
    assert_error(s, &v, 409, "custody_time_before_previous");
    let (s, v) = w
        .custody(&sample, &w.insp2, json!({"id": Uuid::new_v4(), "kind": "dispatched", "occurred_at": at + 60_000, "place": "顺丰宝坻网点"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Receipt: by the sample's lab only, with condition and seal; a broken seal flags it.
    let received = |seal: bool| {
        json!({"id": Uuid::new_v4(), "kind": "received", "occurred_at": at + 86_400_000,
               "place": "A检验中心", "sample_condition": "外包装破损", "seal_intact": seal})
    };
    let (s, v) = w.custody(&sample, &w.insp1, received(true)).await;
    assert_error(s, &v, 422, "custody_wrong_role");
    let (s, v) = w.custody(&sample, &w.lab_b, received(true)).await;
    assert_error(s, &v, 404, "not_found");
    let (s, v) = w.custody(&sample, &w.outsider, json!({})).await;
    assert_error(s, &v, 404, "not_found");
    let (s, v) = w.custody(&sample, &w.admin, received(true)).await;
    assert_error(s, &v, 403, "forbidden");
    let (s, v) = w
        .custody(&sample, &w.lab_a, json!({"id": Uuid::new_v4(), "kind": "received", "occurred_at": at + 86_400_000, "place": "A检验中心"}))
        .await;
    assert_error(s, &v, 422, "validation_failed");
    let (s, v) = w.custody(&sample, &w.lab_a, received(false)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, detail) = app
        .get(&format!("/api/v1/samples/{sample}"), &w.reviewer)
        .await;
    assert_eq!(
        (detail["state"].clone(), detail["seal_broken"].clone()),
        (json!("received"), json!(true))
    );
    let kinds: Vec<&str> = detail["custody"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["sealed", "dispatched", "received"]);
    assert_eq!(detail["custody"][2]["seal_intact"], false);

    // The database itself refuses to edit or delete a custody event.
    let mut conn = app.db().acquire().await.unwrap();
    let update = sqlx::query("UPDATE custody_events SET place = 'elsewhere' WHERE sample_id = $1")
        .bind(&sample)
        .execute(&mut *conn)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM custody_events WHERE sample_id = $1")
        .bind(&sample)
        .execute(&mut *conn)
        .await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM custody_events WHERE sample_id = $1")
        .bind(&sample)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(n, 3);
    drop(conn);
    assert_eq!(
        audit_actions(app, &sample).await,
        [
            "sample_submitted",
            "custody_recorded",
            "custody_recorded",
            "custody_recorded"
        ]
    );
}

pub(crate) fn item(name: &str, value: &str, limit: &str, verdict: &str) -> Value {
    json!({"name": name, "value": value, "unit": "mg/kg", "limit": limit,
           "standard": "GB 2762-2022", "method": "GB 5009.12-2023", "verdict": verdict})
}

async fn lab_results_are_checked_and_only_the_samples_lab_reports(app: TestApp) {
    let w = world(app).await;
    let app = &w.app;
    let at = march_2_2026();
    let sample = w.submitted(at).await;
    let result = format!("/api/v1/samples/{sample}/result");
    let report = json!({"report_no": "WT2026-0001", "overall": "qualified",
        "items": [item("铅(以Pb计)", "0.35", "≤0.2", "unqualified"), item("镉(以Cd计)", "未检出", "≤0.1", "qualified")]});
    // Not before the lab has received it.
    let (s, v) = app.put(&result, &w.lab_a, report.clone()).await;
    assert_error(s, &v, 409, "invalid_state");
    w.received(&sample, at).await;
    // Another lab, and anyone who does not see the sample: 404, for every sample route.
    for (method, path) in [
        (Method::GET, format!("/api/v1/samples/{sample}")),
        (Method::PUT, result.clone()),
        (Method::POST, format!("/api/v1/samples/{sample}/custody")),
    ] {
        let (s, v) = app
            .call(method.clone(), &path, Some(&w.lab_b), Some(report.clone()))
            .await;
        assert_error(s, &v, 404, "not_found");
    }
    let (s, v) = app
        .get(&format!("/api/v1/samples/{sample}"), &w.outsider)
        .await;
    assert_error(s, &v, 404, "not_found");
    let (s, v) = app.put(&result, &w.insp1, report.clone()).await;
    assert_error(s, &v, 403, "forbidden");
    // The stated 合格 contradicts the failed item: refused, the item named.
    let (s, v) = app.put(&result, &w.lab_a, report.clone()).await;
    assert_error(s, &v, 422, "overall_verdict_mismatch");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("铅(以Pb计)"),
        "{v}"
    );
    assert_eq!(v["error"]["details"]["failed_items"], json!(["铅(以Pb计)"]));
    let mut report = report;
    report["overall"] = json!("不合格");
    let (s, first) = app.put(&result, &w.lab_a, report.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(first["overall"], "unqualified");
    assert_eq!(first["items"][0]["computed_verdict"], "unqualified");
    assert_eq!(first["items"][1]["disagrees"], false);
    let (s, again) = app.put(&result, &w.lab_a, report.clone()).await;
    assert_eq!((s, &again), (StatusCode::OK, &first));
    report["report_no"] = json!("WT2026-0002");
    let (s, v) = app.put(&result, &w.lab_a, report).await;
    assert_error(s, &v, 409, "result_exists");

    // The lab sees its sample without the premises' personal fields; the office sees them.
    let (s, seen) = app
        .get(&format!("/api/v1/samples/{sample}"), &w.lab_a)
        .await;
    assert_eq!(s, StatusCode::OK, "{seen}");
    let text = seen.to_string();
    assert!(
        !text.contains("王老五") && !text.contains("13800138000"),
        "{seen}"
    );
    assert_eq!(seen["form"]["premises_name"], "老王粮油店");
    assert_eq!(seen["result"]["report_no"], "WT2026-0001");
    let (_, office) = app
        .get(&format!("/api/v1/samples/{sample}"), &w.reviewer)
        .await;
    assert_eq!(office["form"]["premises_legal_representative"], "王老五");
    let (_, mine) = app
        .get(&format!("/api/v1/samples/{sample}"), &w.insp2)
        .await;
    assert_eq!(mine["form"]["premises_contact"], "13800138000");
    let (_, listed) = app.get("/api/v1/lab/samples", &w.lab_a).await;
    assert_eq!(listed["items"][0]["id"], sample.as_str());
    let (_, listed) = app.get("/api/v1/lab/samples", &w.lab_b).await;
    assert_eq!(listed["total_count"], 0);

    // Items from a file: rows named in problems; a good file is recorded.
    let other = w.submitted(at).await;
    w.received(&other, at).await;
    let file = format!("/api/v1/samples/{other}/result/items-file");
    let csv = "检验项目,检验结果,计量单位,标准指标,单项判定\n铅,0.05,mg/kg,≤0.2,合格\n镉,未检出,mg/kg,≤0.1,\n";
    let (s, v) = post_raw(
        app,
        &format!("{file}?report_no=WT2026-0003&overall=qualified"),
        &w.lab_a,
        csv.as_bytes().to_vec(),
    )
    .await;
    assert_error(s, &v, 422, "import_failed");
    assert_eq!(
        (
            v["error"]["details"][0]["row"].clone(),
            v["error"]["details"][0]["code"].clone()
        ),
        (json!(3), json!("required"))
    );
    let csv = csv.replace("≤0.1,\n", "≤0.1,合格\n");
    let (s, v) = post_raw(
        app,
        &format!("{file}?report_no=WT2026-0003&overall=合格"),
        &w.lab_b,
        csv.as_bytes().to_vec(),
    )
    .await;
    assert_error(s, &v, 404, "not_found");
    let (s, v) = post_raw(
        app,
        &format!("{file}?report_no=WT2026-0003&overall=合格"),
        &w.lab_a,
        csv.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (
            v["overall"].clone(),
            v["source"].clone(),
            v["items"].as_array().unwrap().len()
        ),
        (json!("qualified"), json!("file"), 2)
    );
    assert_eq!(
        audit_actions(app, &other).await.last().unwrap(),
        "lab_result_reported"
    );
}

pub(crate) fn rule<'a>(detail: &'a Value, rule: &str) -> &'a Value {
    detail["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} deadline: {detail}"))
}

async fn deadlines_follow_the_facts_and_queue_for_reviewers(app: TestApp) {
    let w = world(app).await;
    let app = &w.app;
    crate::common::cover_this_and_next_year(app, &w.admin).await;
    let at = march_2_2026();
    let sample = w.submitted(at).await;
    let detail = |token: &str| {
        let path = format!("/api/v1/samples/{sample}");
        let token = token.to_string();
        async move { app.get(&path, &token).await.1 }
    };
    // Sampled Monday 2 March 2026: delivery within 5 working days, by Monday 9 March.
    let d = detail(&w.reviewer).await;
    assert_eq!(d["deadlines"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(
        rule(&d, "delivery").clone(),
        json!({"rule": "delivery", "period": {"unit": "working_days", "days": 5}, "start": "2026-03-02",
               "due": "2026-03-09", "done_on": null, "status": "overdue"})
    );
    // Received Tuesday 3 March: delivery met; the lab reports within 20 working days.
    w.received(&sample, at + 86_400_000).await;
    let d = detail(&w.lab_a).await;
    assert_eq!(rule(&d, "delivery")["status"], "met");
    assert_eq!(rule(&d, "delivery")["done_on"], "2026-03-03");
    assert_eq!(rule(&d, "lab_report")["start"], "2026-03-03");
    assert_eq!(rule(&d, "lab_report")["due"], "2026-03-31");
    // An unqualified report on Friday 6 March starts the bureau's 2 working days.
    let (s, v) = app
        .put(
            &format!("/api/v1/samples/{sample}/result"),
            &w.lab_a,
            json!({"report_no": "WT2026-0009", "overall": "unqualified", "items": [item("铅", "0.35", "≤0.2", "unqualified")]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let friday = at + 4 * 86_400_000;
    for kind in ["testing", "reported"] {
        let (s, v) = w
            .custody(&sample, &w.lab_a, json!({"id": Uuid::new_v4(), "kind": kind, "occurred_at": friday, "place": "A检验中心"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let d = detail(&w.reviewer).await;
    assert_eq!(rule(&d, "lab_report")["status"], "met");
    assert_eq!(rule(&d, "unqualified_to_bureau")["due"], "2026-03-10");

    // The queue: this sample's open deadline is overdue; one sampled today is due.
    let recent = w.submitted(chrono::Utc::now().timestamp_millis()).await;
    let (s, overdue) = app
        .get("/api/v1/sampling/deadlines?status=overdue", &w.reviewer)
        .await;
    assert_eq!(s, StatusCode::OK, "{overdue}");
    let entries = |page: &Value| -> Vec<(String, String)> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["sample_id"].as_str().unwrap().to_string(),
                    e["deadline"]["rule"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        entries(&overdue),
        [(sample.clone(), "unqualified_to_bureau".to_string())]
    );
    let (_, due) = app.get("/api/v1/sampling/deadlines", &w.admin).await;
    assert_eq!(entries(&due), [(recent.clone(), "delivery".to_string())]);
    assert_eq!(due["items"][0]["deadline"]["status"], "pending");
    // Cursor paging walks the queue one entry at a time.
    let other = w.submitted(chrono::Utc::now().timestamp_millis()).await;
    let (_, p1) = app
        .get("/api/v1/sampling/deadlines?status=due&limit=1", &w.reviewer)
        .await;
    let cursor = p1["next_cursor"].as_str().unwrap().to_string();
    let (_, p2) = app
        .get(
            &format!("/api/v1/sampling/deadlines?status=due&limit=1&cursor={cursor}"),
            &w.reviewer,
        )
        .await;
    let mut walked = [entries(&p1), entries(&p2)].concat();
    walked.sort();
    let mut want = vec![
        (recent, "delivery".to_string()),
        (other, "delivery".to_string()),
    ];
    want.sort();
    assert_eq!(walked, want);
    assert_eq!(p2["next_cursor"], Value::Null);
    let (s, v) = app
        .get("/api/v1/sampling/deadlines?cursor=nope", &w.reviewer)
        .await;
    assert_error(s, &v, 400, "invalid_cursor");
    let (s, v) = app
        .get("/api/v1/sampling/deadlines?status=late", &w.reviewer)
        .await;
    assert_error(s, &v, 400, "invalid_filter");
    let (s, v) = app.get("/api/v1/sampling/deadlines", &w.insp1).await;
    assert_error(s, &v, 403, "forbidden");
}
