//! A sample's attachments: site/sample/seal photos by its samplers and the lab report PDF by
//! its lab, declared online and uploaded through the same tus flow as inspection photos
//! (resumption, sha256 check, type sniffed from the bytes, content-addressed dedupe), read by
//! whoever may see the sample, and named by the lab result.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{assert_error, TestApp};
use crate::sampling::{march_2_2026, world, World};
use crate::uploads::{audit_entries, b64, count_blobs, hex_sha256, offset, tus};

both_backends!(
    photos_and_the_report_go_through_tus_and_back,
    types_are_sniffed_from_the_bytes,
    only_the_samplers_and_the_samples_lab,
    identical_bytes_are_stored_once,
);

/// A real phone photo (Nikon COOLPIX P6000, 640 × 480, EXIF with GPS; see
/// tests/data/photos/README.md for its origin and licence).
pub(crate) fn jpeg() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/photos/DSCN0010.jpg"
    ))
    .unwrap()
}

/// A small, valid one-page PDF as a PDF writer lays it out: header, binary comment, numbered
/// objects, a cross-reference table with each object's true byte offset, trailer, startxref,
/// %%EOF.
pub(crate) fn pdf(text: &str) -> Vec<u8> {
    let stream = format!("BT /F1 18 Tf 60 760 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>".to_string(),
        format!("<< /Title ({text}) /Producer (foodcheck tests) >>"),
    ];
    let mut out = b"%PDF-1.7\r\n%\xB5\xB6\xB7\xB8\r\n".to_vec();
    let mut at = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        at.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\r\n{body}\r\nendobj\r\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\r\n0 {}\r\n0000000000 65535 f\r\n", at.len() + 1).as_bytes(),
    );
    for o in &at {
        out.extend_from_slice(format!("{o:010} 00000 n\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\r\n<< /Size {} /Root 1 0 R /Info 6 0 R >>\r\nstartxref\r\n{xref}\r\n%%EOF\r\n",
            at.len() + 1
        )
        .as_bytes(),
    );
    out
}

pub(crate) fn declaration(id: &str, kind: &str, bytes: &[u8]) -> Value {
    json!({"id": id, "kind": kind, "sha256": hex_sha256(bytes), "byte_size": bytes.len(),
           "taken_at": march_2_2026()})
}

pub(crate) async fn declare(
    w: &World,
    sample: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    w.app
        .post(
            &format!("/api/v1/samples/{sample}/attachments"),
            token,
            body,
        )
        .await
}

/// A tus creation for attachment `id` with `bytes`; the file name claims whatever `name` says.
async fn create(
    app: &TestApp,
    token: &str,
    id: &str,
    bytes: &[u8],
    name: &str,
) -> reqwest::Response {
    let meta = format!(
        "attachment_id {},sha256 {},filename {}",
        b64(id),
        b64(&hex_sha256(bytes)),
        b64(name)
    );
    tus(
        app,
        Method::POST,
        "/api/v1/uploads",
        token,
        &[
            ("upload-length", bytes.len().to_string()),
            ("upload-metadata", meta),
        ],
        vec![],
    )
    .await
}

fn octet() -> (&'static str, String) {
    (
        "content-type",
        "application/offset+octet-stream".to_string(),
    )
}

async fn patch(
    app: &TestApp,
    token: &str,
    location: &str,
    at: usize,
    chunk: &[u8],
) -> reqwest::Response {
    tus(
        app,
        Method::PATCH,
        location,
        token,
        &[octet(), ("upload-offset", at.to_string())],
        chunk.to_vec(),
    )
    .await
}

/// Declared, created and sent in one PATCH; returns the last answer.
pub(crate) async fn upload(
    w: &World,
    token: &str,
    id: &str,
    bytes: &[u8],
    name: &str,
) -> reqwest::Response {
    let res = create(&w.app, token, id, bytes, name).await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    patch(&w.app, token, &location, 0, bytes).await
}

async fn attachment(w: &World, sample: &str, token: &str, id: &str) -> Value {
    let (s, v) = w
        .app
        .get(&format!("/api/v1/samples/{sample}/attachments"), token)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Waits for the worker to process a photo attachment.
pub(crate) async fn processed(w: &World, sample: &str, id: &str) -> Value {
    for _ in 0..100 {
        let a = attachment(w, sample, &w.admin, id).await;
        if a["processing_status"] == "processed" || a["processing_status"] == "failed" {
            return a;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("attachment {id} was not processed");
}

pub(crate) async fn content(
    w: &World,
    sample: &str,
    token: &str,
    id: &str,
    variant: &str,
) -> reqwest::Response {
    w.app
        .client
        .get(w.app.url(&format!(
            "/api/v1/samples/{sample}/attachments/{id}/content?variant={variant}"
        )))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// `content` of the original with a `Range` header.
async fn ranged(w: &World, sample: &str, token: &str, id: &str, range: &str) -> reqwest::Response {
    w.app
        .client
        .get(w.app.url(&format!(
            "/api/v1/samples/{sample}/attachments/{id}/content"
        )))
        .bearer_auth(token)
        .header("range", range)
        .send()
        .await
        .unwrap()
}

/// A sampler's site photo resumes after a partial PATCH and is processed like an inspection
/// photo (EXIF-free renditions); the lab's report PDF is stored as it came and served as a
/// download; the sample lists both; the lab result names the report; all of it audited.
async fn photos_and_the_report_go_through_tus_and_back(app: TestApp) {
    let w = world(app).await;
    let app = &w.app;
    let at = march_2_2026();
    let sample = w.submitted(at).await;
    let photo = jpeg();
    let site = Uuid::new_v4().to_string();

    let (s, declared) = declare(&w, &sample, &w.insp1, declaration(&site, "site", &photo)).await;
    assert_eq!(s, StatusCode::CREATED, "{declared}");
    assert_eq!(
        (
            declared["kind"].as_str(),
            declared["processing_status"].as_str()
        ),
        (Some("site"), Some("awaiting_upload"))
    );
    // A replay (the other sampler's device, say) is the same; another body for the id is not.
    let (s, again) = declare(&w, &sample, &w.insp2, declaration(&site, "site", &photo)).await;
    assert_eq!((s, &again), (StatusCode::OK, &declared));
    let (s, v) = declare(&w, &sample, &w.insp1, declaration(&site, "seal", &photo)).await;
    assert_error(s, &v, 409, "attachment_id_conflict");

    // Resumption: a partial PATCH, then HEAD says where to go on, then the rest.
    let res = create(app, &w.insp1, &site, &photo, "IMG_0001.jpg").await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let half = photo.len() / 2;
    let res = patch(app, &w.insp1, &location, 0, &photo[..half]).await;
    assert_eq!((res.status().as_u16(), offset(&res)), (204, half as i64));
    let res = tus(app, Method::HEAD, &location, &w.insp1, &[], vec![]).await;
    assert_eq!((res.status().as_u16(), offset(&res)), (200, half as i64));
    // A chunk from the wrong offset changes nothing.
    let res = patch(app, &w.insp1, &location, 0, &photo[..100]).await;
    assert_eq!(res.status(), 409);
    let res = patch(app, &w.insp1, &location, half, &photo[half..]).await;
    assert_eq!(
        (res.status().as_u16(), offset(&res)),
        (204, photo.len() as i64)
    );
    let a = processed(&w, &sample, &site).await;
    assert_eq!(
        (
            a["processing_status"].as_str(),
            a["media_type"].as_str(),
            a["width"].as_i64(),
            a["height"].as_i64()
        ),
        (Some("processed"), Some("image/jpeg"), Some(640), Some(480)),
        "{a}"
    );
    // The original byte for byte (EXIF and all); the preview without EXIF.
    let res = content(&w, &sample, &w.lab_a, &site, "original").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert!(res.headers().get("content-disposition").is_none());
    let got = res.bytes().await.unwrap();
    assert_eq!(got.as_ref(), photo.as_slice());
    // One range: 206, that span, Content-Range; a suffix range; past the end: 416 with the
    // length; several ranges (or another unit): the whole file.
    let len = photo.len();
    let res = ranged(&w, &sample, &w.lab_a, &site, "bytes=100-199").await;
    assert_eq!(res.status(), 206);
    assert_eq!(res.headers()["accept-ranges"], "bytes");
    assert_eq!(
        res.headers()["content-range"].to_str().unwrap(),
        format!("bytes 100-199/{len}")
    );
    assert_eq!(res.headers()["content-length"], "100");
    assert_eq!(res.bytes().await.unwrap().as_ref(), &photo[100..200]);
    let res = ranged(&w, &sample, &w.insp2, &site, "bytes=-10").await;
    assert_eq!(res.status(), 206);
    assert_eq!(res.bytes().await.unwrap().as_ref(), &photo[len - 10..]);
    let res = ranged(&w, &sample, &w.lab_a, &site, &format!("bytes={len}-")).await;
    assert_eq!(res.status(), 416);
    assert_eq!(
        res.headers()["content-range"].to_str().unwrap(),
        format!("bytes */{len}")
    );
    let res = ranged(&w, &sample, &w.lab_a, &site, "bytes=0-1, 5-6").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().as_ref(), photo.as_slice());
    let res = content(&w, &sample, &w.reviewer, &site, "preview").await;
    assert_eq!(res.status(), 200);
    let preview = res.bytes().await.unwrap();
    assert!(preview.starts_with(&[0xFF, 0xD8, 0xFF]));
    assert!(
        !preview.windows(4).any(|x| x == b"Exif") && photo.windows(4).any(|x| x == b"Exif"),
        "the rendition carries no EXIF"
    );

    // The lab's report: one PATCH, stored as it is, processed at once.
    w.received(&sample, at).await;
    let report_pdf = pdf("WT2026-0001 检验报告");
    let report = Uuid::new_v4().to_string();
    let (s, v) = declare(
        &w,
        &sample,
        &w.lab_a,
        declaration(&report, "report", &report_pdf),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Not yet uploaded: a result may not name it.
    let result = format!("/api/v1/samples/{sample}/result");
    let body = |aid: &str| {
        json!({"report_no": "WT2026-0001", "overall": "qualified", "report_attachment_id": aid,
               "items": [{"name": "铅(以Pb计)", "value": "0.05", "unit": "mg/kg", "limit": "≤0.2",
                          "standard": "GB 2762-2022", "verdict": "qualified"}]})
    };
    let (s, v) = app.put(&result, &w.lab_a, body(&report)).await;
    assert_error(s, &v, 422, "invalid_report_attachment");
    let res = upload(&w, &w.lab_a, &report, &report_pdf, "report.pdf").await;
    assert_eq!(
        (res.status().as_u16(), offset(&res)),
        (204, report_pdf.len() as i64)
    );
    let a = attachment(&w, &sample, &w.insp2, &report).await;
    assert_eq!(
        (a["processing_status"].as_str(), a["media_type"].as_str()),
        (Some("processed"), Some("application/pdf")),
        "{a}"
    );
    let res = content(&w, &sample, &w.insp1, &report, "original").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(res.bytes().await.unwrap().as_ref(), report_pdf.as_slice());
    // A PDF has no renditions.
    let res = content(&w, &sample, &w.insp1, &report, "preview").await;
    assert_eq!(res.status(), 400);

    // A result names its report: a photo is not one; the uploaded report is.
    let (s, v) = app.put(&result, &w.lab_a, body(&site)).await;
    assert_error(s, &v, 422, "invalid_report_attachment");
    let (s, v) = app.put(&result, &w.lab_a, body(&report)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["report_attachment_id"], json!(report));
    let (s, again) = app.put(&result, &w.lab_a, body(&report)).await;
    assert_eq!((s, &again), (StatusCode::OK, &v));

    // The sample's view lists both, in declaration order.
    let (s, detail) = app
        .get(&format!("/api/v1/samples/{sample}"), &w.insp1)
        .await;
    assert_eq!(s, StatusCode::OK, "{detail}");
    let listed: Vec<(&str, &str)> = detail["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), a["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [(site.as_str(), "site"), (report.as_str(), "report")]
    );
    assert_eq!(detail["result"]["report_attachment_id"], json!(report));

    // Audited: the declaration once (not its replay), the upload, processing, the downloads.
    let declared = audit_entries(app, "sample_attachment_declared", &site).await;
    assert_eq!(declared.len(), 1);
    assert_eq!(declared[0].actor_role.as_deref(), Some("inspector"));
    assert_eq!(declared[0].after["sample_id"], json!(sample));
    let uploaded = audit_entries(app, "sample_attachment_uploaded", &site).await;
    assert_eq!(uploaded.len(), 1);
    assert_eq!(uploaded[0].after["sha256"], json!(hex_sha256(&photo)));
    assert_eq!(uploaded[0].after["processing_status"], json!("uploaded"));
    assert_eq!(
        uploaded[0].before["processing_status"],
        json!("awaiting_upload")
    );
    let processed = audit_entries(app, "sample_attachment_processed", &site).await;
    assert_eq!(processed.len(), 1);
    assert_eq!(processed[0].actor_id, None);
    let uploaded = audit_entries(app, "sample_attachment_uploaded", &report).await;
    assert_eq!(uploaded.len(), 1);
    assert_eq!(uploaded[0].actor_role.as_deref(), Some("lab"));
    assert_eq!(uploaded[0].after["processing_status"], json!("processed"));
    // Originals only: the lab's and the sampler's downloads, not the preview nor the 416;
    // a partial one with its range.
    let downloads = audit_entries(app, "evidence_downloaded", &site).await;
    assert_eq!(downloads.len(), 4);
    let ranges: Vec<Option<Value>> = downloads
        .iter()
        .map(|d| d.after.get("range").cloned())
        .collect();
    assert_eq!(
        ranges,
        [
            None,
            Some(json!(format!("100-199/{len}"))),
            Some(json!(format!("{}-{}/{len}", len - 10, len - 1))),
            None,
        ]
    );
    assert_eq!(
        audit_entries(app, "evidence_downloaded", &report)
            .await
            .len(),
        1
    );
}

/// Only the bytes decide: a JPEG declared as the report, a PDF renamed .jpg declared as a
/// photo and a PDF cut short are refused (415), the attachment marked failed with the reason,
/// and the refusal audited.
async fn types_are_sniffed_from_the_bytes(app: TestApp) {
    let w = world(app).await;
    let at = march_2_2026();
    let sample = w.submitted(at).await;
    w.received(&sample, at).await;

    let photo = jpeg();
    let report = Uuid::new_v4().to_string();
    let (s, v) = declare(
        &w,
        &sample,
        &w.lab_a,
        declaration(&report, "report", &photo),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let res = upload(&w, &w.lab_a, &report, &photo, "report.pdf").await;
    assert_eq!(res.status(), 415);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("JPEG"),
        "{body}"
    );
    let a = attachment(&w, &sample, &w.lab_a, &report).await;
    assert_eq!(a["processing_status"], "failed", "{a}");
    assert!(
        a["processing_error"].as_str().unwrap().contains("PDF"),
        "{a}"
    );
    assert!(a["media_type"].is_null());
    let refused = audit_entries(&w.app, "sample_attachment_upload_refused", &report).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].after["processing_status"], json!("failed"));

    // A PDF renamed .jpg, declared as the seal photo.
    let doc = pdf("not a photo");
    let seal = Uuid::new_v4().to_string();
    let (s, v) = declare(&w, &sample, &w.insp2, declaration(&seal, "seal", &doc)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let res = upload(&w, &w.insp2, &seal, &doc, "IMG_0002.jpg").await;
    assert_eq!(res.status(), 415);
    let a = attachment(&w, &sample, &w.insp2, &seal).await;
    assert_eq!(a["processing_status"], "failed", "{a}");
    assert!(
        a["processing_error"].as_str().unwrap().contains("PDF"),
        "{a}"
    );
    let res = content(&w, &sample, &w.insp2, &seal, "original").await;
    assert_eq!(res.status(), 404);

    // The right header but no trailer (a half-written file): refused when complete.
    let whole = pdf("cut short");
    let cut = whole[..whole.len() - 40].to_vec();
    let short = Uuid::new_v4().to_string();
    let (s, v) = declare(&w, &sample, &w.lab_a, declaration(&short, "report", &cut)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let res = create(&w.app, &w.lab_a, &short, &cut, "report.pdf").await;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    // The first chunk is a PDF by its first bytes: taken.
    let res = patch(&w.app, &w.lab_a, &location, 0, &cut[..200]).await;
    assert_eq!(res.status(), 204);
    let res = patch(&w.app, &w.lab_a, &location, 200, &cut[200..]).await;
    assert_eq!(res.status(), 415);
    let a = attachment(&w, &sample, &w.lab_a, &short).await;
    assert_eq!(a["processing_status"], "failed", "{a}");
    assert!(
        a["processing_error"]
            .as_str()
            .unwrap()
            .contains("not a complete PDF"),
        "{a}"
    );
    // The upload is gone.
    let res = tus(&w.app, Method::HEAD, &location, &w.lab_a, &[], vec![]).await;
    assert_eq!(res.status(), 404);
}

/// Declaring and uploading: the samplers (photos) and the sample's lab (report) only; any
/// other account is answered as for a missing sample. Reading: whoever may see the sample.
async fn only_the_samplers_and_the_samples_lab(app: TestApp) {
    let w = world(app).await;
    let app = &w.app;
    let at = march_2_2026();
    let sample = w.submitted(at).await;
    let photo = jpeg();
    let doc = pdf("report");
    let missing = Uuid::new_v4().to_string();
    let id = Uuid::new_v4().to_string();

    // Not a sampler, another lab: 404, as for a sample that does not exist.
    for token in [&w.outsider, &w.lab_b] {
        for (s, v) in [
            declare(&w, &sample, token, declaration(&id, "site", &photo)).await,
            declare(&w, &sample, token, declaration(&id, "report", &doc)).await,
            declare(&w, &missing, token, declaration(&id, "site", &photo)).await,
            app.get(&format!("/api/v1/samples/{sample}/attachments"), token)
                .await,
        ] {
            assert_error(s, &v, 404, "not_found");
        }
    }
    // The wrong declarer of a kind, or a role that never declares: 403.
    let (s, v) = declare(&w, &sample, &w.insp1, declaration(&id, "report", &doc)).await;
    assert_error(s, &v, 403, "forbidden");
    let (s, v) = declare(&w, &sample, &w.lab_a, declaration(&id, "site", &photo)).await;
    assert_error(s, &v, 403, "forbidden");
    let (s, v) = declare(&w, &sample, &w.admin, declaration(&id, "site", &photo)).await;
    assert_error(s, &v, 403, "forbidden");
    // Bad declarations name their field.
    let (s, v) = declare(
        &w,
        &sample,
        &w.insp1,
        json!({"id": "nope", "kind": "site", "sha256": "x", "byte_size": 0, "taken_at": 1}),
    )
    .await;
    assert_error(s, &v, 422, "validation_failed");
    assert_eq!(v["error"]["details"].as_array().unwrap().len(), 4, "{v}");

    let (s, v) = declare(&w, &sample, &w.insp1, declaration(&id, "sample", &photo)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The upload of someone else's attachment: 404 for the outsider, the other lab, the
    // sample's own lab (a photo is the samplers'); 403 for an office account.
    for token in [&w.outsider, &w.lab_b, &w.lab_a] {
        let res = create(app, token, &id, &photo, "x.jpg").await;
        assert_eq!(res.status(), 404);
    }
    let res = create(app, &w.reviewer, &id, &photo, "x.jpg").await;
    assert_eq!(res.status(), 403);
    // The other sampler may upload it.
    let res = upload(&w, &w.insp2, &id, &photo, "x.jpg").await;
    assert_eq!(res.status(), 204);
    let (s, v) = app
        .get(&format!("/api/v1/samples/{sample}"), &w.outsider)
        .await;
    assert_error(s, &v, 404, "not_found");
    for token in [&w.outsider, &w.lab_b] {
        let res = content(&w, &sample, token, &id, "original").await;
        assert_eq!(res.status(), 404);
    }
    // The attachment named under another sample is not found either.
    let other = w.submitted(at).await;
    let res = content(&w, &other, &w.insp1, &id, "original").await;
    assert_eq!(res.status(), 404);
    for token in [&w.admin, &w.reviewer, &w.insp1, &w.lab_a] {
        let res = content(&w, &sample, token, &id, "original").await;
        assert_eq!(res.status(), 200);
        let a = attachment(&w, &sample, token, &id).await;
        assert_eq!(a["kind"], "sample");
    }
}

/// The same bytes are stored once: a sampler who already holds them skips sending them
/// (complete at creation), and the lab's report PDF for a second sample too.
async fn identical_bytes_are_stored_once(app: TestApp) {
    let w = world(app).await;
    let at = march_2_2026();
    let first = w.submitted(at).await;
    let second = w.submitted(at).await;
    let photo = jpeg();
    let before = count_blobs(&w.app).await;
    let a = Uuid::new_v4().to_string();
    let b = Uuid::new_v4().to_string();
    let (s, _) = declare(&w, &first, &w.insp1, declaration(&a, "site", &photo)).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = declare(&w, &second, &w.insp2, declaration(&b, "sample", &photo)).await;
    assert_eq!(s, StatusCode::CREATED);
    // Before any upload holds them, the bytes must be sent.
    let res = create(&w.app, &w.insp2, &b, &photo, "b.jpg").await;
    assert_eq!((res.status().as_u16(), offset(&res)), (201, 0));
    let res = tus(
        &w.app,
        Method::DELETE,
        res.headers()["location"].to_str().unwrap(),
        &w.insp2,
        &[],
        vec![],
    )
    .await;
    assert_eq!(res.status(), 204);
    let res = upload(&w, &w.insp1, &a, &photo, "a.jpg").await;
    assert_eq!(res.status(), 204);
    assert_eq!(count_blobs(&w.app).await, before + 1);
    // insp2 samples the first sample too: the content is theirs to read, nothing to send.
    let res = create(&w.app, &w.insp2, &b, &photo, "b.jpg").await;
    assert_eq!(
        (res.status().as_u16(), offset(&res)),
        (201, photo.len() as i64)
    );
    assert_eq!(count_blobs(&w.app).await, before + 1);
    let uploaded = audit_entries(&w.app, "sample_attachment_uploaded", &b).await;
    assert_eq!(uploaded.len(), 1);
    assert_eq!(
        (
            &uploaded[0].after["deduplicated"],
            &uploaded[0].after["new_content"]
        ),
        (&json!(true), &json!(false))
    );
    let got = content(&w, &second, &w.admin, &b, "original").await;
    assert_eq!(got.bytes().await.unwrap().as_ref(), photo.as_slice());

    // The report PDF: the lab sends it for one sample, then declares it again for the other.
    let doc = pdf("combined report");
    for s in [&first, &second] {
        w.received(s, at).await;
    }
    let r1 = Uuid::new_v4().to_string();
    let r2 = Uuid::new_v4().to_string();
    let (s, _) = declare(&w, &first, &w.lab_a, declaration(&r1, "report", &doc)).await;
    assert_eq!(s, StatusCode::CREATED);
    let res = upload(&w, &w.lab_a, &r1, &doc, "r.pdf").await;
    assert_eq!(res.status(), 204);
    let (s, _) = declare(&w, &second, &w.lab_a, declaration(&r2, "report", &doc)).await;
    assert_eq!(s, StatusCode::CREATED);
    let res = create(&w.app, &w.lab_a, &r2, &doc, "r.pdf").await;
    assert_eq!(
        (res.status().as_u16(), offset(&res)),
        (201, doc.len() as i64)
    );
    assert_eq!(count_blobs(&w.app).await, before + 2);
    let r = attachment(&w, &second, &w.lab_a, &r2).await;
    assert_eq!(r["processing_status"], "processed", "{r}");
}
