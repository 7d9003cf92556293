//! `/public/v1` open data and the public pages: round results appear only once the section
//! publishes them; paging meta; ETag/304, Cache-Control and CORS; the draw's pool with public
//! identities and the conflict-list commitment; nothing personal or internal anywhere.

use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{assert_error, TestApp};
use crate::list_fill as fill;
use crate::review_fixture::{scene, Scene, Submission, KEY};

both_backends!(
    round_results_are_public_only_once_published,
    public_reads_cache_and_allow_any_origin,
    the_pool_is_public_with_identities_and_a_conflict_commitment,
    large_exports_arrive_whole,
    export_batches_carry_every_value_exactly,
);

/// Texts that must never appear on a public route: the inspectors' and reviewer's names,
/// badges, usernames and ids, the registry's phone numbers, review comments, internal notes
/// and override reasons (the scene writes them with these markers).
pub fn secrets(s: &Scene) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "Name of".into(),
        "TJ-insp".into(),
        "13800138000".into(),
        "COMMENT-MARK".into(),
        "INTERNAL-MARK".into(),
        "OVERRIDE-MARK".into(),
        "REJECT-MARK".into(),
        s.reviewer_id.clone(),
    ];
    for (name, id) in &s.inspectors {
        v.push(format!("\"{name}\""));
        v.push(id.clone());
    }
    v
}

#[track_caller]
pub fn assert_no_secret(what: &str, body: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!body.contains(s.as_str()), "{what} leaks {s:?}: {body}");
    }
}

pub async fn get(app: &TestApp, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let res = app.client.get(app.url(path)).send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.text().await.unwrap())
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

/// Three shops, one round: 符合, and 不符合 (approved with an order), reviewed with comments
/// and internal notes carrying the secret markers.
async fn round(app: TestApp) -> (Scene, Vec<String>) {
    let admin = app.token_for("boss", foodcheck::auth::Role::Admin).await;
    crate::common::cover_this_and_next_year(&app, &admin).await;
    let s = scene(app, &["老王面馆", "小李饺子", "张记包子"], &["周良街道"]).await;
    let ok = s.submit(0, 0, Submission::default()).await;
    s.review(
        &ok,
        json!({"decision": "approved", "comment": "COMMENT-MARK", "internal_note": "INTERNAL-MARK"}),
    )
    .await;
    let bad = s
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
    s.approve_on(
        &bad,
        json!({"decision": "approved", "internal_note": "INTERNAL-MARK"}),
        "2024-03-20",
    )
    .await
    .expect("不符合 opens a follow-up");
    (s, vec![ok, bad])
}

async fn round_results_are_public_only_once_published(app: TestApp) {
    let (s, inspections) = round(app).await;
    let plan = s.plans[0].id.clone();
    let est = s.plans[0].tasks[1].1.clone();
    let secrets = secrets(&s);
    // Before publication: the round is listed (drawn) without results; nothing else.
    let (st, _, body) = get(&s.app, "/public/v1/plans").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let plans = json_of(&body);
    assert_eq!(plans["meta"]["total_count"], 1);
    assert_eq!(plans["items"][0]["id"], plan.as_str());
    assert_eq!(plans["items"][0]["results_url"], Value::Null);
    for path in [
        format!("/public/v1/plans/{plan}/results"),
        format!("/public/v1/establishments/{est}"),
        format!("/public/establishments/{est}"),
    ] {
        let (st, _, body) = get(&s.app, &path).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    // Inspectors cannot publish; a reviewer does, once.
    let member = s.app.login_full("insp0", "p").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let publish = format!("/api/v1/plans/{plan}/publish-results");
    let (st, b) = s.app.post(&publish, &member, json!({})).await;
    assert_error(st, &b, 403, "forbidden");
    let (st, b) = s.app.post(&publish, &s.reviewer, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (st, b) = s.app.post(&publish, &s.reviewer, json!({})).await;
    assert_error(st, &b, 409, "already_published");

    let (st, _, body) = get(&s.app, &format!("/public/v1/plans/{plan}/results")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_no_secret("results", &body, &secrets);
    let r = json_of(&body);
    assert_eq!(r["meta"]["total_count"], 2);
    assert_eq!(r["meta"]["total_pages"], 1);
    assert!(r["meta"]["extract_date"].is_string());
    let mut got: Vec<(String, String)> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["inspection_id"].as_str().unwrap().to_string(),
                i["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (inspections[0].clone(), "compliant".to_string()),
        (inspections[1].clone(), "non_compliant".to_string()),
    ];
    want.sort();
    assert_eq!(got, want);
    // Paging: one per page.
    let (_, _, body) = get(
        &s.app,
        &format!("/public/v1/plans/{plan}/results?page=2&page_size=1"),
    )
    .await;
    let p2 = json_of(&body);
    assert_eq!(p2["meta"]["total_pages"], 2);
    assert_eq!(p2["meta"]["page"], 2);
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    for bad in [
        "page=0",
        "page_size=0",
        "page_size=201",
        "page=9999&page_size=200",
    ] {
        let (st, _, body) = get(&s.app, &format!("/public/v1/plans/{plan}/results?{bad}")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(json_of(&body)["error"]["code"], "invalid_paging");
    }
    // The establishment's history: its result and its rectification order (dates only).
    let (st, _, body) = get(&s.app, &format!("/public/v1/establishments/{est}")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_no_secret("history", &body, &secrets);
    let h = json_of(&body);
    assert_eq!(h["establishment"]["id"], est.as_str());
    assert_eq!(h["inspections"][0]["result"], "non_compliant");
    assert_eq!(h["inspections"][0]["kind"], "routine");
    assert_eq!(h["rectifications"][0]["state"], "open");
    assert_eq!(h["rectifications"][0]["ordered_on"], "2024-03-20");
    assert!(h["establishment"].get("contact_phone").is_none());
    history_exports_read_back(&s.app, &est, &secrets).await;
    // The page the printed record's QR code opens.
    let (st, headers, html) = get(&s.app, &format!("/public/establishments/{est}")).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_no_secret("establishment page", &html, &secrets);
    let sign = h["establishment"]["sign_name"].as_str().unwrap();
    for want in [sign, "不符合", "整改中", "检查结果仅反映检查当时"] {
        assert!(html.contains(want), "the page lacks {want:?}: {html}");
    }
    // The plan index links the results now.
    let (_, _, body) = get(&s.app, "/public/v1/plans").await;
    assert_eq!(
        json_of(&body)["items"][0]["results_url"],
        format!("/public/v1/plans/{plan}/results")
    );
}

async fn public_reads_cache_and_allow_any_origin(app: TestApp) {
    let (s, _) = round(app).await;
    let (st, headers, body) = get(&s.app, "/public/v1/plans").await;
    assert_eq!(st, StatusCode::OK);
    let etag = headers[header::ETAG].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(headers[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("public"));
    // The same answer has the same tag; If-None-Match gets 304 without a body.
    let again = s
        .app
        .client
        .get(s.app.url("/public/v1/plans"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[header::ETAG].to_str().unwrap(), etag);
    assert_eq!(again.text().await.unwrap(), "");
    // A change makes a new tag: publishing the results changes the plan index.
    let plan = &s.plans[0].id;
    let (st, b) = s
        .app
        .post(
            &format!("/api/v1/plans/{plan}/publish-results"),
            &s.reviewer,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let changed = s
        .app
        .client
        .get(s.app.url("/public/v1/plans"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()[header::ETAG].to_str().unwrap(), etag);
    assert_ne!(changed.text().await.unwrap(), body);
    // A browser on another origin may read; the preflight is answered.
    let pre = s
        .app
        .client
        .request(Method::OPTIONS, s.app.url("/public/v1/lists"))
        .header(header::ORIGIN, "https://open.example.org")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), StatusCode::NO_CONTENT);
    assert_eq!(pre.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(pre.headers()[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap()
        .contains("GET"));
    // Not under /public: no CORS.
    let (_, headers, _) = get(&s.app, "/api/v1/health").await;
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    // Errors are envelopes (and not cached).
    let (st, headers, body) = get(&s.app, "/public/v1/lists/nope").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(headers.get(header::ETAG).is_none());
    assert_eq!(json_of(&body)["error"]["code"], "not_found");
}

async fn the_pool_is_public_with_identities_and_a_conflict_commitment(app: TestApp) {
    let (s, _) = round(app).await;
    let plan = &s.plans[0].id;
    let secrets = secrets(&s);
    let (st, _, body) = get(
        &s.app,
        &format!("/public/v1/plans/{plan}/draw/pool?page_size=2"),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_no_secret("pool", &body, &secrets);
    let pool = json_of(&body);
    assert_eq!(pool["meta"]["total_count"], 3);
    assert_eq!(pool["meta"]["total_pages"], 2);
    let (_, _, rec) = get(&s.app, &format!("/public/v1/plans/{plan}/draw/record")).await;
    let rec = json_of(&rec);
    assert_eq!(pool["pool_hash"], rec["pool_hash"]);
    let first = &pool["items"][0];
    assert_eq!(first["position"], 1);
    assert_eq!(first["establishment_id"], rec["pool"][0]["id"]);
    assert!(first["establishment"]["sign_name"].is_string());
    assert!(first["establishment"]["license_no"]
        .as_str()
        .unwrap()
        .starts_with("JY"));
    assert!(first["establishment"].get("contact_phone").is_none());
    // No conflicts were declared: the commitment is the hash of the empty list.
    assert_eq!(
        rec["conflicts_hash"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // The draw page shows the method and the drawn shops, without any personal data.
    let (st, _, html) = get(&s.app, &format!("/public/plans/{plan}/draw")).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert_no_secret("draw page", &html, &secrets);
    for want in [
        "随机种子",
        "seed-2024年第1期",
        "回避名单承诺值",
        "老王面馆",
        "张记包子",
    ] {
        assert!(html.contains(want), "the draw page lacks {want:?}");
    }
}

/// Ids the crawl substitutes into `/public` paths, by the segment before the parameter.
#[derive(Default)]
pub struct CrawlIds {
    pub lists: Vec<String>,
    pub establishments: Vec<String>,
    pub plans: Vec<String>,
    pub photos: Vec<String>,
    /// Sampling announcements (tests/api/announcements.rs; published and drafts).
    pub announcements: Vec<String>,
}

/// Visits every `/public` GET route of the spec with every id given (and each list route with
/// its filters), and fails on any 5xx, on any answer that is not an envelope, 200 or 304, and on
/// any body holding a secret. Returns how many pages were read with 200.
pub async fn crawl(app: &TestApp, ids: &CrawlIds, secrets: &[String]) -> usize {
    let spec: Value = serde_json::from_str(&foodcheck::http::openapi_json()).unwrap();
    let mut paths: Vec<String> = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        if !path.starts_with("/public") || item.get("get").is_none() {
            continue;
        }
        let mut filled = vec![String::new()];
        let mut after = "";
        for segment in path.split('/').skip(1) {
            let values: Vec<String> =
                match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some("variant") => vec!["preview".into(), "thumbnail".into()],
                    Some(_) => match after {
                        "lists" => ids.lists.clone(),
                        "establishments" => ids.establishments.clone(),
                        "plans" => ids.plans.clone(),
                        "photos" => ids.photos.clone(),
                        "announcements" => ids.announcements.clone(),
                        other => panic!("the crawl has no ids for {path} (after /{other}/)"),
                    },
                    None => {
                        after = segment;
                        vec![segment.to_string()]
                    }
                };
            filled = filled
                .iter()
                .flat_map(|p| values.iter().map(move |v| format!("{p}/{v}")))
                .collect();
        }
        for p in filled {
            if p.ends_with("/export") {
                let formats: &[&str] = if after == "lists" {
                    &["csv", "json", "geojson"]
                } else if after == "announcements" {
                    &["csv", "json", "xlsx"]
                } else {
                    &["csv", "json"]
                };
                for f in formats {
                    paths.push(format!("{p}?format={f}"));
                }
                continue;
            }
            paths.push(p.clone());
            if p.ends_with("/entries") {
                for q in [
                    "list_type=red",
                    "list_type=black",
                    "page_size=1&page=2",
                    "town=周良街道",
                    "from=2024-01-01&to=2024-12-31",
                ] {
                    paths.push(format!("{p}?{q}"));
                }
            }
        }
    }
    let mut ok = 0;
    for p in &paths {
        let (status, _, body) = get(app, p).await;
        assert!(matches!(status.as_u16(), 200 | 404), "{p}: {status} {body}");
        if status == StatusCode::NOT_FOUND {
            assert_eq!(json_of(&body)["error"]["code"], "not_found", "{p}: {body}");
            continue;
        }
        ok += 1;
        assert_no_secret(p, &body, secrets);
    }
    ok
}

/// Every export format of a published issue, read back by an independent reader: CSV (BOM,
/// header, one line per entry), XLSX (calamine: 红榜, 黑榜, 说明), JSON, GeoJSON (a
/// FeatureCollection with WGS-84 points) and the LIVES ZIP (its five files); none holds a
/// secret, and an unknown format or unpublished issue is refused.
pub async fn exports_read_back(app: &TestApp, issue: &str, secrets: &[String]) {
    use std::io::Read;
    let (_, _, body) = get(
        app,
        &format!("/public/v1/lists/{issue}/entries?page_size=200"),
    )
    .await;
    let entries = json_of(&body);
    let total = entries["meta"]["total_count"].as_i64().unwrap() as usize;
    let signs: Vec<String> = entries["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sign_name"].as_str().unwrap().to_string())
        .collect();
    let fetch = |format: &'static str| {
        let url = app.url(&format!("/public/v1/lists/{issue}/export?format={format}"));
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
    let csv = fetch("csv").await;
    assert!(csv.starts_with(b"\xEF\xBB\xBF"), "CSV without BOM");
    let text = String::from_utf8(csv[3..].to_vec()).unwrap();
    assert_no_secret("csv", &text, secrets);
    assert_eq!(text.lines().count(), total + 1, "{text}");
    for sign in &signs {
        assert!(text.contains(sign.as_str()), "CSV lacks {sign}");
    }
    let xlsx = fetch("xlsx").await;
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx)).unwrap();
    assert_eq!(
        calamine::Reader::sheet_names(&wb),
        vec!["红榜", "黑榜", "说明"]
    );
    let mut rows = 0;
    for sheet in ["红榜", "黑榜"] {
        let range = calamine::Reader::worksheet_range(&mut wb, sheet).unwrap();
        rows += range.rows().count() - 1;
    }
    assert_eq!(rows, total);
    let json: Value = serde_json::from_slice(&fetch("json").await).unwrap();
    assert_no_secret("json", &json.to_string(), secrets);
    let geo: Value = serde_json::from_slice(&fetch("geojson").await).unwrap();
    assert_eq!(geo["type"], "FeatureCollection");
    let features = geo["features"].as_array().unwrap();
    assert_eq!(features.len(), total);
    for f in features {
        let c = &f["geometry"]["coordinates"];
        let (lng, lat) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
        // The shops are registered in GCJ-02 at 117.29, 39.71; WGS-84 is a few hundred metres off.
        assert!(
            (lng - 117.29).abs() < 0.02 && (lat - 39.71).abs() < 0.02,
            "{c}"
        );
        assert!(lng != 117.29, "a GCJ-02 point was exported as WGS-84");
    }
    let lives = fetch("lives").await;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(lives)).unwrap();
    let mut names: Vec<String> = zip.file_names().map(String::from).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "businesses.csv",
            "feed_info.csv",
            "inspections.csv",
            "legend.csv",
            "violations.csv"
        ]
    );
    let mut businesses = String::new();
    zip.by_name("businesses.csv")
        .unwrap()
        .read_to_string(&mut businesses)
        .unwrap();
    assert_no_secret("businesses.csv", &businesses, secrets);
    assert_eq!(businesses.lines().count(), total + 1, "{businesses}");
    // Each entry's basis inspection, and the failed items of those that failed any: every
    // entry here rests on an approved inspection, and a shop that was not 符合 failed items.
    let read = |zip: &mut zip::ZipArchive<_>, name: &str| {
        let mut s = String::new();
        zip.by_name(name).unwrap().read_to_string(&mut s).unwrap();
        s
    };
    let inspections = read(&mut zip, "inspections.csv");
    assert_eq!(inspections.lines().count(), total + 1, "{inspections}");
    let violations = read(&mut zip, "violations.csv");
    assert_no_secret("violations.csv", &violations, secrets);
    let failing: Vec<&str> = entries["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["result"] != "compliant")
        .map(|e| e["establishment_id"].as_str().unwrap())
        .collect();
    let mut lines = violations.lines();
    assert_eq!(lines.next(), Some("business_id,date,code,description"));
    let listed: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    for shop in &failing {
        assert!(
            listed.contains(shop),
            "no violation of {shop}: {violations}"
        );
    }
    assert!(
        listed.iter().all(|b| failing.contains(b)),
        "a violation of a compliant shop: {violations}"
    );
    // The command line writes the same CSV to a file (from the same database).
    let out = app.dir.path().join("issue.csv");
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_foodcheck"));
    c.env_remove("RUST_LOG");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("FOODCHECK_") {
            c.env_remove(k);
        }
    }
    let run = c
        .args(["--data-dir", &app.dir.path().to_string_lossy()])
        .args(["--database-url", &app.state.config.database_url()])
        .args(["export", "list", issue, "--format", "csv", "--out"])
        .arg(&out)
        .output()
        .await
        .unwrap();
    assert!(
        run.status.success(),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        csv,
        "the CLI's CSV differs from the API's"
    );
    let (st, _, body) = get(app, &format!("/public/v1/lists/{issue}/export?format=pdf")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    let (st, _, _) = get(app, "/public/v1/lists/nope/export?format=csv").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// An establishment's history export in every format it is offered in, read back: one row per
/// published inspection of its public history (same dates and results), failed items as
/// LIVES violations for every inspection that was not 符合, no secret; GeoJSON, an unknown
/// format and an unknown establishment are refused.
pub async fn history_exports_read_back(app: &TestApp, est: &str, secrets: &[String]) {
    use std::io::Read;
    let (st, _, body) = get(app, &format!("/public/v1/establishments/{est}")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let history = json_of(&body);
    let published: Vec<(String, String)> = history["inspections"]
        .as_array()
        .unwrap()
        .iter()
        .rev() // oldest first, as the export writes them
        .map(|i| {
            (
                i["inspected_on"].as_str().unwrap().to_string(),
                i["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(!published.is_empty(), "{history}");
    let fetch = |format: &'static str| {
        let url = app.url(&format!(
            "/public/v1/establishments/{est}/export?format={format}"
        ));
        let client = app.client.clone();
        async move {
            let res = client.get(url).send().await.unwrap();
            let status = res.status();
            (status, res.bytes().await.unwrap().to_vec())
        }
    };
    let label = |r: &str| match r {
        "compliant" => "符合",
        "basically_compliant" => "基本符合",
        _ => "不符合",
    };
    // CSV: BOM, header, then each inspection's date and result.
    let (st, csv) = fetch("csv").await;
    assert_eq!(st, StatusCode::OK);
    assert!(csv.starts_with(b"\xEF\xBB\xBF"));
    let text = String::from_utf8(csv[3..].to_vec()).unwrap();
    assert_no_secret("history csv", &text, secrets);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("主体编号,检查日期,检查结果,检查类型,不符合项编号,不符合项内容")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), published.len(), "{text}");
    for (row, (on, result)) in rows.iter().zip(&published) {
        assert_eq!(row[0], est);
        assert_eq!(row[1], on.as_str());
        assert_eq!(row[2], label(result));
        // A shop that was not 符合 failed items, and they are named.
        assert_eq!(row[4].is_empty(), result == "compliant", "{text}");
    }
    // JSON: meta with the public establishment, items as in the CSV.
    let (st, json) = fetch("json").await;
    assert_eq!(st, StatusCode::OK);
    let json: Value = serde_json::from_slice(&json).unwrap();
    assert_no_secret("history json", &json.to_string(), secrets);
    assert_eq!(json["meta"]["establishment"]["id"], est);
    assert_eq!(json["items"].as_array().unwrap().len(), published.len());
    // XLSX: 检查记录 and 说明.
    let (st, xlsx) = fetch("xlsx").await;
    assert_eq!(st, StatusCode::OK);
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx)).unwrap();
    assert_eq!(calamine::Reader::sheet_names(&wb), vec!["检查记录", "说明"]);
    let range = calamine::Reader::worksheet_range(&mut wb, "检查记录").unwrap();
    assert_eq!(range.rows().count(), published.len() + 1);
    let notes = calamine::Reader::worksheet_range(&mut wb, "说明").unwrap();
    let notes: String = notes.rows().flatten().map(|c| c.to_string()).collect();
    assert_no_secret("history xlsx", &notes, secrets);
    assert!(notes.contains(history["establishment"]["sign_name"].as_str().unwrap()));
    // LIVES: the one business, its inspections, its violations.
    let (st, lives) = fetch("lives").await;
    assert_eq!(st, StatusCode::OK);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(lives)).unwrap();
    let mut read = |name: &str| {
        let mut s = String::new();
        zip.by_name(name).unwrap().read_to_string(&mut s).unwrap();
        s
    };
    assert_eq!(read("businesses.csv").lines().count(), 2);
    assert_eq!(read("inspections.csv").lines().count(), published.len() + 1);
    let failing = published.iter().filter(|p| p.1 != "compliant").count();
    let violations = read("violations.csv");
    assert_no_secret("history violations", &violations, secrets);
    assert!(violations.lines().count() > failing, "{violations}");
    // Refusals.
    let (st, body) = fetch("geojson").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["error"]["code"],
        "invalid_format"
    );
    let unknown = uuid::Uuid::new_v4();
    let res = app
        .client
        .get(app.url(&format!(
            "/public/v1/establishments/{unknown}/export?format=csv"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

/// An issue far larger than the first chunk of a download (4 KiB), in every format: each
/// arrives whole with one row per entry. (The writers once ran inside the runtime's
/// `block_on`, where handing a chunk to the download panicked: the body just ended after the
/// first chunk, with a 200.) The issue is filled with SQL as a draft (an issue built through
/// the use cases holds at most 1,000 entries, each resting on an approved inspection) and
/// published by the store's publish statement.
async fn large_exports_arrive_whole(app: TestApp) {
    use std::io::Read;
    // Three keyset batches (256, then 512, then the rest): every batch boundary and the
    // growth between batches are crossed.
    const N: usize = 800;
    let now = chrono::Utc::now().timestamp_millis();
    let by = app
        .user("big-reviewer", foodcheck::auth::Role::Reviewer)
        .await;
    let issue = uuid::Uuid::new_v4().to_string();
    let mut tx = app.db().begin_write().await.unwrap();
    let period = ("2026-10-01", "2026-10-31");
    fill::issue(tx.conn(), &issue, "第99期", period, &by, now).await;
    for i in 0..N {
        let name = format!("老王烧烤第{i}号店");
        let f = fill::Fill {
            issue: &issue,
            black: i % 2 == 1,
            position: (i / 2 + 1) as i64,
            sign_name: &name,
            town: "钰华街道",
            category: "餐饮服务/小型餐馆",
        };
        fill::entry(tx.conn(), &f, &by, now).await;
    }
    assert!(
        foodcheck::store::lists::publish(tx.conn(), &issue, &by, None, now)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();

    let fetch = |format: &'static str| {
        let url = app.url(&format!("/public/v1/lists/{issue}/export?format={format}"));
        let client = app.client.clone();
        async move {
            let res = client.get(url).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{format}");
            res.bytes().await.unwrap().to_vec()
        }
    };
    let csv = fetch("csv").await;
    assert!(csv.len() > 16 * 1024, "{} bytes", csv.len());
    // A download streams as it is written, never compressed, whatever the client accepts.
    let res = app
        .client
        .get(app.url(&format!("/public/v1/lists/{issue}/export?format=csv")))
        .header(header::ACCEPT_ENCODING, "zstd, br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get(header::CONTENT_ENCODING).is_none());
    assert_eq!(res.bytes().await.unwrap().to_vec(), csv);
    assert_eq!(String::from_utf8(csv).unwrap().lines().count(), N + 1);
    let json: Value = serde_json::from_slice(&fetch("json").await).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), N);
    // In list order across the batches: the black list (odd i) by position, then the red.
    let names: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sign_name"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..N)
        .step_by(2)
        .chain((0..N).step_by(2))
        .map(|i| format!("老王烧烤第{i}号店"))
        .collect();
    assert_eq!(names, expected);
    let geo: Value = serde_json::from_slice(&fetch("geojson").await).unwrap();
    assert_eq!(geo["features"].as_array().unwrap().len(), N);
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(fetch("xlsx").await)).unwrap();
    for sheet in ["红榜", "黑榜"] {
        let range = calamine::Reader::worksheet_range(&mut wb, sheet).unwrap();
        assert_eq!(range.rows().count(), N / 2 + 1, "{sheet}");
    }
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(fetch("lives").await)).unwrap();
    let mut businesses = String::new();
    zip.by_name("businesses.csv")
        .unwrap()
        .read_to_string(&mut businesses)
        .unwrap();
    assert_eq!(businesses.lines().count(), N + 1);

    // While every download permit is taken (slow readers elsewhere), the next download is
    // told to retry, and a freed permit serves it again.
    let held = app
        .state
        .downloads
        .clone()
        .acquire_many_owned(4)
        .await
        .unwrap();
    let url = app.url(&format!("/public/v1/lists/{issue}/export?format=csv"));
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    drop(held);
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap().lines().count(), N + 1);
}

/// Exports read an issue in batches that cross the driver as one JSON value each: every value
/// must come back exactly as stored, whatever it holds (quotes, backslashes, control
/// characters, emoji, formula-like text, NULLs, doubles needing all 17 digits), in list order
/// across batch boundaries.
async fn export_batches_carry_every_value_exactly(app: TestApp) {
    use foodcheck::store::public::{export_bases, export_entries, EntryKey, InListOrder};
    let now = chrono::Utc::now().timestamp_millis();
    let by = app
        .user("odd-reviewer", foodcheck::auth::Role::Reviewer)
        .await;
    let issue = uuid::Uuid::new_v4().to_string();
    let names = [
        "引号\"和\\反斜杠",
        "换行\n制表\t回车\r",
        "控制\u{1}\u{1f}\u{7f}字符",
        "emoji 🍜 and 'single'",
        "=HYPERLINK(\"http://x\")",
        "",
        "老王面馆",
    ];
    let coords: [Option<(f64, f64)>; 7] = [
        // The doubles next to 117.3 and 39.7: only 17 digits tell them apart.
        Some((
            f64::from_bits(117.3f64.to_bits() + 1),
            f64::from_bits(39.7f64.to_bits() - 1),
        )),
        None,
        Some((1e-7, -0.5)),
        Some((
            f64::from_bits(180f64.to_bits() - 1),
            -f64::from_bits(90f64.to_bits() - 3),
        )),
        Some((117.3, 39.7)),
        Some((0.1 + 0.2, 1.0 / 3.0)),
        None,
    ];
    let mut expected = Vec::new();
    let mut tx = app.db().begin_write().await.unwrap();
    fill::issue(
        tx.conn(),
        &issue,
        "第98期",
        ("2026-10-01", "2026-10-31"),
        &by,
        now,
    )
    .await;
    for (i, name) in names.iter().enumerate() {
        let black = i % 2 == 1;
        let f = fill::Fill {
            issue: &issue,
            black,
            position: (i / 2 + 1) as i64,
            sign_name: name,
            town: "钰华街道",
            category: "餐饮服务/小型餐馆",
        };
        let id = fill::entry(tx.conn(), &f, &by, now).await;
        let license = (i % 3 == 0).then(|| format!("JY1120101000{i}\"x"));
        let (lng, lat) = coords[i].unzip();
        sqlx::query("UPDATE list_entries SET license_no = $1, lng = $2, lat = $3, reason = $4 WHERE id = $5")
            .bind(license.clone())
            .bind(lng)
            .bind(lat)
            .bind(format!("理由 {name}"))
            .bind(&id)
            .execute(tx.conn())
            .await
            .unwrap();
        let kind = if black { "rectified" } else { "revoked" };
        let update = (i % 3 != 2).then(|| format!("{kind}: \"{name}\"\\"));
        if let Some(text) = &update {
            sqlx::query(
                "INSERT INTO list_entry_updates (id, entry_id, kind, occurred_on, text, created_by, created_at) \
                 VALUES ($1, $2, $3, '2026-11-02', $4, 'system', $5)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(&id)
            .bind(kind)
            .bind(text)
            .bind(now)
            .execute(tx.conn())
            .await
            .unwrap();
        }
        expected.push((
            black,
            (i / 2 + 1) as i64,
            id,
            name.to_string(),
            license,
            lng,
            lat,
            kind,
            update,
        ));
    }
    assert!(
        foodcheck::store::lists::publish(tx.conn(), &issue, &by, None, now)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    // List order: black before red, then position, then id.
    expected.sort_by(|a, b| (!a.0, a.1, &a.2).cmp(&(!b.0, b.1, &b.2)));

    let mut conn = app.db().acquire().await.unwrap();
    let (mut rows, mut key): (Vec<_>, Option<EntryKey>) = (Vec::new(), None);
    loop {
        let batch = export_entries(&mut conn, &issue, key.as_ref(), 2)
            .await
            .unwrap();
        assert!(batch.len() <= 2);
        key = batch.last().map(InListOrder::key);
        let last = batch.len() < 2;
        rows.extend(batch);
        if last {
            break;
        }
    }
    assert_eq!(rows.len(), expected.len());
    for (r, (black, position, id, name, license, lng, lat, kind, update)) in
        rows.iter().zip(&expected)
    {
        assert_eq!(&r.id, id);
        assert_eq!(r.list_type, if *black { "black" } else { "red" });
        assert_eq!(r.position, *position);
        assert_eq!(&r.sign_name, name);
        assert_eq!(r.reason, format!("理由 {name}"));
        assert_eq!(&r.license_no, license);
        assert_eq!(r.measures.as_deref(), black.then_some("责令改正通知书"));
        assert_eq!(r.inspected_on.as_deref(), Some("2026-10-12"));
        // Bit for bit, not merely close.
        assert_eq!(r.lng.map(f64::to_bits), lng.map(f64::to_bits), "{name:?}");
        assert_eq!(r.lat.map(f64::to_bits), lat.map(f64::to_bits), "{name:?}");
        let (rect, revoked) = if *kind == "rectified" {
            (
                (&r.rectified_text, &r.rectified_on),
                (&r.revoked_text, &r.revoked_on),
            )
        } else {
            (
                (&r.revoked_text, &r.revoked_on),
                (&r.rectified_text, &r.rectified_on),
            )
        };
        assert_eq!(rect.0, update);
        assert_eq!(rect.1.as_deref(), update.as_ref().map(|_| "2026-11-02"));
        assert_eq!((revoked.0, revoked.1), (&None, &None));
    }
    let bases = export_bases(&mut conn, &issue, None, 100).await.unwrap();
    let ids: Vec<&str> = bases.iter().map(|b| b.entry_id.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(ids, want);
    assert!(bases
        .iter()
        .all(|b| b.template_id.is_none() && b.evaluation.is_none()));
    // After the last entry there is nothing.
    let after = expected.last().map(|e| EntryKey {
        list_type: if e.0 { "black" } else { "red" }.into(),
        position: e.1,
        id: e.2.clone(),
    });
    assert!(export_entries(&mut conn, &issue, after.as_ref(), 10)
        .await
        .unwrap()
        .is_empty());
}
