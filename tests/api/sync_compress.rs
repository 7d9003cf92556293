//! Compressed sync: pulls answered in gzip, br or zstd as `Accept-Encoding` asks, pushes sent
//! with `Content-Encoding` gzip, br or zstd, bounded once decompressed (bombs are 413 with
//! bounded memory), corrupt bodies 400, unknown codings 415; which other answers are compressed.
//! (The real WatermelonDB client does the same in tests/clients/watermelondb/compress.test.js.)

use std::io::{Read, Write};
use std::sync::OnceLock;

use foodcheck::auth::Role;
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{assert_error, Kind, TestApp};

both_backends!(@spawn spawn;
    pull_in_each_coding_decodes_to_the_plain_json,
    compressed_pushes_apply_like_the_plain_push,
    bombs_are_413_with_bounded_memory,
    compressed_and_raw_sizes_are_both_bounded,
    corrupt_bodies_are_400_and_apply_nothing,
    unknown_codings_are_415,
    only_text_answers_are_compressed,
);

/// The push limit of these tests: small, so that "over the limit once decompressed" is cheap to
/// build; the bombs decompress to 256 times more.
const LIMIT: usize = 4 * 1024 * 1024;

async fn spawn(kind: Kind) -> TestApp {
    TestApp::spawn_with(kind, |c| c.max_sync_body_bytes = LIMIT).await
}

const TEMPLATE: &str = "00000000-0000-4000-8000-000000002016";
/// The 30 item codes of the 2016 table.
const ITEMS: [&str; 30] = [
    "1.1", "2.1", "2.2", "2.3", "3.1", "3.2", "4.1", "4.2", "4.3", "4.4", "5.1", "5.2", "5.3",
    "5.4", "6.1", "6.2", "6.3", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "8.1", "8.2", "8.3",
    "8.4", "9.1", "9.2", "9.3",
];

struct World {
    app: TestApp,
    admin: String,
    /// Both inspectors are in every task's team.
    a: String,
    b: String,
    team: String,
    plan: String,
    /// (task id, establishment id)
    tasks: Vec<(String, String)>,
}

async fn world(app: TestApp) -> World {
    let admin = app.token_for("admin", Role::Admin).await;
    let mut inspectors = Vec::new();
    for name in ["insp_a", "insp_b"] {
        let id = app.user(name, Role::Inspector).await;
        inspectors.push((name.to_string(), id));
    }
    for i in 0..4 {
        let (s, e) = app
            .post(
                "/api/v1/establishments",
                &admin,
                json!({"sign_name": format!("压缩店{i}"), "licensed_name": format!("压缩公司{i}"), "license_no": format!("JY21201160{i:06}"),
                       "category": "small_restaurant", "address": "地址", "town": "周良街道", "risk_grade": "C",
                       "contact_phone": "13800138000", "location": {"lng": 117.29, "lat": 39.71, "crs": "gcj02"}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
    }
    let ids: Vec<&str> = inspectors.iter().map(|(_, id)| id.as_str()).collect();
    let (s, plan) = app
        .post(
            "/api/v1/plans",
            &admin,
            json!({"name": "n", "round_title": "第1期", "theme": "t", "period_start": "2024-03-01", "period_end": "2024-03-31",
                   "due_date": "2099-03-31", "template_id": TEMPLATE, "template_version": 1, "quotas": {"explicit": {"C": 4}},
                   "inspector_ids": ids, "team_size": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{plan}");
    let plan = plan["id"].as_str().unwrap().to_string();
    let (s, draw) = app
        .post(
            &format!("/api/v1/plans/{plan}/draw"),
            &admin,
            json!({"seed": "s"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{draw}");
    let tasks = crate::common::drawn_tasks(&app, &admin, &plan, &inspectors)
        .await
        .into_iter()
        .map(|(t, e, _)| (t, e))
        .collect::<Vec<_>>();
    assert_eq!(tasks.len(), 4);
    let team: Vec<Value> = inspectors
        .iter()
        .map(|(n, id)| json!({"user_id": id, "name": n, "badge_no": format!("TJ-{n}")}))
        .collect();
    let a = app.login_full("insp_a", "dev-a").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let b = app.login_full("insp_b", "dev-b").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    World {
        app,
        admin,
        a,
        b,
        team: serde_json::to_string(&team).unwrap(),
        plan,
        tasks,
    }
}

/// One inspection with an answer to each of the 30 items (a typical push), as WatermelonDB sends it.
fn inspection_changes(w: &World, task: usize) -> (String, Value) {
    let (task_id, est) = &w.tasks[task];
    let id = Uuid::new_v4().to_string();
    let answers: Vec<Value> = ITEMS
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let aid = Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("{id}:{item}").as_bytes());
            json!({"id": aid, "_status": "created", "_changed": "", "inspection_id": id, "item_code": item,
                   "status": if i % 7 == 3 { "fail" } else { "pass" },
                   "note": if i % 5 == 0 { Value::from(format!("第{i}项：后厨地面有积水，已要求当场整改。")) } else { Value::Null }})
        })
        .collect();
    let changes = json!({
        "inspections": {"created": [{"id": id, "_status": "created", "_changed": "", "task_id": task_id, "establishment_id": est,
            "started_at": 1_710_000_000_000i64, "finished_at": 1_710_000_900_000i64, "lng": 117.2903, "lat": 39.7102,
            "gps_accuracy_m": 12.5, "crs": "gcj02", "team": w.team, "representative_name": "王店长",
            "representative_signed": true, "representative_refused": false, "business_opinion": "无异议",
            "other_findings": "冷藏柜温度计缺失", "declared_result": "basically_compliant", "submitted": false,
            "computed_result": null, "review_state": null, "server_flags": null}], "updated": [], "deleted": []},
        "answers": {"created": answers, "updated": [], "deleted": []},
    });
    (id, changes)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn brotli(data: &[u8], quality: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 64 * 1024, quality, 22);
        w.write_all(data).unwrap();
    }
    out
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

fn encode(coding: &str, data: &[u8]) -> Vec<u8> {
    match coding {
        "gzip" => gzip(data),
        "br" => brotli(data, 5),
        "zstd" => zstd(data),
        "identity" => data.to_vec(),
        other => panic!("no coding {other}"),
    }
}

fn decode(coding: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => {
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .unwrap();
        }
        "br" => {
            brotli::Decompressor::new(data, 64 * 1024)
                .read_to_end(&mut out)
                .unwrap();
        }
        "zstd" => out = zstd::decode_all(data).unwrap(),
        "" => out = data.to_vec(),
        other => panic!("no coding {other}"),
    }
    out
}

/// A raw GET (reqwest here decodes nothing): status, `Content-Encoding`, headers, the bytes.
async fn get_raw(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    accept: Option<&str>,
) -> (StatusCode, String, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = app.client.get(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(a) = accept {
        req = req.header(ACCEPT_ENCODING, a);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let coding = headers
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, coding, headers, res.bytes().await.unwrap().to_vec())
}

/// A push with the given `Content-Encoding` (None: no header) of `body` as is.
async fn push_raw(
    app: &TestApp,
    token: &str,
    last: i64,
    coding: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(app.url(&format!("/api/v1/sync?last_pulled_at={last}")))
        .bearer_auth(token)
        .header(CONTENT_TYPE, "application/json");
    if let Some(c) = coding {
        req = req.header(CONTENT_ENCODING, c);
    }
    let res = req.body(body).send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON answer: {text}"))
    };
    (status, value)
}

/// [`push_raw`] over a raw socket that reads the answer even when the server stops reading
/// early (a 413 before the whole body is sent), as `common::raw_post` does.
async fn push_early_answer(app: &TestApp, token: &str, coding: &str, body: &[u8]) -> (u16, Value) {
    use tokio::io::AsyncWriteExt;
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/sync?last_pulled_at=0 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Encoding: {coding}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    // The server may stop reading once past its limit; a failed write is expected then.
    let _ = stream.write_all(body).await;
    crate::common::read_raw_response(stream).await
}

async fn first_pull(w: &World, token: &str) -> Value {
    let (s, body) = w
        .app
        .get(
            "/api/v1/sync?last_pulled_at=null&schema_version=7&migration=null",
            token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body
}

/// Every table's lists sorted by id, so two pulls compare whatever the row order.
fn normalized(mut pull: Value) -> Value {
    // On PostgreSQL the cursor follows transaction ids, which any transaction of the cluster
    // (another test's) moves on: two pulls of the same changes may carry different ones.
    assert!(pull["timestamp"].is_i64(), "{pull}");
    pull.as_object_mut().unwrap().remove("timestamp");
    if let Some(tables) = pull["changes"].as_object_mut() {
        for lists in tables.values_mut() {
            for kind in ["created", "updated", "deleted"] {
                if let Some(list) = lists[kind].as_array_mut() {
                    list.sort_by_key(|r| r.get("id").unwrap_or(r).to_string());
                }
            }
        }
    }
    pull
}

async fn inspections_count(app: &TestApp) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM inspections")
        .fetch_one(app.db().pool())
        .await
        .unwrap();
    n
}

async fn pull_in_each_coding_decodes_to_the_plain_json(app: TestApp) {
    let w = world(app).await;
    let (_, changes) = inspection_changes(&w, 0);
    let (s, r) = push_raw(
        &w.app,
        &w.a,
        0,
        None,
        serde_json::to_vec(&json!({"changes": changes})).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let path = "/api/v1/sync?last_pulled_at=null&schema_version=7&migration=null";

    // No Accept-Encoding: plain JSON, and `Vary` says the answer depends on it.
    let (s, coding, headers, plain) = get_raw(&w.app, path, Some(&w.b), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(coding, "");
    assert!(
        headers.get_all(VARY).iter().any(|v| v
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("accept-encoding")),
        "{headers:?}"
    );
    let plain_json: Value = serde_json::from_slice(&plain).unwrap();
    assert!(
        plain_json["changes"]["answers"]["created"]
            .as_array()
            .unwrap()
            .len()
            == 30
    );
    let plain_json = normalized(plain_json);

    for (accept, want) in [
        ("gzip", "gzip"),
        ("br", "br"),
        ("zstd", "zstd"),
        // q-values: the highest wins, q=0 refuses a coding.
        ("gzip;q=1.0, br;q=0.5, zstd;q=0.1", "gzip"),
        ("gzip;q=0.2, br;q=0.9", "br"),
        ("zstd;q=0, br;q=0, gzip", "gzip"),
        ("gzip;q=0", ""),
        ("identity", ""),
        ("deflate", ""),
    ] {
        let (s, coding, headers, bytes) = get_raw(&w.app, path, Some(&w.b), Some(accept)).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(coding, want, "Accept-Encoding: {accept}");
        assert!(
            headers.get_all(VARY).iter().any(|v| v
                .to_str()
                .unwrap()
                .to_ascii_lowercase()
                .contains("accept-encoding")),
            "{accept}: {headers:?}"
        );
        if !want.is_empty() {
            assert!(
                bytes.len() * 3 < plain.len(),
                "{accept}: {} compressed bytes of {}",
                bytes.len(),
                plain.len()
            );
            assert!(headers
                .get(reqwest::header::CONTENT_LENGTH)
                .is_none_or(|l| l.to_str().unwrap().parse::<usize>().unwrap() == bytes.len()));
        }
        let decoded: Value = serde_json::from_slice(&decode(want, &bytes)).unwrap();
        assert_eq!(normalized(decoded), plain_json, "{accept}");
    }

    // A small answer (an error envelope) is not worth compressing.
    let (s, coding, _, bytes) = get_raw(
        &w.app,
        "/api/v1/sync?last_pulled_at=-1",
        Some(&w.b),
        Some("gzip"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(coding, "");
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "invalid_cursor");
}

async fn compressed_pushes_apply_like_the_plain_push(app: TestApp) {
    let w = world(app).await;
    let before = first_pull(&w, &w.a).await;
    let last = before["timestamp"].as_i64().unwrap();
    // The same inspection content for four tasks: plain, gzip, br, zstd.
    let mut pushed = Vec::new();
    for (task, coding) in ["identity", "gzip", "br", "zstd"].iter().enumerate() {
        let (id, changes) = inspection_changes(&w, task);
        let json = serde_json::to_vec(&json!({"changes": changes})).unwrap();
        let body = encode(coding, &json);
        if *coding != "identity" {
            assert!(
                body.len() * 2 < json.len(),
                "{coding}: {} of {}",
                body.len(),
                json.len()
            );
        }
        let header = (*coding != "identity").then_some(*coding);
        let (s, r) = push_raw(&w.app, &w.a, last, header, body).await;
        assert_eq!(s, StatusCode::OK, "{coding}: {r}");
        assert_eq!(r, json!({}), "{coding}");
        pushed.push((coding.to_string(), id, changes));
    }
    // A replay of the gzip push is a no-op, as a plain replay is.
    let (_, _, changes) = &pushed[1];
    let body = gzip(&serde_json::to_vec(&json!({"changes": changes})).unwrap());
    let (s, r) = push_raw(&w.app, &w.a, last, Some("gzip"), body).await;
    assert_eq!((s, r), (StatusCode::OK, json!({})));
    assert_eq!(inspections_count(&w.app).await, 4);

    // The teammate pulls four inspections that differ only by their ids and tasks.
    let pull = first_pull(&w, &w.b).await;
    let shape = |id: &str| -> (Value, Vec<Value>) {
        let mut ins = pull["changes"]["inspections"]["created"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("inspection {id} not pulled"))
            .clone();
        for k in ["id", "task_id", "establishment_id"] {
            ins.as_object_mut().unwrap().remove(k);
        }
        let mut answers: Vec<Value> = pull["changes"]["answers"]["created"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["inspection_id"] == id)
            .cloned()
            .map(|mut a| {
                a.as_object_mut().unwrap().remove("id");
                a.as_object_mut().unwrap().remove("inspection_id");
                a
            })
            .collect();
        answers.sort_by_key(|a| a["item_code"].to_string());
        (ins, answers)
    };
    let (plain_ins, plain_answers) = shape(&pushed[0].1);
    assert_eq!(plain_answers.len(), 30);
    assert_eq!(plain_ins["other_findings"], "冷藏柜温度计缺失");
    for (coding, id, _) in &pushed[1..] {
        let (ins, answers) = shape(id);
        assert_eq!(ins, plain_ins, "{coding}");
        assert_eq!(answers, plain_answers, "{coding}");
    }
}

/// Peak resident memory of this process while `fut` runs (sampled every millisecond), minus
/// the resident memory before it.
async fn rss_growth<F: std::future::Future>(fut: F) -> (F::Output, u64) {
    fn rss() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        let pages: u64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        pages * 4096
    }
    let start = rss();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            peak = peak.max(rss());
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        peak.max(rss())
    });
    let out = fut.await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    (out, peak.saturating_sub(start))
}

/// 1 GiB of zeros as gzip (about 1 MiB), zstd (about 32 KiB), and 256 MiB as br; built once.
fn bombs() -> &'static [(&'static str, Vec<u8>)] {
    static BOMBS: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    BOMBS.get_or_init(|| {
        let zeros = vec![0u8; 1 << 20];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let mut zs = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        let mut br_out = Vec::new();
        {
            let mut br = brotli::CompressorWriter::new(&mut br_out, 64 * 1024, 1, 22);
            for i in 0..1024 {
                gz.write_all(&zeros).unwrap();
                zs.write_all(&zeros).unwrap();
                if i < 256 {
                    br.write_all(&zeros).unwrap();
                }
            }
        }
        vec![
            ("gzip", gz.finish().unwrap()),
            ("zstd", zs.finish().unwrap()),
            ("br", br_out),
        ]
    })
}

async fn bombs_are_413_with_bounded_memory(app: TestApp) {
    let w = world(app).await;
    let bombs = tokio::task::spawn_blocking(bombs).await.unwrap();
    for (coding, bomb) in bombs {
        assert!(bomb.len() < 2 << 20, "{coding}: {} bytes", bomb.len());
        let ((s, r), grown) = rss_growth(push_early_answer(&w.app, &w.a, coding, bomb)).await;
        assert_eq!(s, 413, "{coding}: {r}");
        assert_eq!(r["error"]["code"], "payload_too_large", "{r}");
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("decompressed"),
            "{r}"
        );
        // The server decompressed at most the limit (4 MiB) of the 1 GiB (256 MiB for br).
        assert!(
            grown < 128 << 20,
            "{coding}: RSS grew by {} MiB",
            grown >> 20
        );
    }
    assert_eq!(inspections_count(&w.app).await, 0);
    // The server is fine: a compressed push right after applies.
    let (_, changes) = inspection_changes(&w, 0);
    let body = gzip(&serde_json::to_vec(&json!({"changes": changes})).unwrap());
    let (s, r) = push_raw(&w.app, &w.a, 0, Some("gzip"), body).await;
    assert_eq!((s, r), (StatusCode::OK, json!({})));
    assert_eq!(inspections_count(&w.app).await, 1);
}

async fn compressed_and_raw_sizes_are_both_bounded(app: TestApp) {
    let w = world(app).await;
    // A JSON push of just over the limit once decompressed (JSON whitespace), a few KB gzipped.
    let (_, changes) = inspection_changes(&w, 0);
    let padded = |total: usize| {
        let mut json = serde_json::to_vec(&json!({"changes": changes})).unwrap();
        json.resize(total, b' ');
        json
    };
    let body = gzip(&padded(LIMIT + 1));
    assert!(body.len() < 64 * 1024);
    let (s, r) = push_raw(&w.app, &w.a, 0, Some("gzip"), body).await;
    assert_error(s, &r, 413, "payload_too_large");
    assert_eq!(inspections_count(&w.app).await, 0);
    // Exactly the limit applies.
    let (s, r) = push_raw(&w.app, &w.a, 0, Some("gzip"), gzip(&padded(LIMIT))).await;
    assert_eq!((s, r), (StatusCode::OK, json!({})));
    assert_eq!(inspections_count(&w.app).await, 1);
    // The bytes on the wire are bounded too: gzip of incompressible bytes over the limit.
    let mut noise = vec![0u8; LIMIT + 4096];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let packed = gzip(&noise);
    assert!(packed.len() > LIMIT);
    let (s, r) = push_early_answer(&w.app, &w.a, "gzip", &packed).await;
    assert_eq!(s, 413, "{r}");
    assert_eq!(r["error"]["code"], "payload_too_large", "{r}");
}

async fn corrupt_bodies_are_400_and_apply_nothing(app: TestApp) {
    let w = world(app).await;
    let (_, changes) = inspection_changes(&w, 0);
    let json = serde_json::to_vec(&json!({"changes": changes})).unwrap();
    let good = gzip(&json);
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"not gzip at all");
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("gzip", "plain JSON labelled gzip", json.clone()),
        ("gzip", "truncated", good[..good.len() / 2].to_vec()),
        ("gzip", "a flipped byte", flipped),
        ("gzip", "garbage after the gzip", trailing),
        ("br", "plain JSON labelled br", json.clone()),
        ("zstd", "plain JSON labelled zstd", json.clone()),
        ("zstd", "truncated", zstd(&json)[..100].to_vec()),
    ];
    for (coding, what, body) in cases {
        let (s, r) = push_raw(&w.app, &w.a, 0, Some(coding), body).await;
        assert_error(s, &r, 400, "invalid_compressed_body");
        assert!(
            r["error"]["message"].as_str().unwrap().contains(coding),
            "{what}: {r}"
        );
    }
    // Valid gzip of something that is not JSON is the usual invalid_json.
    let (s, r) = push_raw(&w.app, &w.a, 0, Some("gzip"), gzip(b"{\"changes\": ")).await;
    assert_error(s, &r, 400, "invalid_json");
    assert_eq!(inspections_count(&w.app).await, 0);
}

async fn unknown_codings_are_415(app: TestApp) {
    let w = world(app).await;
    let (_, changes) = inspection_changes(&w, 0);
    let json = serde_json::to_vec(&json!({"changes": changes})).unwrap();
    for coding in ["deflate", "compress", "gzip, br", "lz4", "x-bzip2"] {
        let (s, r) = push_raw(&w.app, &w.a, 0, Some(coding), gzip(&json)).await;
        assert_error(s, &r, 415, "unsupported_content_encoding");
    }
    // `identity` is no coding at all.
    let (s, r) = push_raw(&w.app, &w.a, 0, Some("identity"), json).await;
    assert_eq!((s, r), (StatusCode::OK, json!({})));
    // Other endpoints take no compressed bodies: 415, not a confusing invalid_json.
    let res = w
        .app
        .client
        .post(w.app.url("/api/v1/establishments"))
        .bearer_auth(&w.admin)
        .header(CONTENT_TYPE, "application/json")
        .header(CONTENT_ENCODING, "gzip")
        .body(gzip(br#"{"sign_name": "x"}"#))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_error(status, &body, 415, "unsupported_content_encoding");
}

async fn only_text_answers_are_compressed(app: TestApp) {
    let w = world(app).await;
    // A large JSON answer other than the pull.
    let (s, coding, headers, bytes) =
        get_raw(&w.app, "/api/v1/openapi.json", None, Some("br, gzip")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(coding, "br");
    assert!(headers.get(reqwest::header::CONTENT_LENGTH).is_none());
    let spec: Value = serde_json::from_slice(&decode("br", &bytes)).unwrap();
    assert!(spec["paths"]["/api/v1/sync"].is_object());

    // XLSX is already a zip: sent as it is, with its length.
    let (s, coding, headers, bytes) = get_raw(
        &w.app,
        "/api/v1/stats.xlsx?from=2024-01-01&to=2024-12-31",
        Some(&w.admin),
        Some("gzip, br, zstd"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(coding, "");
    assert!(bytes.starts_with(b"PK"));
    assert!(headers
        .get(CONTENT_TYPE)
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("application/vnd.openxmlformats"));

    // A public page with its ETag: compressed, the ETag weak, and If-None-Match with it is 304.
    let path = format!("/public/v1/plans/{}/draw/pool", w.plan);
    let (s, plain_coding, plain_headers, plain) = get_raw(&w.app, &path, None, None).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&plain));
    assert_eq!(plain_coding, "");
    let strong = plain_headers
        .get(ETAG)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(strong.starts_with('"'), "{strong}");
    if plain.len() >= foodcheck::http::encoding::MIN_COMPRESSED_BYTES as usize {
        let (s, coding, headers, bytes) = get_raw(&w.app, &path, None, Some("gzip")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(coding, "gzip");
        let weak = headers.get(ETAG).unwrap().to_str().unwrap().to_string();
        assert_eq!(weak, format!("W/{strong}"));
        assert_eq!(decode("gzip", &bytes), plain);
        let res = w
            .app
            .client
            .get(w.app.url(&path))
            .header(ACCEPT_ENCODING, "gzip")
            .header(IF_NONE_MATCH, &weak)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    } else {
        panic!(
            "the draw pool is {} bytes: too small for this test",
            plain.len()
        );
    }
}

/// Wire sizes of a typical push and of a first pull in each coding, and the server's CPU per
/// compressed pull (the encoders at the server's levels, timed on that pull):
/// `cargo test --test api sync_compress::wire_sizes -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run on its own with --ignored --nocapture"]
async fn wire_sizes() {
    let w = world(spawn(Kind::Sqlite).await).await;
    // A typical push: one inspection with 35 answers, as WatermelonDB sends it.
    let (_, mut one) = inspection_changes(&w, 0);
    let mut answers = one["answers"]["created"].as_array().unwrap().clone();
    for i in 0..5 {
        let mut extra = answers[i].clone();
        extra["id"] = Value::from(Uuid::new_v4().to_string());
        extra["item_code"] = Value::from(format!("10.{}", i + 1));
        answers.push(extra);
    }
    one["answers"]["created"] = Value::from(answers);
    let push = serde_json::to_vec(&json!({"changes": one})).unwrap();
    let line = |what: &str, plain: usize, data: &[u8]| {
        let gz = gzip(data).len();
        let br = brotli(data, 4).len();
        let zs = zstd(data).len();
        eprintln!(
            "| {what} | {plain} | {gz} ({:.1}×) | {br} ({:.1}×) | {zs} ({:.1}×) |",
            plain as f64 / gz as f64,
            plain as f64 / br as f64,
            plain as f64 / zs as f64
        );
    };
    eprintln!("| body | plain bytes | gzip (6) | br (4) | zstd (3) |\n|---|---|---|---|---|");
    line("push: 1 inspection × 35 answers", push.len(), &push);
    // A first pull with the 4 tasks, their establishments and checklist version, 4 inspections
    // with 30 answers each, as the server sends it.
    for task in 0..4 {
        let (_, changes) = inspection_changes(&w, task);
        let body = serde_json::to_vec(&json!({"changes": changes})).unwrap();
        let (s, r) = push_raw(&w.app, &w.a, 0, Some("gzip"), gzip(&body)).await;
        assert_eq!(s, StatusCode::OK, "{r}");
    }
    let path = "/api/v1/sync?last_pulled_at=null&schema_version=7&migration=null";
    let (_, _, _, plain) = get_raw(&w.app, path, Some(&w.b), None).await;
    let mut sizes = Vec::new();
    for coding in ["gzip", "br", "zstd"] {
        let (_, c, _, bytes) = get_raw(&w.app, path, Some(&w.b), Some(coding)).await;
        assert_eq!(c, coding);
        sizes.push((coding, bytes.len()));
    }
    eprintln!(
        "| first pull: 4 tasks, 4 inspections × 30 answers (server) | {} | {} | {} | {} |",
        plain.len(),
        sizes[0].1,
        sizes[1].1,
        sizes[2].1
    );
    // The server's encoders (async-compression, as tower-http builds them: gzip 6, br 4,
    // zstd 3), timed on that pull; dependencies are built optimised in the test profile too.
    use async_compression::tokio::bufread::{BrotliEncoder, GzipEncoder, ZstdEncoder};
    use async_compression::Level;
    use tokio::io::AsyncReadExt;
    for coding in ["gzip", "br", "zstd"] {
        let n = 500u32;
        let t0 = std::time::Instant::now();
        let mut out = Vec::new();
        for _ in 0..n {
            out.clear();
            let input = &plain[..];
            match coding {
                "gzip" => GzipEncoder::with_quality(input, Level::Default)
                    .read_to_end(&mut out)
                    .await
                    .unwrap(),
                "br" => BrotliEncoder::with_quality(input, Level::Precise(4))
                    .read_to_end(&mut out)
                    .await
                    .unwrap(),
                _ => ZstdEncoder::with_quality(input, Level::Default)
                    .read_to_end(&mut out)
                    .await
                    .unwrap(),
            };
        }
        let per = t0.elapsed() / n;
        eprintln!(
            "{coding}: {} → {} bytes in {:.3} ms ({:.0} MB/s)",
            plain.len(),
            out.len(),
            per.as_secs_f64() * 1e3,
            plain.len() as f64 / per.as_secs_f64() / 1e6
        );
    }
}
