//! Photos of list entries, from the phone to the public, end to end: a real phone JPEG (with
//! GPS in its EXIF) synced as a photo record with the inspection, uploaded by tus and processed
//! by the worker; the inspection approved by the review endpoint; an issue composed with one of
//! the inspection's photos, published, then corrected by a revision that drops the photo.
//! Only the attached photo of a published issue is public, as EXIF-free renditions.

use std::collections::BTreeSet;

use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::common::{assert_error, cover_this_and_next_year, TestApp};
use crate::review_fixture::{scene, Scene, GENERAL, KEY};

both_backends!(an_attached_photo_is_public_and_only_it);

/// The real phone photo (HMD Nokia 8.3 5G, 4608 × 1976, GPS 60.14671 N 24.90677 E) and a
/// second real photo (Nikon, 640 × 480, GPS 43.46745 N) of the same inspection.
const PHONE: &[u8] = include_bytes!("../data/photos/HMD_Nokia_8.3_5G.jpg");
const OTHER: &[u8] = include_bytes!("../data/photos/DSCN0010.jpg");

fn today() -> chrono::NaiveDate {
    foodcheck::clock::BureauZone::SHANGHAI.date_at(chrono::Utc::now())
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The task's first member pushes a 不符合 inspection of task 0 (two key items failed) with a
/// photo record per `(id, bytes)`, as the app does at submission. Returns the inspection id
/// and the member's token.
async fn push_with_photos(s: &Scene, photos: &[(&str, &[u8])]) -> (String, String) {
    let (task, est, members) = &s.plans[0].tasks[0];
    let token = s.token(&members[0]).await;
    let (st, p) = s
        .app
        .get(
            "/api/v1/sync?last_pulled_at=null&schema_version=2&migration=null",
            &token,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let iid = Uuid::new_v4().to_string();
    let team: Vec<Value> = members
        .iter()
        .map(|n| json!({"user_id": s.user_id(n), "name": format!("Name of {n}"), "badge_no": format!("TJ-{n}")}))
        .collect();
    let rec = json!({"id": iid, "task_id": task, "establishment_id": est, "started_at": 1_710_000_000_000i64,
        "finished_at": 1_710_000_600_000i64, "lng": 117.2903, "lat": 39.7102, "gps_accuracy_m": 12.5, "crs": "gcj02",
        "team": serde_json::to_string(&team).unwrap(), "representative_name": "王店长",
        "representative_signed": true, "representative_refused": false, "declared_result": "non_compliant", "submitted": true});
    let answers: Vec<Value> = KEY
        .iter()
        .chain(GENERAL.iter())
        .map(|c| {
            let status = if [KEY[0], KEY[1]].contains(c) {
                "fail"
            } else {
                "pass"
            };
            json!({"id": Uuid::new_v4(), "inspection_id": iid, "item_code": c, "status": status})
        })
        .collect();
    let records: Vec<Value> = photos
        .iter()
        .map(|(id, bytes)| {
            json!({"id": id, "inspection_id": iid, "item_code": KEY[0], "sha256": sha(bytes),
            "byte_size": bytes.len(), "taken_at": 1_710_000_100_000i64})
        })
        .collect();
    let (st, r) = s
        .app
        .post(
            &format!("/api/v1/sync?last_pulled_at={}", p["timestamp"]),
            &token,
            json!({"changes": {"inspections": {"created": [rec]}, "answers": {"created": answers},
                   "photos": {"created": records}}}),
        )
        .await;
    assert_eq!((st, &r), (StatusCode::OK, &json!({})), "{r}");
    (iid, token)
}

/// Uploads a photo's bytes by tus (creation, then one PATCH), as the app does.
async fn upload(app: &TestApp, token: &str, photo: &str, bytes: &[u8]) {
    let meta = format!(
        "photo_id {},sha256 {},filename {}",
        b64(photo),
        b64(&sha(bytes)),
        b64("IMG_20240309.jpg")
    );
    let res = app
        .client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", bytes.len().to_string())
        .header("upload-metadata", meta)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "tus creation");
    let location = res.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let res = app
        .client
        .patch(app.url(&location))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT, "tus patch");
}

/// Waits (at most 120 s: the phone photo is 9 megapixels) until the reviewer's view of the
/// inspection shows every photo processed; returns that view.
async fn processed(s: &Scene, inspection: &str) -> Value {
    for _ in 0..1200 {
        let (st, d) = s
            .app
            .get(&format!("/api/v1/inspections/{inspection}"), &s.reviewer)
            .await;
        assert_eq!(st, StatusCode::OK, "{d}");
        let photos = d["photos"].as_array().unwrap();
        assert!(
            photos.iter().all(|p| p["processing_status"] != "failed"),
            "{d}"
        );
        if photos.iter().all(|p| p["processing_status"] == "processed") {
            return d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the photos of {inspection} were not processed in time");
}

async fn public_get(app: &TestApp, path: &str) -> (StatusCode, header::HeaderMap, Vec<u8>) {
    let res = app.client.get(app.url(path)).send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.unwrap().to_vec())
}

async fn public_json(app: &TestApp, path: &str) -> Value {
    let (st, _, body) = public_get(app, path).await;
    let text = String::from_utf8(body).unwrap();
    assert_eq!(st, StatusCode::OK, "{path}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"))
}

/// Every photo id a body names in a `/public/v1/photos/{id}/` link.
fn linked_photos(body: &str) -> BTreeSet<String> {
    body.split("/public/v1/photos/")
        .skip(1)
        .filter_map(|rest| rest.split('/').next())
        .map(String::from)
        .collect()
}

/// The photo ids of each entry of a public entries page, by entry id.
fn entry_photos(page: &Value) -> Vec<(String, Vec<String>)> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let ids = e["photos"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_string())
                .collect();
            (e["id"].as_str().unwrap().to_string(), ids)
        })
        .collect()
}

/// The variants `GET /public/v1/photos/{id}/{variant}` documents (the backquoted names in the
/// parameter's description in the OpenAPI document).
fn documented_variants() -> Vec<String> {
    let spec: Value = serde_json::from_str(&foodcheck::http::openapi_json()).unwrap();
    let params = spec["paths"]["/public/v1/photos/{id}/{variant}"]["get"]["parameters"]
        .as_array()
        .expect("the public photo route is documented")
        .clone();
    let desc = params
        .iter()
        .find(|p| p["name"] == "variant")
        .and_then(|p| p["description"].as_str())
        .expect("the variant parameter is described")
        .to_string();
    desc.split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

/// True when the JPEG carries an EXIF block, or any GPS field kamadak-exif can read.
fn has_exif_gps(bytes: &[u8]) -> bool {
    let gps = exif::Reader::new()
        .read_from_container(&mut std::io::Cursor::new(bytes))
        .is_ok_and(|e| {
            e.fields()
                .any(|f| f.ifd_num == exif::In::PRIMARY && f.tag.context() == exif::Context::Gps)
        });
    gps || bytes.windows(6).any(|w| w == b"Exif\0\0")
}

async fn an_attached_photo_is_public_and_only_it(app: TestApp) {
    let s = scene(app, &["甲餐厅", "乙餐厅"], &["河西务镇"]).await;
    cover_this_and_next_year(&s.app, &s.admin).await;
    let est = s.plans[0].tasks[0].1.clone();
    let public_photo = Uuid::new_v4().to_string();
    let other_photo = Uuid::new_v4().to_string();
    let (iid, token) = push_with_photos(&s, &[(&public_photo, PHONE), (&other_photo, OTHER)]).await;
    upload(&s.app, &token, &public_photo, PHONE).await;
    upload(&s.app, &token, &other_photo, OTHER).await;
    let d = processed(&s, &iid).await;
    // The originals carry the phones' GPS (so its absence below means something).
    assert!(has_exif_gps(PHONE) && has_exif_gps(OTHER));
    let line = d["photos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == public_photo.as_str())
        .unwrap()
        .clone();
    assert!(
        (line["exif_lat"].as_f64().unwrap() - 60.14671).abs() < 1e-4,
        "{line}"
    );
    s.review(
        &iid,
        json!({"decision": "approved", "followup": {"period_working_days": 5}}),
    )
    .await;

    // Not attached to anything yet: nothing is public.
    for p in [&public_photo, &other_photo] {
        let (st, _, body) = public_get(&s.app, &format!("/public/v1/photos/{p}/preview")).await;
        let e: Value = serde_json::from_slice(&body).unwrap();
        assert_error(st, &e, 404, "not_found");
    }

    // The issue: one black entry with one of the two photos.
    let t = today();
    let new_issue = |no: &str| {
        json!({"issue_no": no, "title": "武清区餐饮服务红黑榜", "theme": "餐饮具清洗消毒", "district": "武清区",
               "period_start": (t - chrono::Days::new(30)).to_string(), "period_end": t.to_string()})
    };
    let (st, issue) = s
        .app
        .post("/api/v1/lists", &s.reviewer, new_issue("2026年第21期"))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{issue}");
    let id = issue["id"].as_str().unwrap().to_string();
    let black = json!({"establishment_id": est, "list_type": "black", "inspection_id": iid,
        "reason": "重点项不符合", "measures": "下达责令改正通知书", "photo_ids": [public_photo]});
    let (st, entry) = s
        .app
        .post(&format!("/api/v1/lists/{id}/entries"), &s.reviewer, black)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{entry}");
    assert_eq!(entry["photo_ids"], json!([public_photo]));
    let entry_id = entry["id"].as_str().unwrap().to_string();
    // Attached to a draft: still not public.
    let (st, _, _) = public_get(&s.app, &format!("/public/v1/photos/{public_photo}/preview")).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "a draft's photo is public");
    let (st, p) = s
        .app
        .post(
            &format!("/api/v1/lists/{id}/publish"),
            &s.reviewer,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["entries"][0]["photo_ids"], json!([public_photo]));

    // The other photo goes on an entry of a second issue that stays a draft.
    let (_, draft) = s
        .app
        .post("/api/v1/lists", &s.reviewer, new_issue("2026年第22期"))
        .await;
    let draft_id = draft["id"].as_str().unwrap().to_string();
    let (st, e) = s
        .app
        .post(
            &format!("/api/v1/lists/{draft_id}/entries"),
            &s.reviewer,
            json!({"establishment_id": est, "list_type": "black", "inspection_id": iid,
                   "reason": "重点项不符合", "measures": "立案调查", "photo_ids": [other_photo]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{e}");
    assert_eq!(e["photo_ids"], json!([other_photo]));

    // Where the published entry shows, it shows the one photo with its two links.
    let only = BTreeSet::from([public_photo.clone()]);
    let entries = public_json(&s.app, &format!("/public/v1/lists/{id}/entries")).await;
    assert_eq!(
        entry_photos(&entries),
        [(entry_id.clone(), vec![public_photo.clone()])]
    );
    let photo = &entries["items"][0]["photos"][0];
    let links = [
        photo["preview_url"].as_str().unwrap().to_string(),
        photo["thumbnail_url"].as_str().unwrap().to_string(),
    ];
    assert_eq!(linked_photos(&entries.to_string()), only);
    let all = public_json(&s.app, "/public/v1/entries").await;
    assert_eq!(
        entry_photos(&all),
        [(entry_id.clone(), vec![public_photo.clone()])]
    );
    let history = public_json(&s.app, &format!("/public/v1/establishments/{est}")).await;
    let listed = json!({"items": history["list_entries"]});
    assert_eq!(
        entry_photos(&listed),
        [(entry_id.clone(), vec![public_photo.clone()])]
    );
    assert_eq!(linked_photos(&history.to_string()), only);
    let (st, detail) = s.app.get(&format!("/api/v1/lists/{id}"), &s.reviewer).await;
    assert_eq!(st, StatusCode::OK, "{detail}");
    assert_eq!(detail["entries"][0]["photo_ids"], json!([public_photo]));
    // The public issue names no other photo; its page shows exactly this one (a thumbnail
    // opening the preview), and the establishment page (no photo column) none other.
    let view = public_json(&s.app, &format!("/public/v1/lists/{id}")).await;
    assert!(linked_photos(&view.to_string()).is_subset(&only), "{view}");
    let (st, _, html) = public_get(&s.app, &format!("/public/lists/{id}")).await;
    let html = String::from_utf8(html).unwrap();
    assert_eq!(st, StatusCode::OK, "{html}");
    assert_eq!(linked_photos(&html), only, "{html}");
    for variant in ["thumbnail", "preview"] {
        let want = format!("/public/v1/photos/{public_photo}/{variant}");
        assert!(html.contains(&want), "the page lacks {want}: {html}");
    }
    let (st, _, html) = public_get(&s.app, &format!("/public/establishments/{est}")).await;
    let html = String::from_utf8(html).unwrap();
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(linked_photos(&html).is_subset(&only), "{html}");
    assert!(!html.contains(other_photo.as_str()), "{html}");
    for body in [
        entries.to_string(),
        all.to_string(),
        history.to_string(),
        view.to_string(),
    ] {
        assert!(!body.contains(other_photo.as_str()), "{body}");
    }

    // Each documented variant: a JPEG that decodes, of the documented size, without EXIF;
    // its ETag answers 304.
    let variants = documented_variants();
    assert_eq!(variants, ["preview", "thumbnail"]);
    let mut etags = BTreeSet::new();
    for (variant, link) in variants.iter().zip(&links) {
        assert_eq!(link, &format!("/public/v1/photos/{public_photo}/{variant}"));
        let (st, headers, bytes) = public_get(&s.app, link).await;
        assert_eq!(st, StatusCode::OK, "{link}");
        assert_eq!(headers[header::CONTENT_TYPE], "image/jpeg");
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(
            headers[header::CONTENT_LENGTH].to_str().unwrap(),
            bytes.len().to_string()
        );
        assert!(bytes.starts_with(&[0xFF, 0xD8]), "{link}: not a JPEG");
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
            .unwrap_or_else(|e| panic!("{link}: {e}"));
        let long = if variant == "preview" { 1600 } else { 320 };
        assert_eq!(img.width().max(img.height()), long, "{link}");
        // 4608 × 1976, scaled.
        let ratio = f64::from(img.width()) / f64::from(img.height());
        assert!((ratio - 4608.0 / 1976.0).abs() < 0.02, "{link}: {ratio}");
        assert!(!has_exif_gps(&bytes), "{link} carries EXIF");
        assert!(bytes.len() < PHONE.len() / 2, "{link}: the original?");
        let etag = headers[header::ETAG].to_str().unwrap().to_string();
        etags.insert(etag.clone());
        let res = s
            .app
            .client
            .get(s.app.url(link))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED, "{link}");
        assert_eq!(res.headers()[header::ETAG].to_str().unwrap(), etag);
        assert!(res.bytes().await.unwrap().is_empty());
        let res = s
            .app
            .client
            .get(s.app.url(link))
            .header(header::IF_NONE_MATCH, "\"something-else\"")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{link}");
        assert_eq!(res.bytes().await.unwrap().to_vec(), bytes);
    }
    assert_eq!(etags.len(), 2, "the variants share an ETag: {etags:?}");

    // Refused: the unattached photo (also on the draft), a random id, a malformed id, a
    // variant the API does not document (the original among them).
    let random = Uuid::new_v4().to_string();
    for path in [
        format!("/public/v1/photos/{other_photo}/preview"),
        format!("/public/v1/photos/{other_photo}/thumbnail"),
        format!("/public/v1/photos/{random}/preview"),
        "/public/v1/photos/not-a-uuid/thumbnail".to_string(),
        format!("/public/v1/photos/{public_photo}/original"),
        format!("/public/v1/photos/{public_photo}/PREVIEW"),
        format!("/public/v1/photos/{public_photo}/..%2Foriginal"),
    ] {
        let (st, headers, body) = public_get(&s.app, &path).await;
        let e: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{path}: {st} {}", String::from_utf8_lossy(&body)));
        assert_error(st, &e, 404, "not_found");
        assert!(headers.get(header::ETAG).is_none(), "{path}");
    }

    // A revision drops the photo and is published.
    let (st, r) = s
        .app
        .post(
            &format!("/api/v1/lists/{id}/revisions"),
            &s.reviewer,
            json!({"note": "撤下现场照片"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let rid = r["id"].as_str().unwrap().to_string();
    // The revision's copy starts with the photo.
    assert_eq!(r["entries"][0]["photo_ids"], json!([public_photo]));
    let new_entry = r["entries"][0]["id"].as_str().unwrap().to_string();
    let (st, e) = s
        .app
        .call(
            Method::PATCH,
            &format!("/api/v1/lists/{rid}/entries/{new_entry}"),
            Some(&s.reviewer),
            Some(json!({"photo_ids": []})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(e["photo_ids"], json!([]));
    let (st, p) = s
        .app
        .post(
            &format!("/api/v1/lists/{rid}/publish"),
            &s.reviewer,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");

    // What the first revision published stays as published: its entry keeps the photo and the
    // photo stays served. The current revision, the cross-issue entries and the
    // establishment's history (current revisions only) show none.
    let old = public_json(&s.app, &format!("/public/v1/lists/{id}/entries")).await;
    assert_eq!(
        entry_photos(&old),
        [(entry_id.clone(), vec![public_photo.clone()])]
    );
    let old_view = public_json(&s.app, &format!("/public/v1/lists/{id}")).await;
    assert_eq!(old_view["superseded_by"], rid.as_str());
    let (_, detail_after) = s.app.get(&format!("/api/v1/lists/{id}"), &s.reviewer).await;
    assert_eq!(detail_after["entries"], detail["entries"]);
    for link in &links {
        let (st, headers, _) = public_get(&s.app, link).await;
        assert_eq!(st, StatusCode::OK, "{link}");
        assert_eq!(headers[header::CONTENT_TYPE], "image/jpeg");
    }
    let current = public_json(&s.app, &format!("/public/v1/lists/{rid}/entries")).await;
    assert_eq!(entry_photos(&current), [(new_entry.clone(), vec![])]);
    let all = public_json(&s.app, "/public/v1/entries").await;
    assert_eq!(entry_photos(&all), [(new_entry.clone(), vec![])]);
    let history = public_json(&s.app, &format!("/public/v1/establishments/{est}")).await;
    assert!(linked_photos(&history.to_string()).is_empty(), "{history}");
    // The unattached photo never became public.
    let (st, _, _) = public_get(&s.app, &format!("/public/v1/photos/{other_photo}/preview")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // The photo still public through the first revision is taken down.
    let path = |p: &str| format!("/api/v1/lists/photos/{p}/takedown");
    let why = json!({"reason": "照片中可见顾客面部"});
    let inspector = s.token(&s.plans[0].tasks[0].2[0]).await;
    let (st, e) = s
        .app
        .post(&path(&public_photo), &inspector, why.clone())
        .await;
    assert_error(st, &e, 403, "forbidden");
    let (st, e) = s
        .app
        .post(&path(&public_photo), &s.reviewer, json!({"reason": "  "}))
        .await;
    assert_error(st, &e, 422, "validation_failed");
    // Only a public photo can be taken down: the draft's, a random one are 404.
    for p in [&other_photo, &random] {
        let (st, e) = s.app.post(&path(p), &s.reviewer, why.clone()).await;
        assert_error(st, &e, 404, "not_found");
    }
    let (st, t) = s
        .app
        .post(&path(&public_photo), &s.reviewer, why.clone())
        .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    assert_eq!(t["photo_id"], public_photo.as_str());
    assert_eq!(t["reason"], "照片中可见顾客面部");
    let (st, e) = s
        .app
        .post(&path(&public_photo), &s.admin, why.clone())
        .await;
    assert_error(st, &e, 409, "already_taken_down");
    // Gone from every public read at once (the entry pages were cached before), and its
    // links answer 404; the entry itself stays as published.
    let old = public_json(&s.app, &format!("/public/v1/lists/{id}/entries")).await;
    assert_eq!(entry_photos(&old), [(entry_id.clone(), vec![])]);
    for link in &links {
        let (st, headers, _) = public_get(&s.app, link).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{link}");
        assert!(headers.get(header::ETAG).is_none(), "{link}");
    }
    let (_, _, html) = public_get(&s.app, &format!("/public/lists/{id}")).await;
    let html = String::from_utf8(html).unwrap();
    assert!(linked_photos(&html).is_empty(), "{html}");
    assert!(
        !html.contains("顾客面部"),
        "the internal reason is public: {html}"
    );
    // Internally the record is unchanged, and the takedown is in the audit log with its reason.
    let (_, detail_now) = s.app.get(&format!("/api/v1/lists/{id}"), &s.reviewer).await;
    assert_eq!(detail_now["entries"], detail["entries"]);
    let mut conn = s.app.db().acquire().await.unwrap();
    let (action, changes): (String, String) = sqlx::query_as(
        "SELECT action, changes FROM audit_events WHERE record_type = 'photo' AND record_id = $1 \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(&public_photo)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(action, "public_photo_taken_down");
    assert!(changes.contains("顾客面部"), "{changes}");
    // Final: the row resists direct SQL.
    for sql in [
        "UPDATE public_photo_takedowns SET reason = 'x' WHERE photo_id = $1",
        "DELETE FROM public_photo_takedowns WHERE photo_id = $1",
    ] {
        let r = sqlx::query(sql)
            .bind(&public_photo)
            .execute(&mut *conn)
            .await;
        assert!(r.is_err(), "{sql} succeeded");
    }
    drop(conn);
    // A new draft cannot make it public again.
    let (_, again) = s
        .app
        .post("/api/v1/lists", &s.reviewer, new_issue("2026年第23期"))
        .await;
    let again_id = again["id"].as_str().unwrap().to_string();
    let (st, e) = s
        .app
        .post(
            &format!("/api/v1/lists/{again_id}/entries"),
            &s.reviewer,
            json!({"establishment_id": est, "list_type": "black", "inspection_id": iid,
                   "reason": "重点项不符合", "measures": "立案调查", "photo_ids": [public_photo]}),
        )
        .await;
    assert_error(st, &e, 422, "invalid_photo");
}
