//! Sync at the edges (issue 9, items 4 and 6): a week-offline backlog fits in one push, limits
//! above it answer a clean 413, and the inspection's own GPS is compared with the shop.

use foodcheck::auth::Role;
use foodcheck::geo::{gcj02_to_bd09, gcj02_to_wgs84, Crs, Location};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{assert_error, Kind, TestApp};

both_backends!(
    inspection_far_from_the_shop_is_flagged_for_devices_and_reviewers,
    reviewers_see_photo_exif_size_and_flags,
    week_offline_backlog_is_one_push,
    pushes_with_and_without_a_point_alternate,
);

mod small_limits {
    use super::{over_the_sync_limits_is_a_clean_413, small_limits};
    both_backends!(@spawn small_limits; over_the_sync_limits_is_a_clean_413);
}

const TEMPLATE: &str = "00000000-0000-4000-8000-000000002016";
/// All 30 items of the 2016 table.
const ITEMS: [&str; 30] = [
    "1.1", "2.1", "2.2", "2.3", "3.1", "3.2", "4.1", "4.2", "4.3", "4.4", "5.1", "5.2", "5.3",
    "5.4", "6.1", "6.2", "6.3", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "8.1", "8.2", "8.3",
    "8.4", "9.1", "9.2", "9.3",
];
const KEY: [&str; 3] = ["3.1", "3.2", "4.1"];
const GENERAL: [&str; 7] = ["1.1", "2.1", "2.2", "2.3", "4.3", "4.4", "5.1"];
/// The shop, as registered from a Chinese map (GCJ-02).
const SHOP_GCJ02: (f64, f64) = (117.29, 39.71);

struct World {
    app: TestApp,
    admin: String,
    /// The inspector's token (device `phone`).
    token: String,
    reviewer: String,
    task: String,
    est: String,
    team: String,
}

async fn world(app: TestApp) -> World {
    let admin = app.token_for("admin", Role::Admin).await;
    let a = app.user("edge-a", Role::Inspector).await;
    let b = app.user("edge-b", Role::Inspector).await;
    let (s, e) = app
        .post(
            "/api/v1/establishments",
            &admin,
            json!({"sign_name": "边缘小吃", "licensed_name": "边缘公司", "license_no": "JY21201150000001",
                   "category": "small_restaurant", "address": "地址", "town": "周良街道", "risk_grade": "C",
                   "contact_phone": "13800138000", "location": {"lng": SHOP_GCJ02.0, "lat": SHOP_GCJ02.1, "crs": "gcj02"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    let (s, plan) = app
        .post(
            "/api/v1/plans",
            &admin,
            json!({"name": "n", "round_title": "第1期", "theme": "t", "period_start": "2024-03-01", "period_end": "2024-03-31",
                   "due_date": "2099-03-31", "template_id": TEMPLATE, "template_version": 1, "quotas": {"explicit": {"C": 1}},
                   "inspector_ids": [a, b], "team_size": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{plan}");
    let plan_id = plan["id"].as_str().unwrap();
    let (s, draw) = app
        .post(
            &format!("/api/v1/plans/{plan_id}/draw"),
            &admin,
            json!({"seed": "s"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{draw}");
    let (_, tasks) = app
        .get(&format!("/api/v1/tasks?plan_id={plan_id}"), &admin)
        .await;
    let t = &tasks["items"][0];
    let team = serde_json::to_string(&json!([
        {"user_id": a, "name": "Name of edge-a", "badge_no": "TJ-edge-a"},
        {"user_id": b, "name": "Name of edge-b", "badge_no": "TJ-edge-b"}
    ]))
    .unwrap();
    let token = app.login_full("edge-a", "phone").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let reviewer = app.token_for("reviewer", Role::Reviewer).await;
    World {
        reviewer,
        task: t["id"].as_str().unwrap().to_string(),
        est: t["establishment"]["id"].as_str().unwrap().to_string(),
        app,
        admin,
        token,
        team,
    }
}

impl World {
    fn inspection(&self, id: &str, point: Option<(f64, f64, &str)>) -> Value {
        let (lng, lat, crs) = match point {
            Some((lng, lat, crs)) => (json!(lng), json!(lat), json!(crs)),
            None => (Value::Null, Value::Null, Value::Null),
        };
        json!({"id": id, "_status": "created", "_changed": "", "task_id": self.task, "establishment_id": self.est,
               "started_at": 1_710_000_000_000i64, "finished_at": null, "lng": lng, "lat": lat, "gps_accuracy_m": 10.0,
               "crs": crs, "team": self.team, "representative_name": "王店长", "representative_signed": true,
               "representative_refused": false, "business_opinion": null, "other_findings": null,
               "declared_result": null, "submitted": false, "computed_result": null, "review_state": null,
               "server_flags": null})
    }

    async fn cursor(&self) -> i64 {
        let (s, p) = self
            .app
            .get(
                "/api/v1/sync?last_pulled_at=null&schema_version=3&migration=null",
                &self.token,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        p["timestamp"].as_i64().unwrap()
    }

    async fn push(&self, last: i64, changes: Value) -> (StatusCode, Value) {
        self.app
            .post(
                &format!("/api/v1/sync?last_pulled_at={last}"),
                &self.token,
                json!({"changes": changes}),
            )
            .await
    }

    /// The inspections of the task as a reviewer reads them, by id.
    async fn reviewed(&self) -> std::collections::HashMap<String, Value> {
        let (s, list) = self
            .app
            .get(
                &format!("/api/v1/inspections?task_id={}", self.task),
                &self.reviewer,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{list}");
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["id"].as_str().unwrap().to_string(), i.clone()))
            .collect()
    }
}

fn answer(inspection: &str, item: &str, status: &str, note: Option<&str>) -> Value {
    let id = Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("{inspection}:{item}").as_bytes(),
    );
    json!({"id": id, "_status": "created", "_changed": "", "inspection_id": inspection, "item_code": item,
           "status": status, "note": note})
}

/// The point `metres` due north of the shop, in GCJ-02 (as the app's map SDK reports it).
fn north_of_shop_gcj02(metres: f64) -> (f64, f64) {
    // Move on the WGS-84 ground, then report in GCJ-02 like the phone would.
    let shop = Location::new(SHOP_GCJ02.0, SHOP_GCJ02.1, Crs::Gcj02).unwrap();
    let w = shop.wgs84();
    foodcheck::geo::wgs84_to_gcj02(w.x(), w.y() + metres / 111_195.0)
}

async fn inspection_far_from_the_shop_is_flagged_for_devices_and_reviewers(app: TestApp) {
    let w = world(app).await;
    let cursor = w.cursor().await;
    // On site, reported in BD-09 (Baidu): the same place, never flagged.
    let (b_lng, b_lat) = gcj02_to_bd09(SHOP_GCJ02.0, SHOP_GCJ02.1);
    let on_site = Uuid::new_v4().to_string();
    // 5 km north, reported in GCJ-02.
    let (f_lng, f_lat) = north_of_shop_gcj02(5_000.0);
    let far = Uuid::new_v4().to_string();
    // On site as raw WGS-84: must not be flagged either (the CRS is honoured).
    let (wg_lng, wg_lat) = gcj02_to_wgs84(SHOP_GCJ02.0, SHOP_GCJ02.1);
    let on_site_wgs = Uuid::new_v4().to_string();
    let no_gps = Uuid::new_v4().to_string();
    let mut far_rec = w.inspection(&far, Some((f_lng, f_lat, "gcj02")));
    // Submitted with a declared result that differs: both kinds of flag are kept.
    far_rec["submitted"] = json!(true);
    far_rec["declared_result"] = json!("non_compliant");
    let answers: Vec<Value> = KEY
        .iter()
        .chain(GENERAL.iter())
        .map(|i| answer(&far, i, "pass", None))
        .collect();
    let (s, r) = w
        .push(
            cursor,
            json!({"inspections": {"created": [
                    w.inspection(&on_site, Some((b_lng, b_lat, "bd09"))),
                    far_rec,
                    w.inspection(&on_site_wgs, Some((wg_lng, wg_lat, "wgs84"))),
                    w.inspection(&no_gps, None)]},
                   "answers": {"created": answers}}),
        )
        .await;
    assert_eq!((s, &r), (StatusCode::OK, &json!({})));

    // Devices: the flags come back in server_flags (the teammate's device too).
    let (_, p) = w
        .app
        .get(
            &format!("/api/v1/sync?last_pulled_at={cursor}&schema_version=3&migration=null"),
            &w.token,
        )
        .await;
    let pulled: std::collections::HashMap<String, Value> = p["changes"]["inspections"]["updated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_string(),
                i["server_flags"].clone(),
            )
        })
        .collect();
    assert_eq!(
        pulled[&far],
        json!("[\"declared_result_differs\",\"outside_radius\"]"),
        "{p}"
    );
    assert_eq!(pulled[&on_site], Value::Null, "{p}");
    assert_eq!(pulled[&on_site_wgs], Value::Null, "{p}");
    assert_eq!(pulled[&no_gps], json!("[\"no_location\"]"), "{p}");
    let teammate = w.app.login_full("edge-b", "phone-b").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, p) = w
        .app
        .get(
            "/api/v1/sync?last_pulled_at=null&schema_version=3&migration=null",
            &teammate,
        )
        .await;
    let far_b = p["changes"]["inspections"]["created"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == far.as_str())
        .cloned()
        .unwrap();
    assert_eq!(
        far_b["server_flags"],
        json!("[\"declared_result_differs\",\"outside_radius\"]")
    );

    // Reviewers: the same flags, as arrays.
    let reviewed = w.reviewed().await;
    assert_eq!(
        reviewed[&far]["flags"],
        json!(["declared_result_differs", "outside_radius"])
    );
    assert_eq!(reviewed[&far]["submitted"], true);
    assert_eq!(reviewed[&on_site]["flags"], json!([]));
    assert_eq!(reviewed[&no_gps]["flags"], json!(["no_location"]));

    // The inspector walks to the shop and fixes the point: the flag goes away.
    let cursor = w.cursor().await;
    let (g_lng, g_lat) = north_of_shop_gcj02(100.0);
    let mut moved = w.inspection(&no_gps, Some((g_lng, g_lat, "gcj02")));
    moved["_status"] = json!("updated");
    let (s, r) = w
        .push(cursor, json!({"inspections": {"updated": [moved]}}))
        .await;
    assert_eq!((s, &r), (StatusCode::OK, &json!({})));
    let reviewed = w.reviewed().await;
    assert_eq!(reviewed[&no_gps]["flags"], json!([]));
    assert_eq!(reviewed[&no_gps]["server_flags"], json!("[]"));
}

async fn reviewers_see_photo_exif_size_and_flags(app: TestApp) {
    let w = world(app).await;
    let cursor = w.cursor().await;
    let iid = Uuid::new_v4().to_string();
    let pid = Uuid::new_v4().to_string();
    let (s, r) = w
        .push(
            cursor,
            json!({"inspections": {"created": [w.inspection(&iid, Some((SHOP_GCJ02.0, SHOP_GCJ02.1, "gcj02")))]},
                   "photos": {"created": [{"id": pid, "inspection_id": iid, "item_code": "3.1", "sha256": "ab".repeat(32),
                                           "byte_size": 1234, "taken_at": 1_710_000_000_000i64}]}}),
        )
        .await;
    assert_eq!((s, &r), (StatusCode::OK, &json!({})));
    let reviewed = w.reviewed().await;
    let photo = &reviewed[&iid]["photos"][0];
    assert_eq!(photo["processing_status"], "awaiting_upload", "{photo}");
    assert_eq!(photo["flags"], json!([]), "not processed yet: {photo}");
    assert_eq!(photo["width"], Value::Null);
    // What the photo worker records once the bytes are processed (ops::photos::process).
    sqlx::query(
        "UPDATE photos SET processing_status = 'processed', width = 4000, height = 3000, exif_taken_at = $1, \
         exif_lng = 117.5, exif_lat = 39.9, flags = '[\"outside_radius\"]' WHERE id = $2",
    )
    .bind(1_710_000_100_000i64)
    .bind(&pid)
    .execute(w.app.db().pool())
    .await
    .unwrap();
    let reviewed = w.reviewed().await;
    let photo = &reviewed[&iid]["photos"][0];
    assert_eq!(photo["processing_status"], "processed");
    assert_eq!(
        (photo["width"].as_i64(), photo["height"].as_i64()),
        (Some(4000), Some(3000))
    );
    assert_eq!(photo["exif_taken_at"], 1_710_000_100_000i64);
    assert_eq!(
        (photo["exif_lng"].as_f64(), photo["exif_lat"].as_f64()),
        (Some(117.5), Some(39.9))
    );
    assert_eq!(photo["flags"], json!(["outside_radius"]));
    assert_eq!(
        reviewed[&iid]["flags"],
        json!([]),
        "the inspection itself is on site"
    );
    let _ = &w.admin;
}

/// A week offline: 1,000 inspections × 30 answers with notes, plus 2 photo records each, in one
/// WatermelonDB push (every unsynced record at once): about 10 MB and 33,000 records, above the
/// old 2 MiB / 20,000-record limits.
async fn week_offline_backlog_is_one_push(app: TestApp) {
    let w = world(app).await;
    let cursor = w.cursor().await;
    let note = "冷藏柜温度记录完整，操作人员持健康证上岗；现场检查未发现过期食品。".repeat(2);
    let mut inspections = Vec::new();
    let mut answers = Vec::new();
    let mut photos = Vec::new();
    for n in 0..1000 {
        let iid = Uuid::new_v4().to_string();
        inspections.push(w.inspection(&iid, Some((SHOP_GCJ02.0, SHOP_GCJ02.1, "gcj02"))));
        for item in ITEMS {
            answers.push(answer(&iid, item, "pass", Some(&note)));
        }
        for k in 0..2 {
            photos.push(json!({"id": Uuid::new_v4(), "_status": "created", "_changed": "", "inspection_id": iid,
                "item_code": "3.1", "sha256": format!("{:064x}", n * 2 + k + 1), "byte_size": 2_000_000,
                "taken_at": 1_710_000_000_000i64, "processing_status": null}));
        }
    }
    let body = json!({"changes": {"inspections": {"created": inspections, "updated": [], "deleted": []},
                                  "answers": {"created": answers, "updated": [], "deleted": []},
                                  "photos": {"created": photos, "updated": [], "deleted": []}}});
    let bytes = serde_json::to_vec(&body).unwrap();
    assert!(bytes.len() > 9_000_000, "{} bytes", bytes.len());
    assert!(bytes.len() < w.app.state.config.max_sync_body_bytes);
    let res = w
        .app
        .client
        .post(w.app.url(&format!("/api/v1/sync?last_pulled_at={cursor}")))
        .bearer_auth(&w.token)
        .header("content-type", "application/json")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!((status, text.as_str()), (StatusCode::OK, "{}"));
    for (table, n) in [("inspections", 1000), ("answers", 30_000), ("photos", 2000)] {
        let (c,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(w.app.db().pool())
            .await
            .unwrap();
        assert_eq!(c, n, "{table}");
    }
}

async fn small_limits(kind: Kind) -> TestApp {
    TestApp::spawn_with(kind, |c| {
        c.max_sync_body_bytes = 64 * 1024;
        c.max_sync_records = 10;
    })
    .await
}

async fn over_the_sync_limits_is_a_clean_413(app: TestApp) {
    let w = world(app).await;
    let cursor = w.cursor().await;
    let path = format!("/api/v1/sync?last_pulled_at={cursor}");
    // Over the byte limit by its declared length: refused before it is read.
    let (status, e) =
        crate::common::raw_post_json_auth(&w.app.base, &path, &w.token, 64 * 1024 + 1).await;
    assert_error(
        StatusCode::from_u16(status).unwrap(),
        &e,
        413,
        "payload_too_large",
    );
    // Over the byte limit while streaming (chunked, no Content-Length): refused as well.
    let (status, e) = chunked_post(&w.app.base, &path, &w.token, 20, 8 * 1024).await;
    assert_error(
        StatusCode::from_u16(status).unwrap(),
        &e,
        413,
        "payload_too_large",
    );
    // A small body with more records than the cap: the same answer, nothing applied.
    let iid = Uuid::new_v4().to_string();
    let answers: Vec<Value> = ITEMS[..10]
        .iter()
        .map(|i| answer(&iid, i, "pass", None))
        .collect();
    let (s, e) = w
        .push(
            cursor,
            json!({"inspections": {"created": [w.inspection(&iid, None)]}, "answers": {"created": answers}}),
        )
        .await;
    assert_error(s, &e, 413, "payload_too_large");
    // Exactly at the cap it is applied.
    let answers: Vec<Value> = ITEMS[..9]
        .iter()
        .map(|i| answer(&iid, i, "pass", None))
        .collect();
    let (s, r) = w
        .push(
            cursor,
            json!({"inspections": {"created": [w.inspection(&iid, None)]}, "answers": {"created": answers}}),
        )
        .await;
    assert_eq!((s, &r), (StatusCode::OK, &json!({})));
    // Not JSON: 415, as for every JSON body.
    let res = w
        .app
        .client
        .post(w.app.url(&path))
        .bearer_auth(&w.token)
        .header("content-type", "text/plain")
        .body("{\"changes\": {}}")
        .send()
        .await
        .unwrap();
    let status = res.status();
    let e: Value = res.json().await.unwrap();
    assert_error(status, &e, 415, "unsupported_media_type");
    // Malformed JSON: still 400 invalid_json.
    let res = w
        .app
        .client
        .post(w.app.url(&path))
        .bearer_auth(&w.token)
        .header("content-type", "application/json")
        .body("{\"changes\": {")
        .send()
        .await
        .unwrap();
    let status = res.status();
    let e: Value = res.json().await.unwrap();
    assert_error(status, &e, 400, "invalid_json");
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM answers")
        .fetch_one(w.app.db().pool())
        .await
        .unwrap();
    assert_eq!(n, 9, "only the push within the cap was applied");
}

/// POSTs `chunks` chunks of `size` spaces with `Transfer-Encoding: chunked` over a raw socket
/// and reads the answer even if the server stops reading early.
async fn chunked_post(
    base: &str,
    path: &str,
    token: &str,
    chunks: usize,
    size: usize,
) -> (u16, Value) {
    use tokio::io::AsyncWriteExt;
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAuthorization: Bearer {token}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    for _ in 0..chunks {
        let mut chunk = format!("{size:x}\r\n").into_bytes();
        chunk.extend(std::iter::repeat_n(b' ', size));
        chunk.extend_from_slice(b"\r\n");
        if stream.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    crate::common::read_raw_response(stream).await
}

/// Inspections pushed without a point (no GPS fix) and with one, alternating, many times, and
/// shops registered with and without a point: every write is applied. (On PostgreSQL a statement
/// first prepared with a NULL float kept a float4 parameter and the next number on that pooled
/// connection was a 500: `store::OptF64`.)
async fn pushes_with_and_without_a_point_alternate(app: TestApp) {
    let w = world(app).await;
    for i in 0..24 {
        let cursor = w.cursor().await;
        let id = Uuid::new_v4().to_string();
        let point = (i % 2 == 1).then_some((117.2903, 39.7102, "gcj02"));
        let mut rec = w.inspection(&id, point);
        if i % 3 == 0 {
            rec["gps_accuracy_m"] = Value::Null;
        }
        let (st, r) = w
            .push(cursor, json!({"inspections": {"created": [rec]}}))
            .await;
        assert_eq!((st, &r), (StatusCode::OK, &json!({})), "push {i}");
    }
    // The registry alike: shops with and without a point, alternating.
    let admin = w.app.token_for("floats-admin", Role::Admin).await;
    for i in 0..12 {
        let mut body = json!({"sign_name": format!("浮点店{i}"), "licensed_name": format!("浮点公司{i}"), "license_no": format!("JY21201159{i:06}"),
            "category": "small_restaurant", "address": "地址", "town": "周良街道", "risk_grade": "C"});
        if i % 2 == 1 {
            body["location"] = json!({"lng": 117.29, "lat": 39.71, "crs": "gcj02"});
        }
        let (st, e) = w.app.post("/api/v1/establishments", &admin, body).await;
        assert_eq!(st, StatusCode::CREATED, "establishment {i}: {e}");
    }
}
