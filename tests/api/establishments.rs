use foodcheck::auth::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{assert_error, TestApp};

both_backends!(
    create_read_update,
    uscc_check_failure_is_a_warning,
    duplicates_are_409,
    bad_input_is_422_and_writes_nothing,
    roles_and_ownership,
    search_filters_and_paging,
    search_by_radius,
    bad_search_filters_are_400,
    import_csv_create_then_update,
    import_gb18030_and_xlsx,
    import_errors_write_nothing,
    import_bad_files,
    import_template_round_trips,
    formula_like_cells_are_warned,
    registry_writes_record_typed_audit_events,
    import_records_counts_and_the_file_hash,
    demo_fill_is_one_recorded_use_case,
);

/// Valid USCCs (check characters verified by the algorithm).
const USCC: [&str; 3] = [
    "91350100M000100Y43",
    "91110000802100433B",
    "914403001922038216",
];

fn body(n: u32) -> Value {
    json!({
        "sign_name": format!("老王家常菜{n}"),
        "licensed_name": format!("天津市老王餐饮管理有限公司{n}"),
        "license_no": format!("JY2120101{:07}", n),
        "category": "small_restaurant",
        "address": format!("天津市宝坻区南关大街{n}号"),
        "town": "宝坻城区",
        "risk_grade": "C",
        "contact_name": "王师傅",
        "contact_phone": "13800138000",
        "location": {"lng": 117.2949004832, "lat": 39.71845076, "crs": "gcj02"}
    })
}

async fn count(app: &TestApp) -> i64 {
    let mut conn = app.db().acquire().await.unwrap();
    foodcheck::store::establishments::count(&mut conn)
        .await
        .unwrap()
}

async fn create_read_update(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let mut b = body(1);
    b["uscc"] = json!(USCC[0]);
    let (s, created) = app.post("/api/v1/establishments", &admin, b.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["category_label"], "小型餐馆");
    assert_eq!(created["status"], "open");
    assert_eq!(created["warnings"], json!([]));
    // GCJ-02 in, the raw point kept and WGS-84 normalised (reference vector: Baodi centre).
    let loc = &created["location"];
    assert_eq!(loc["crs"], "gcj02");
    assert_eq!(loc["lng"], 117.2949004832);
    let d = foodcheck::geo::distance_m(
        geo_types::Point::new(
            loc["wgs84_lng"].as_f64().unwrap(),
            loc["wgs84_lat"].as_f64().unwrap(),
        ),
        geo_types::Point::new(117.2885, 39.7172),
    );
    assert!(d < 1.0, "normalised point is {d} m off");
    let id = created["id"].as_str().unwrap();
    let (s, got) = app
        .get(&format!("/api/v1/establishments/{id}"), &admin)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["uscc"], USCC[0]);
    b["risk_grade"] = json!("D");
    b["status"] = json!("suspended");
    b["category"] = json!("快餐店");
    let (s, updated) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/establishments/{id}"),
            Some(&admin),
            Some(b.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{updated}");
    assert_eq!(updated["risk_grade"], "D");
    assert_eq!(updated["category"], "fast_food");
    assert_eq!(updated["created_at"], created["created_at"]);
    let (s, e) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/establishments/00000000-0000-0000-0000-000000000000",
            Some(&admin),
            Some(b),
        )
        .await;
    assert_error(s, &e, 404, "not_found");
    assert_eq!(count(&app).await, 1);
}

async fn uscc_check_failure_is_a_warning(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let mut b = body(2);
    // Last character changed: fails the GB 32100 check, stored with a warning.
    b["uscc"] = json!("91350100M000100Y44");
    let (s, created) = app.post("/api/v1/establishments", &admin, b).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["warnings"][0]["code"], "uscc_check_failed");
    assert_eq!(created["warnings"][0]["field"], "uscc");
}

async fn duplicates_are_409(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let mut a = body(3);
    a["uscc"] = json!(USCC[1]);
    assert_eq!(
        app.post("/api/v1/establishments", &admin, a.clone())
            .await
            .0,
        StatusCode::CREATED
    );
    let mut same_uscc = body(4);
    same_uscc["uscc"] = json!(USCC[1]);
    let (s, e) = app.post("/api/v1/establishments", &admin, same_uscc).await;
    assert_error(s, &e, 409, "duplicate");
    assert!(e["error"]["message"].as_str().unwrap().contains("uscc"));
    let mut same_license = body(5);
    same_license["license_no"] = a["license_no"].clone();
    let (s, e) = app
        .post("/api/v1/establishments", &admin, same_license)
        .await;
    assert_error(s, &e, 409, "duplicate");
    assert_eq!(count(&app).await, 1);
}

async fn bad_input_is_422_and_writes_nothing(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("license_no", json!("JY123"), "invalid_license_no"),
        (
            "license_no",
            json!("SC10612010500011"),
            "invalid_license_no",
        ),
        ("uscc", json!("91350100M00010OY43"), "invalid_uscc"),
        ("category", json!("夜总会"), "unknown_category"),
        ("risk_grade", json!("E"), "invalid_risk_grade"),
        ("status", json!("bankrupt"), "invalid_status"),
        ("sign_name", json!("   "), "required"),
        ("contact_phone", json!("not a phone"), "invalid_phone"),
        (
            "location",
            json!({"lng": 117.2, "lat": 91.0, "crs": "wgs84"}),
            "invalid_coordinates",
        ),
        (
            "location",
            json!({"lng": 181.0, "lat": 39.0, "crs": "wgs84"}),
            "invalid_coordinates",
        ),
        (
            "location",
            json!({"lng": 117.2, "lat": 39.0, "crs": "mercator"}),
            "unknown_crs",
        ),
    ];
    for (field, value, code) in cases {
        let mut b = body(6);
        b[field] = value;
        let (s, e) = app.post("/api/v1/establishments", &admin, b).await;
        assert_error(s, &e, 422, "validation_failed");
        let details = e["error"]["details"].as_array().unwrap();
        assert!(
            details.iter().any(|d| d["code"] == code),
            "{field}: expected {code} in {e}"
        );
    }
    // Neither identifier.
    let mut b = body(7);
    b.as_object_mut().unwrap().remove("license_no");
    let (s, e) = app.post("/api/v1/establishments", &admin, b).await;
    assert_error(s, &e, 422, "validation_failed");
    assert_eq!(e["error"]["details"][0]["code"], "identifier_required");
    // NaN cannot be written in JSON; as a string it is a type error.
    let mut b = body(8);
    b["location"] = json!({"lng": "NaN", "lat": 39.0, "crs": "wgs84"});
    let (s, e) = app.post("/api/v1/establishments", &admin, b).await;
    assert_error(s, &e, 422, "invalid_body");
    // Several problems are reported at once.
    let (s, e) = app
        .post("/api/v1/establishments", &admin, json!({"category": "x"}))
        .await;
    assert_error(s, &e, 422, "validation_failed");
    assert!(e["error"]["details"].as_array().unwrap().len() >= 5);
    assert_eq!(count(&app).await, 0);
}

async fn roles_and_ownership(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let (_, created) = app.post("/api/v1/establishments", &admin, body(9)).await;
    let id = created["id"].as_str().unwrap();
    let reviewer = app.token_for("reviewer", Role::Reviewer).await;
    let inspector = app.token_for("inspector", Role::Inspector).await;
    let lab = app.token_for("lab", Role::Lab).await;
    // Reviewers read everything, write nothing.
    assert_eq!(
        app.get("/api/v1/establishments", &reviewer).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/api/v1/establishments/{id}"), &reviewer)
            .await
            .0,
        StatusCode::OK
    );
    let (s, e) = app
        .post("/api/v1/establishments", &reviewer, body(10))
        .await;
    assert_error(s, &e, 403, "forbidden");
    // Inspectors and labs read establishments only through tasks, never the registry.
    for t in [&inspector, &lab] {
        let (s, e) = app.get("/api/v1/establishments", t).await;
        assert_error(s, &e, 403, "forbidden");
        let (s, e) = app.get(&format!("/api/v1/establishments/{id}"), t).await;
        assert_error(s, &e, 403, "forbidden");
        let (s, e) = app.post("/api/v1/establishments", t, body(11)).await;
        assert_error(s, &e, 403, "forbidden");
    }
    let res = app
        .client
        .post(app.url("/api/v1/establishments/import"))
        .bearer_auth(&reviewer)
        .body("a,b")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let (s, _) = app
        .call(reqwest::Method::GET, "/api/v1/establishments", None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(count(&app).await, 1);
}

async fn seed(app: &TestApp, admin: &str, rows: &[(&str, &str, &str, &str, &str, f64, f64)]) {
    for (i, (name, town, category, grade, status, lng, lat)) in rows.iter().enumerate() {
        let mut b = body(100 + i as u32);
        b["sign_name"] = json!(name);
        b["town"] = json!(town);
        b["category"] = json!(category);
        b["risk_grade"] = json!(grade);
        b["status"] = json!(status);
        b["location"] = json!({"lng": lng, "lat": lat, "crs": "wgs84"});
        let (s, e) = app.post("/api/v1/establishments", admin, b).await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
    }
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["sign_name"].as_str().unwrap().to_string())
        .collect()
}

async fn search_filters_and_paging(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    seed(
        &app,
        &admin,
        &[
            (
                "兰州拉面",
                "周良街道",
                "snack_bar",
                "B",
                "open",
                117.30,
                39.72,
            ),
            (
                "沙县小吃",
                "周良街道",
                "snack_bar",
                "C",
                "open",
                117.31,
                39.72,
            ),
            (
                "川味火锅",
                "海滨街道",
                "large_restaurant",
                "D",
                "open",
                117.32,
                39.72,
            ),
            (
                "麦香园快餐",
                "海滨街道",
                "fast_food",
                "A",
                "closed",
                117.33,
                39.72,
            ),
            (
                "兰花茶饮",
                "大口屯镇",
                "beverage_shop",
                "D",
                "suspended",
                117.34,
                39.72,
            ),
        ],
    )
    .await;
    let (_, p) = app.get("/api/v1/establishments?q=兰", &admin).await;
    assert_eq!(names(&p), vec!["兰州拉面", "兰花茶饮"]);
    assert_eq!(p["total_count"], 2);
    let (_, p) = app
        .get("/api/v1/establishments?town=海滨街道", &admin)
        .await;
    assert_eq!(p["total_count"], 2);
    let (_, p) = app
        .get("/api/v1/establishments?category=小吃店", &admin)
        .await;
    assert_eq!(p["total_count"], 2);
    let (_, p) = app
        .get("/api/v1/establishments?risk_grade=C,D&status=open", &admin)
        .await;
    assert_eq!(names(&p), vec!["川味火锅", "沙县小吃"]);
    // Code search, case-insensitive substring.
    let (_, p) = app.get("/api/v1/establishments?q=jy2120101", &admin).await;
    assert_eq!(p["total_count"], 5);
    // A LIKE wildcard in the query is a literal.
    let (_, p) = app.get("/api/v1/establishments?q=%25", &admin).await;
    assert_eq!(p["total_count"], 0);
    // Paging: meta and a page past the end.
    let (_, p) = app
        .get("/api/v1/establishments?page_size=2&page=2", &admin)
        .await;
    assert_eq!(p["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        (
            p["total_count"].as_i64(),
            p["page"].as_i64(),
            p["page_size"].as_i64()
        ),
        (Some(5), Some(2), Some(2))
    );
    let (_, p) = app
        .get("/api/v1/establishments?page_size=2&page=9", &admin)
        .await;
    assert_eq!(p["items"], json!([]));
    assert_eq!(p["total_count"], 5);
}

async fn search_by_radius(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    // Points east of a centre at 39.0°N: 0.01° of longitude there is about 864 m.
    seed(
        &app,
        &admin,
        &[
            ("near", "t", "fast_food", "A", "open", 117.2010, 39.0842),
            ("middle", "t", "fast_food", "A", "open", 117.2060, 39.0842),
            ("far", "t", "fast_food", "A", "open", 117.2300, 39.0842),
        ],
    )
    .await;
    let (s, p) = app
        .get(
            "/api/v1/establishments?near_lng=117.2009&near_lat=39.0842&radius_m=1000",
            &admin,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(names(&p), vec!["near", "middle"]);
    let d0 = p["items"][0]["distance_m"].as_f64().unwrap();
    let d1 = p["items"][1]["distance_m"].as_f64().unwrap();
    assert!(
        (d0 - 8.6).abs() < 1.0 && (d1 - 441.0).abs() < 5.0,
        "{d0} {d1}"
    );
    // The same centre given in GCJ-02 (as AMap reports it) finds the same places.
    let (gx, gy) = foodcheck::geo::wgs84_to_gcj02(117.2009, 39.0842);
    let (_, p) = app
        .get(
            &format!(
                "/api/v1/establishments?near_lng={gx}&near_lat={gy}&near_crs=gcj02&radius_m=1000"
            ),
            &admin,
        )
        .await;
    assert_eq!(names(&p), vec!["near", "middle"]);
    // A naive search with the GCJ-02 point as if it were WGS-84 would be ~500 m off.
    let (_, p) = app
        .get(
            &format!("/api/v1/establishments?near_lng={gx}&near_lat={gy}&radius_m=100"),
            &admin,
        )
        .await;
    assert_eq!(p["total_count"], 0);
}

async fn bad_search_filters_are_400(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    for q in [
        "category=nightclub",
        "risk_grade=Z",
        "status=gone",
        "near_lng=117&near_lat=39",
        "near_lng=117&near_lat=39&radius_m=0",
        "near_lng=117&near_lat=39&radius_m=NaN",
        "near_lng=NaN&near_lat=39&radius_m=10",
        "near_lng=117&near_lat=95&radius_m=10",
        "near_lng=117&near_lat=39&radius_m=10&near_crs=utm",
        "page_size=0",
        "page_size=501",
        "page=abc",
    ] {
        let (s, e) = app
            .get(&format!("/api/v1/establishments?{q}"), &admin)
            .await;
        assert_error(s, &e, 400, "bad_request");
    }
}

const CSV_HEADER: &str = "牌匾名称,营业执照名称,统一社会信用代码,食品经营许可证编号,业态,经营地址,街道乡镇,风险等级,经度,纬度,坐标系,联系人,联系电话";

fn csv_rows(rows: &[String]) -> String {
    let mut s = String::from(CSV_HEADER);
    for r in rows {
        s.push('\n');
        s.push_str(r);
    }
    s.push('\n');
    s
}

fn csv_row(n: u32, uscc: &str, grade: &str) -> String {
    format!("店{n},公司{n},{uscc},JY21201010{n:06},小型餐馆,地址{n},周良街道,{grade},117.29,39.71,gcj02,张三,022-29241234")
}

async fn import(app: &TestApp, token: &str, bytes: Vec<u8>, dry_run: bool) -> (StatusCode, Value) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/establishments/import?dry_run={dry_run}")))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

async fn import_csv_create_then_update(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let rows = vec![
        csv_row(1, USCC[0], "A"),
        csv_row(2, USCC[1], "B"),
        csv_row(3, "", "C"),
    ];
    let mut bytes = b"\xEF\xBB\xBF".to_vec(); // Excel's UTF-8 BOM
    bytes.extend(csv_rows(&rows).into_bytes());
    // Dry run: a report, nothing written.
    let (s, r) = import(&app, &admin, bytes.clone(), true).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (
            r["created"].as_u64(),
            r["updated"].as_u64(),
            r["dry_run"].as_bool()
        ),
        (Some(3), Some(0), Some(true))
    );
    assert_eq!(count(&app).await, 0);
    let (s, r) = import(&app, &admin, bytes, false).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (
            r["created"].as_u64(),
            r["updated"].as_u64(),
            r["format"].as_str()
        ),
        (Some(3), Some(0), Some("csv"))
    );
    assert_eq!(count(&app).await, 3);
    // Re-import with changes: matched by uscc, else license_no; one new row.
    let rows = vec![
        csv_row(1, USCC[0], "D"),
        csv_row(3, "", "D"),
        csv_row(4, USCC[2], "A"),
    ];
    let (s, r) = import(&app, &admin, csv_rows(&rows).into_bytes(), false).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (r["created"].as_u64(), r["updated"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(count(&app).await, 4);
    let (_, p) = app.get("/api/v1/establishments?risk_grade=D", &admin).await;
    assert_eq!(names(&p), vec!["店1", "店3"]);
    let loc = &p["items"][0]["location"];
    assert_eq!(loc["crs"], "gcj02");
    assert!(
        (loc["wgs84_lng"].as_f64().unwrap() - 117.29).abs() > 0.001,
        "GCJ-02 was not normalised"
    );
}

async fn import_gb18030_and_xlsx(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let text = csv_rows(&[csv_row(11, "", "B")]);
    let (gb, _, _) = encoding_rs::GB18030.encode(&text);
    let (s, r) = import(&app, &admin, gb.into_owned(), false).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["created"], 1);
    let (_, p) = app.get("/api/v1/establishments?q=店11", &admin).await;
    assert_eq!(
        p["items"][0]["town"], "周良街道",
        "GB18030 text was not decoded"
    );

    // An XLSX made by a spreadsheet library, English headers, numbers as numeric cells.
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    let headers = [
        "sign_name",
        "licensed_name",
        "uscc",
        "license_no",
        "category",
        "address",
        "town",
        "risk_grade",
        "lng",
        "lat",
        "crs",
        "contact_phone",
    ];
    for (c, h) in headers.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for r in 1..=3u32 {
        let vals = [
            format!("表店{r}"),
            format!("表公司{r}"),
            String::new(),
            format!("JY2120101099{r:04}"),
            "饮品店".into(),
            format!("路{r}号"),
            "海滨街道".into(),
            "D".into(),
        ];
        for (c, v) in vals.iter().enumerate() {
            ws.write_string(r, c as u16, v).unwrap();
        }
        ws.write_number(r, 8, 117.2 + f64::from(r) / 100.0).unwrap();
        ws.write_number(r, 9, 39.1).unwrap();
        ws.write_string(r, 10, "wgs84").unwrap();
        ws.write_number(r, 11, 13912345678.0).unwrap();
    }
    let bytes = wb.save_to_buffer().unwrap();
    let (s, r) = import(&app, &admin, bytes, false).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (r["created"].as_u64(), r["format"].as_str()),
        (Some(3), Some("xlsx"))
    );
    let (_, p) = app
        .get("/api/v1/establishments?town=海滨街道", &admin)
        .await;
    assert_eq!(p["total_count"], 3);
    assert_eq!(p["items"][0]["contact_phone"], "13912345678");
    assert_eq!(p["items"][0]["category"], "beverage_shop");
}

async fn import_errors_write_nothing(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let rows = vec![
        csv_row(21, "", "A"),
        "店22,公司22,,JY999,小型餐馆,地址,周良街道,A,117.29,39.71,gcj02,张三,13800138000"
            .to_string(),
        "店23,公司23,,JY21201010000023,夜总会,地址,周良街道,Q,abc,39.71,gcj02,张三,13800138000"
            .to_string(),
        csv_row(21, "", "B"),
    ];
    let (s, e) = import(&app, &admin, csv_rows(&rows).into_bytes(), false).await;
    assert_error(s, &e, 422, "import_failed");
    let report = &e["error"]["details"];
    assert_eq!(report["created"], 0);
    let errors = report["errors"].as_array().unwrap();
    let has = |row: u64, code: &str, column: Option<&str>| {
        errors.iter().any(|x| {
            x["row"] == row && x["code"] == code && column.is_none_or(|c| x["column"] == c)
        })
    };
    assert!(
        has(3, "invalid_license_no", Some("食品经营许可证编号")),
        "{report}"
    );
    assert!(has(4, "unknown_category", Some("业态")), "{report}");
    assert!(has(4, "invalid_risk_grade", Some("风险等级")), "{report}");
    assert!(has(4, "not_a_number", Some("经度")), "{report}");
    assert!(has(5, "duplicate_in_file", None), "{report}");
    assert_eq!(count(&app).await, 0, "a failed import wrote rows");
    // A file whose license belongs to an existing record with another uscc: refused as a whole.
    let (s, _) = import(
        &app,
        &admin,
        csv_rows(&[csv_row(31, USCC[0], "A")]).into_bytes(),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = import(
        &app,
        &admin,
        csv_rows(&[csv_row(32, "", "A"), csv_row(31, USCC[1], "A")]).into_bytes(),
        false,
    )
    .await;
    assert_error(s, &e, 422, "import_failed");
    assert_eq!(e["error"]["details"]["errors"][0]["code"], "code_conflict");
    assert_eq!(count(&app).await, 1);
}

async fn import_bad_files(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    // A PNG is neither CSV nor XLSX.
    let png =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    let (s, e) = import(&app, &admin, png, false).await;
    assert_error(s, &e, 415, "unsupported_media_type");
    // A required column missing.
    let (s, e) = import(
        &app,
        &admin,
        "牌匾名称,营业执照名称,食品经营许可证编号\n店,公司,JY21201010000001\n".into(),
        false,
    )
    .await;
    assert_error(s, &e, 422, "invalid_table");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("category"),
        "{e}"
    );
    // Empty.
    let (s, e) = import(&app, &admin, Vec::new(), false).await;
    assert_eq!(s.as_u16(), 422, "{e}");
    // 50 MB: over the 20 MB import limit.
    let (status, e) = crate::common::raw_post_auth(
        &app.base,
        "/api/v1/establishments/import",
        &admin,
        50 * 1024 * 1024,
    )
    .await;
    assert_error(
        StatusCode::from_u16(status).unwrap(),
        &e,
        413,
        "payload_too_large",
    );
    assert_eq!(count(&app).await, 0);
}

async fn import_template_round_trips(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let res = app
        .client
        .get(app.url("/api/v1/establishments/import-template.xlsx"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("spreadsheetml"));
    let bytes = res.bytes().await.unwrap().to_vec();
    let parsed = foodcheck::establishment::import::parse(&bytes, 10).unwrap();
    assert_eq!(parsed.rows.len(), 0);
    for field in [
        "sign_name",
        "licensed_name",
        "uscc",
        "license_no",
        "category",
        "address",
        "town",
        "risk_grade",
        "lng",
        "lat",
        "crs",
    ] {
        assert!(parsed.columns.contains_key(field), "template lacks {field}");
    }
    let inspector = app.token_for("insp", Role::Inspector).await;
    let res = app
        .client
        .get(app.url("/api/v1/establishments/import-template.xlsx"))
        .bearer_auth(&inspector)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

/// OWASP CSV injection: a cell a spreadsheet could run is stored as given (it is what the
/// sign says) and the import warns for the row and column; exports neutralise it.
async fn formula_like_cells_are_warned(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let mut rows = vec![csv_row(1, USCC[0], "A"), csv_row(2, USCC[1], "B")];
    rows[1] = rows[1].replacen("店2", "=HYPERLINK(\"\"http://x\"\";\"\"点我\"\")", 1);
    rows[1] = format!("\"{}", rows[1].replacen(",", "\",", 1));
    let (s, r) = import(&app, &admin, csv_rows(&rows).into_bytes(), false).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["created"], 2, "{r}");
    let warned: Vec<_> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["code"] == "formula_like")
        .collect();
    assert_eq!(warned.len(), 1, "{r}");
    assert_eq!(warned[0]["row"], 3, "{r}");
    let mut b = body(7);
    b["address"] = json!("@SUM(A1:A9)");
    let (s, created) = app.post("/api/v1/establishments", &admin, b).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["warnings"][0]["code"], "formula_like", "{created}");
    assert_eq!(created["warnings"][0]["field"], "address", "{created}");
    assert_eq!(created["address"], "@SUM(A1:A9)", "stored as given");
}

/// Sends a JSON request with an `x-request-id`, as a client correlating its calls would.
pub async fn send_with_id(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    request_id: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("x-request-id", request_id);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// One stored audit event, as read back from `audit_events`.
#[derive(Debug)]
pub struct AuditRow {
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub device_id: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub changes: Value,
}

impl AuditRow {
    /// `(before, after)` of one changed field; `None` when the field is not listed.
    pub fn change(&self, field: &str) -> Option<(Value, Value)> {
        self.changes
            .as_array()?
            .iter()
            .find(|c| c["field"] == field)
            .map(|c| (c["before"].clone(), c["after"].clone()))
    }
    pub fn fields(&self) -> Vec<String> {
        self.changes
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| c["field"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The audit events about one record, oldest first.
pub async fn audit_of(app: &TestApp, record_type: &str, record_id: &str) -> Vec<AuditRow> {
    type Row = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        String,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT actor_id, actor_role, device_id, request_id, action, changes FROM audit_events \
         WHERE record_type = $1 AND record_id = $2 ORDER BY id",
    )
    .bind(record_type)
    .bind(record_id)
    .fetch_all(app.db().pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(
            |(actor_id, actor_role, device_id, request_id, action, changes)| AuditRow {
                actor_id,
                actor_role,
                device_id,
                request_id,
                action,
                changes: serde_json::from_str(&changes).unwrap(),
            },
        )
        .collect()
}

/// How many audit events there are in all (to show a refused write recorded nothing).
pub async fn audit_count(app: &TestApp) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_events")
        .fetch_one(app.db().pool())
        .await
        .unwrap();
    n
}

/// Logs in an existing user on `test-device`: (user id, access token).
pub async fn login(app: &TestApp, username: &str, role: Role) -> (String, String) {
    let id = app.user(username, role).await;
    let token = app.login_full(username, "test-device").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    (id, token)
}

async fn registry_writes_record_typed_audit_events(app: TestApp) {
    use reqwest::Method;
    let (admin_id, admin) = login(&app, "admin", Role::Admin).await;
    let (s, created) = send_with_id(
        &app,
        Method::POST,
        "/api/v1/establishments",
        &admin,
        "req-create-1",
        Some(body(1)),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let events = audit_of(&app, "establishment", id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.action, "establishment_created");
    assert_eq!(e.actor_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(e.actor_role.as_deref(), Some("admin"));
    assert_eq!(e.device_id.as_deref(), Some("test-device"));
    assert_eq!(e.request_id.as_deref(), Some("req-create-1"));
    assert_eq!(
        e.change("sign_name"),
        Some((Value::Null, json!("老王家常菜1")))
    );
    assert_eq!(e.change("risk_grade"), Some((Value::Null, json!("C"))));
    assert_eq!(
        e.change("contact_phone"),
        Some((Value::Null, json!("13800138000")))
    );
    // Ids and timestamps are the event's own columns, not changes of the record.
    assert!(e.change("id").is_none() && e.change("updated_at").is_none());

    // An update lists exactly the fields that changed, with before and after.
    let mut changed = body(1);
    changed["sign_name"] = json!("老王家常菜(新店)");
    changed["risk_grade"] = json!("D");
    let (s, v) = send_with_id(
        &app,
        Method::PUT,
        &format!("/api/v1/establishments/{id}"),
        &admin,
        "req-update-1",
        Some(changed.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let events = audit_of(&app, "establishment", id).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let e = &events[1];
    assert_eq!(e.action, "establishment_updated");
    assert_eq!(e.request_id.as_deref(), Some("req-update-1"));
    assert_eq!(e.actor_id.as_deref(), Some(admin_id.as_str()));
    let mut fields = e.fields();
    fields.sort();
    assert_eq!(fields, ["risk_grade", "sign_name"]);
    assert_eq!(
        e.change("sign_name"),
        Some((json!("老王家常菜1"), json!("老王家常菜(新店)")))
    );
    assert_eq!(e.change("risk_grade"), Some((json!("C"), json!("D"))));

    // Refused writes record nothing: bad input, a duplicate, the wrong role, no such record.
    let (_, reviewer) = login(&app, "rev", Role::Reviewer).await;
    let before = audit_count(&app).await;
    let mut bad = changed.clone();
    bad["risk_grade"] = json!("Z");
    let (s, e) = send_with_id(
        &app,
        Method::PUT,
        &format!("/api/v1/establishments/{id}"),
        &admin,
        "req-bad",
        Some(bad),
    )
    .await;
    assert_error(s, &e, 422, "validation_failed");
    let (s, e) = send_with_id(
        &app,
        Method::POST,
        "/api/v1/establishments",
        &admin,
        "req-dup",
        Some(changed.clone()),
    )
    .await;
    assert_error(s, &e, 409, "duplicate");
    let (s, e) = send_with_id(
        &app,
        Method::POST,
        "/api/v1/establishments",
        &reviewer,
        "req-rev",
        Some(body(2)),
    )
    .await;
    assert_error(s, &e, 403, "forbidden");
    let (s, e) = send_with_id(
        &app,
        Method::PUT,
        &format!("/api/v1/establishments/{}", uuid::Uuid::new_v4()),
        &admin,
        "req-404",
        Some(body(3)),
    )
    .await;
    assert_error(s, &e, 404, "not_found");
    assert_eq!(audit_count(&app).await, before);
}

async fn import_records_counts_and_the_file_hash(app: TestApp) {
    use sha2::Digest;
    let (admin_id, admin) = login(&app, "admin", Role::Admin).await;
    let bytes = csv_rows(&[csv_row(1, USCC[0], "A"), csv_row(2, "", "B")]).into_bytes();
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let before = audit_count(&app).await;
    let (s, r) = import(&app, &admin, bytes.clone(), true).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(audit_count(&app).await, before, "a dry run writes nothing");
    let res = app
        .client
        .post(app.url("/api/v1/establishments/import"))
        .bearer_auth(&admin)
        .header("content-type", "application/octet-stream")
        .header("x-request-id", "req-import-1")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // One event for the file, not one per row.
    assert_eq!(audit_count(&app).await, before + 1);
    let events = audit_of(&app, "batch", &sha).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.action, "establishments_imported");
    assert_eq!(e.actor_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(e.actor_role.as_deref(), Some("admin"));
    assert_eq!(e.request_id.as_deref(), Some("req-import-1"));
    assert_eq!(e.change("file_sha256"), Some((Value::Null, json!(sha))));
    assert_eq!(e.change("created"), Some((Value::Null, json!(2))));
    assert_eq!(e.change("rows"), Some((Value::Null, json!(2))));
    // `updated: 0` is recorded too (a count, not a change from something).
    assert_eq!(e.change("updated"), Some((Value::Null, json!(0))));
}

async fn demo_fill_is_one_recorded_use_case(app: TestApp) {
    use foodcheck::audit::{Actor, Ctx};
    // Only admins (or the system, as the CLI runs it) may fill; a refusal writes nothing.
    let before = audit_count(&app).await;
    let reviewer = Ctx::new(Actor::user("someone", Role::Reviewer, None), None);
    let refused = foodcheck::ops::demo::fill(app.db(), &reviewer, 5, 1).await;
    assert!(
        matches!(refused, Err(foodcheck::ops::Error::Forbidden(_))),
        "{refused:?}"
    );
    assert_eq!(audit_count(&app).await, before);
    let accounts = foodcheck::ops::demo::fill(app.db(), &Ctx::system(), 25, 1)
        .await
        .unwrap();
    assert_eq!(count(&app).await, 25);
    let events = audit_of(&app, "batch", "demo").await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.action, "demo_filled");
    assert_eq!(
        (e.actor_id.as_deref(), e.actor_role.as_deref()),
        (None, None)
    );
    assert_eq!(e.change("establishments"), Some((Value::Null, json!(25))));
    assert_eq!(
        e.change("accounts"),
        Some((Value::Null, json!(accounts.len())))
    );
    assert_eq!(e.change("seed"), Some((Value::Null, json!(1))));
    // A second fill is refused: the database is no longer empty.
    let again = foodcheck::ops::demo::fill(app.db(), &Ctx::system(), 5, 2).await;
    assert!(
        matches!(
            again,
            Err(foodcheck::ops::Error::Conflict {
                code: "not_empty",
                ..
            })
        ),
        "{again:?}"
    );
    assert_eq!(count(&app).await, 25);
    assert_eq!(audit_of(&app, "batch", "demo").await.len(), 1);
}
