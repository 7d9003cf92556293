//! The permission matrix: every operation of the generated OpenAPI spec, called with no token,
//! with a token of each role and as an inspector of another team, against fixtures made
//! through the API (so every path parameter names a real record). The expected outcome of each
//! cell is data ([`TABLE`]); an operation the spec has and the table lacks fails, as does a row
//! the spec no longer has, so the matrix grows with the API. Beyond the status class: no answer
//! to team B names team A's records, a hidden record is answered exactly as a missing one, and
//! team B's push cannot change team A's inspection.
//!
//! A new operation needs its row in [`TABLE`] and, when it names a new kind of record in its
//! path or needs a query parameter, a fixture in `World::path_value` / `World::call`.

use std::collections::{BTreeMap, BTreeSet};

use foodcheck::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::common::{Kind, TestApp};

// No background workers: an uploaded photo stays as uploaded while the walk runs.
async fn spawn(kind: Kind) -> TestApp {
    TestApp::spawn_with(kind, |c| c.run_workers = false).await
}

both_backends!(@spawn spawn;
    every_operation_answers_each_caller_as_the_table_says,
    the_retest_lab_reads_the_sample_and_no_other_lab_does,
);

/// What a caller must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// No token needed (an operation without `security`): anything but 401/403/404/405/5xx.
    Public,
    /// No token needed, and this walk's fixture has nothing published there: exactly 404
    /// (never 401/403).
    PublicUnpublished,
    /// Let through: anything but 401/403/404/405/5xx (a 4xx for the minimal or invalid body the
    /// walk sends is fine; every path names a record the caller may see).
    Allow,
    /// 401: no token.
    Unauth,
    /// 403: the caller's role may not do this.
    Deny,
    /// 404: a record the caller may not know about (another team's).
    Hidden,
}

const P: Expect = Expect::Public;
const O: Expect = Expect::PublicUnpublished;
const A: Expect = Expect::Allow;
const U: Expect = Expect::Unauth;
const D: Expect = Expect::Deny;
const H: Expect = Expect::Hidden;

impl Expect {
    fn admits(self, status: u16) -> bool {
        match self {
            Expect::Public | Expect::Allow => {
                status < 500 && !matches!(status, 401 | 403 | 404 | 405)
            }
            Expect::PublicUnpublished => status == 404,
            Expect::Unauth => status == 401,
            Expect::Deny => status == 403,
            Expect::Hidden => status == 404,
        }
    }
}

/// The callers, in the table's column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Caller {
    Anonymous,
    Admin,
    Reviewer,
    /// A member of team A, which owns the task, inspection, photo and upload of the fixtures
    /// (and created the upload).
    Inspector,
    Lab,
    /// An inspector of team B.
    OtherTeam,
}

const COLUMNS: [Caller; 6] = [
    Caller::Anonymous,
    Caller::Admin,
    Caller::Reviewer,
    Caller::Inspector,
    Caller::Lab,
    Caller::OtherTeam,
];

/// The order of the calls of one operation: those that may change something come last, so a
/// destructive operation (e.g. DELETE of the fixture upload) has been refused to everyone else
/// before the one caller allowed runs it.
const CALL_ORDER: [Caller; 6] = [
    Caller::Anonymous,
    Caller::Lab,
    Caller::Reviewer,
    Caller::OtherTeam,
    Caller::Inspector,
    Caller::Admin,
];

/// Operations that destroy a fixture or end a session: walked after all others.
const DESTRUCTIVE: &[&str] = &[
    "DELETE /api/v1/uploads/{id}",
    "DELETE /api/v1/conflicts/{id}",
    "POST /api/v1/users/{id}/disable",
    "POST /api/v1/auth/logout",
];

/// The intended policy. Columns: no token, admin, reviewer, inspector of team A (the owner),
/// lab, inspector of team B.
#[rustfmt::skip]
const TABLE: &[(&str, [Expect; 6])] = &[
    //                                                        none admin rev insp lab other
    ("POST /api/v1/auth/login",                                [P, P, P, P, P, P]),
    ("POST /api/v1/auth/logout",                               [P, P, P, P, P, P]),
    ("POST /api/v1/auth/refresh",                              [P, P, P, P, P, P]),
    ("GET /api/v1/me",                                         [U, A, A, A, A, A]),
    ("GET /api/v1/audit",                                      [U, A, D, D, D, D]),
    ("GET /api/v1/audit/consistency",                          [U, A, A, D, D, D]),
    ("GET /api/v1/audit/proof",                                [U, A, A, D, D, D]),
    ("GET /api/v1/audit/records/{type}/{id}",                  [U, A, A, D, D, D]),
    ("GET /api/v1/campaign-form",                              [U, A, A, D, D, D]),
    ("GET /api/v1/campaigns",                                  [U, A, A, D, D, D]),
    ("POST /api/v1/campaigns",                                 [U, A, D, D, D, D]),
    ("GET /api/v1/campaigns/{id}/reports/{unit_id}",           [U, A, A, D, D, D]),
    ("PUT /api/v1/campaigns/{id}/reports/{unit_id}",           [U, A, A, D, D, D]),
    ("GET /api/v1/campaigns/{id}/reports/{unit_id}/form.xlsx", [U, A, A, D, D, D]),
    ("GET /api/v1/campaigns/{id}/reports/{unit_id}/prefill",   [U, A, A, D, D, D]),
    ("GET /api/v1/campaigns/{id}/total",                       [U, A, A, D, D, D]),
    ("GET /api/v1/campaigns/{id}/total/form.xlsx",             [U, A, A, D, D, D]),
    ("GET /api/v1/reporting-units",                            [U, A, A, D, D, D]),
    ("POST /api/v1/reporting-units",                           [U, A, D, D, D, D]),
    ("GET /api/v1/stats",                                      [U, A, A, D, D, D]),
    ("GET /api/v1/stats.xlsx",                                 [U, A, A, D, D, D]),
    ("GET /api/v1/calendar/years",                             [U, A, A, D, D, D]),
    ("PUT /api/v1/calendar/years/{year}",                      [U, A, D, D, D, D]),
    ("GET /api/v1/labs",                                       [U, A, A, A, D, A]),
    ("POST /api/v1/labs",                                      [U, A, D, D, D, D]),
    ("PUT /api/v1/users/{id}/lab",                             [U, A, D, D, D, D]),
    ("GET /api/v1/food-categories",                            [U, A, A, A, D, A]),
    ("POST /api/v1/food-categories/import",                    [U, A, D, D, D, D]),
    ("POST /api/v1/samples",                                   [U, D, D, A, D, A]),
    ("GET /api/v1/samples/{id}",                               [U, A, A, A, A, H]),
    ("POST /api/v1/samples/{id}/custody",                      [U, D, D, A, A, H]),
    ("POST /api/v1/samples/{id}/facts",                        [U, A, A, D, A, D]),
    ("GET /api/v1/samples/{id}/attachments",                   [U, A, A, A, A, H]),
    ("POST /api/v1/samples/{id}/attachments",                  [U, D, D, A, A, H]),
    ("GET /api/v1/samples/{id}/attachments/{aid}/content",     [U, A, A, A, A, H]),
    ("PUT /api/v1/samples/{id}/result",                        [U, D, D, D, A, D]),
    ("POST /api/v1/samples/{id}/result/items-file",            [U, D, D, D, A, D]),
    ("GET /api/v1/lab/samples",                                [U, D, D, D, A, D]),
    ("GET /api/v1/announcements",                              [U, A, A, D, D, D]),
    ("POST /api/v1/announcements",                             [U, A, A, D, D, D]),
    ("GET /api/v1/announcements/{id}",                         [U, A, A, D, D, D]),
    ("POST /api/v1/announcements/{id}/exclusions",             [U, A, A, D, D, D]),
    ("DELETE /api/v1/announcements/{id}/exclusions/{sample_id}", [U, A, A, D, D, D]),
    ("POST /api/v1/announcements/{id}/publish",                [U, A, A, D, D, D]),
    ("GET /api/v1/sampling/deadlines",                         [U, A, A, D, D, D]),
    ("GET /api/v1/sampling-plans",                             [U, A, A, D, D, D]),
    ("POST /api/v1/sampling-plans",                            [U, A, A, D, D, D]),
    ("GET /api/v1/sampling-plans/{id}",                        [U, A, A, D, D, D]),
    ("POST /api/v1/sampling-plans/{id}/draw",                  [U, A, A, D, D, D]),
    ("GET /api/v1/sampling-tasks",                             [U, A, A, D, D, D]),
    ("GET /api/v1/sampling-tasks/{id}",                        [U, A, A, A, D, H]),
    ("PUT /api/v1/sampling-tasks/{id}/team",                   [U, A, A, D, D, D]),
    ("GET /api/v1/me/sampling-tasks",                          [U, D, D, A, D, A]),
    ("GET /api/v1/checklists",                                 [U, A, A, A, D, A]),
    ("POST /api/v1/checklists",                                [U, A, D, D, D, D]),
    ("GET /api/v1/checklists/{id}",                            [U, A, A, A, D, A]),
    ("POST /api/v1/checklists/{id}/versions",                  [U, A, D, D, D, D]),
    ("GET /api/v1/checklists/{id}/versions/{version}",         [U, A, A, A, D, A]),
    ("PUT /api/v1/checklists/{id}/versions/{version}",         [U, A, D, D, D, D]),
    ("POST /api/v1/checklists/{id}/versions/{version}/evaluate", [U, A, A, A, D, A]),
    ("POST /api/v1/checklists/{id}/versions/{version}/publish", [U, A, D, D, D, D]),
    ("GET /api/v1/conflicts",                                  [U, A, D, D, D, D]),
    ("POST /api/v1/conflicts",                                 [U, A, D, D, D, D]),
    ("DELETE /api/v1/conflicts/{id}",                          [U, A, D, D, D, D]),
    ("GET /api/v1/establishments",                             [U, A, A, D, D, D]),
    ("POST /api/v1/establishments",                            [U, A, D, D, D, D]),
    ("POST /api/v1/establishments/import",                     [U, A, D, D, D, D]),
    ("GET /api/v1/establishments/import-template.xlsx",        [U, A, D, D, D, D]),
    ("GET /api/v1/establishments/{id}",                        [U, A, A, D, D, D]),
    ("PUT /api/v1/establishments/{id}",                        [U, A, D, D, D, D]),
    ("GET /api/v1/followups/{id}",                             [U, A, A, A, D, H]),
    ("POST /api/v1/followups/{id}/recheck",                    [U, A, A, D, D, D]),
    ("GET /api/v1/lists",                                      [U, A, A, D, D, D]),
    ("POST /api/v1/lists",                                     [U, A, A, D, D, D]),
    ("GET /api/v1/lists/{id}",                                 [U, A, A, D, D, D]),
    ("GET /api/v1/lists/{id}/candidates",                      [U, A, A, D, D, D]),
    ("POST /api/v1/lists/{id}/entries",                        [U, A, A, D, D, D]),
    ("PATCH /api/v1/lists/{id}/entries/{entry_id}",            [U, A, A, D, D, D]),
    ("DELETE /api/v1/lists/{id}/entries/{entry_id}",           [U, A, A, D, D, D]),
    ("POST /api/v1/lists/{id}/publish",                        [U, A, A, D, D, D]),
    ("POST /api/v1/lists/{id}/revisions",                      [U, A, A, D, D, D]),
    ("POST /api/v1/lists/entries/{entry_id}/rectification",    [U, A, A, D, D, D]),
    ("POST /api/v1/lists/entries/{entry_id}/revocation",       [U, A, A, D, D, D]),
    ("POST /api/v1/lists/photos/{photo_id}/takedown",          [U, A, A, D, D, D]),
    ("POST /api/v1/plans/{id}/publish-results",                [U, A, A, D, D, D]),
    ("GET /api/v1/inspections",                                [U, A, A, D, D, D]),
    ("POST /api/v1/inspections/{id}/review",                   [U, A, A, D, D, D]),
    ("GET /api/v1/inspections/{id}",                           [U, A, A, A, D, H]),
    ("GET /api/v1/inspections/{id}/record",                    [U, A, A, D, D, D]),
    ("GET /api/v1/review/counts",                              [U, A, A, D, D, D]),
    ("GET /api/v1/review/queues/{queue}",                      [U, A, A, D, D, D]),
    ("GET /api/v1/photos/{id}/{variant}",                      [U, A, A, A, D, H]),
    ("GET /api/v1/plans",                                      [U, A, A, D, D, D]),
    ("POST /api/v1/plans",                                     [U, A, D, D, D, D]),
    ("GET /api/v1/plans/{id}",                                 [U, A, A, D, D, D]),
    ("POST /api/v1/plans/{id}/draw",                           [U, A, D, D, D, D]),
    ("GET /api/v1/plans/{id}/draw/record",                     [U, A, D, D, D, D]),
    ("POST /api/v1/plans/{id}/draw/verify",                    [U, A, A, D, D, D]),
    ("GET /api/v1/sync",                                       [U, D, D, A, D, A]),
    ("POST /api/v1/sync",                                      [U, D, D, A, D, A]),
    ("GET /api/v1/tasks",                                      [U, A, A, A, D, A]),
    ("GET /api/v1/tasks/{id}",                                 [U, A, A, A, D, H]),
    ("POST /api/v1/tasks/{id}/cancel",                         [U, A, D, D, D, D]),
    ("POST /api/v1/tasks/{id}/start",                          [U, D, D, A, D, H]),
    ("PUT /api/v1/tasks/{id}/team",                            [U, A, A, D, D, D]),
    ("POST /api/v1/uploads",                                   [U, D, D, A, D, H]),
    ("OPTIONS /api/v1/uploads",                                [P, P, P, P, P, P]),
    ("HEAD /api/v1/uploads/{id}",                              [U, D, D, A, H, H]),
    ("PATCH /api/v1/uploads/{id}",                             [U, D, D, A, H, H]),
    ("DELETE /api/v1/uploads/{id}",                            [U, D, D, A, H, H]),
    ("GET /api/v1/users",                                      [U, A, D, D, D, D]),
    ("POST /api/v1/users",                                     [U, A, D, D, D, D]),
    ("POST /api/v1/users/{id}/disable",                        [U, A, D, D, D, D]),
    ("POST /api/v1/users/{id}/enable",                         [U, A, D, D, D, D]),
    ("GET /healthz",                                           [P, P, P, P, P, P]),
    ("GET /readyz",                                            [P, P, P, P, P, P]),
    ("GET /public/v1/audit/checkpoint",                        [P, P, P, P, P, P]),
    ("GET /public/v1/audit/key",                               [P, P, P, P, P, P]),
    ("GET /public/v1/plans/{id}/draw",                         [P, P, P, P, P, P]),
    ("GET /public/v1/plans/{id}/draw/pool",                    [P, P, P, P, P, P]),
    // After the walk's POST …/publish-results (the spec's order puts /api before /public).
    ("GET /public/v1/plans/{id}/results",                      [P, P, P, P, P, P]),
    ("GET /public/v1/plans",                                   [P, P, P, P, P, P]),
    ("GET /public/v1/lists",                                   [P, P, P, P, P, P]),
    ("GET /public/v1/lists/{id}",                              [P, P, P, P, P, P]),
    ("GET /public/v1/lists/{id}/entries",                      [P, P, P, P, P, P]),
    ("GET /public/v1/lists/{id}/export",                       [P, P, P, P, P, P]),
    ("GET /public/v1/establishments/{id}/export",              [P, P, P, P, P, P]),
    ("GET /public/v1/entries",                                 [P, P, P, P, P, P]),
    ("GET /public/v1/establishments/{id}",                     [P, P, P, P, P, P]),
    ("GET /public/v1/photos/{id}/{variant}",                   [O, O, O, O, O, O]),
    ("GET /public/lists",                                      [P, P, P, P, P, P]),
    ("GET /public/v1/announcements",                           [P, P, P, P, P, P]),
    ("GET /public/v1/announcements/{id}",                      [P, P, P, P, P, P]),
    ("GET /public/v1/announcements/{id}/export",               [P, P, P, P, P, P]),
    ("GET /public/announcements",                              [P, P, P, P, P, P]),
    ("GET /public/announcements/{id}",                         [P, P, P, P, P, P]),
    ("GET /public/lists/{id}",                                 [P, P, P, P, P, P]),
    ("GET /public/establishments/{id}",                        [P, P, P, P, P, P]),
    ("GET /public/plans/{id}/draw",                            [P, P, P, P, P, P]),
    ("GET /public/v1/plans/{id}/draw/record",                  [P, P, P, P, P, P]),
];

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One operation of the spec.
struct Operation {
    method: String,
    path: String,
    secured: bool,
    /// `(name, in, required)` of each parameter.
    params: Vec<(String, String, bool)>,
    /// Content types of the request body.
    body_types: Vec<String>,
}

impl Operation {
    fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

fn spec_operations() -> Vec<Operation> {
    let spec: Value = serde_json::from_str(&foodcheck::http::openapi_json()).unwrap();
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in HTTP_METHODS {
            let Some(op) = item.get(method) else { continue };
            let params = op["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap_or_default().to_string(),
                        p["in"].as_str().unwrap_or_default().to_string(),
                        p["required"].as_bool().unwrap_or(false),
                    )
                })
                .collect();
            ops.push(Operation {
                method: method.to_uppercase(),
                path: path.clone(),
                secured: op["security"].as_array().is_some_and(|s| !s.is_empty()),
                params,
                body_types: op["requestBody"]["content"]
                    .as_object()
                    .map(|c| c.keys().cloned().collect())
                    .unwrap_or_default(),
            });
        }
    }
    ops
}

/// The records the walk names, made through the API.
struct World {
    app: TestApp,
    tokens: BTreeMap<Caller, String>,
    template: String,
    plan: String,
    establishment: String,
    /// Team A's task, inspection and photo records.
    task: String,
    inspection: String,
    /// Uploaded in full: its original can be downloaded.
    photo: String,
    /// An open upload (of a second photo record) by the team A inspector.
    upload: String,
    upload_photo: String,
    upload_bytes: Vec<u8>,
    conflict: String,
    /// A follow-up of team A's inspection (team A is its recheck team).
    followup: String,
    /// A published list issue and its entry (every write on them is refused as published).
    list_issue: String,
    list_entry: String,
    /// An account to disable and enable.
    user: String,
    cursor: i64,
    /// A campaign and a reporting unit (3·15 form).
    campaign: String,
    unit: String,
    /// Team A's sample (insp-1 and its teammate sampled it), sent to the `lab` account's lab.
    sample: String,
    /// A published sampling announcement holding that sample (every write is refused as
    /// published).
    announcement: String,
    /// A drawn sampling plan and its task, assigned to team A.
    sampling_plan: String,
    sampling_task: String,
    /// Its site photo, declared and uploaded by the team A inspector.
    attachment: String,
}

fn hex_sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A JPEG-looking file (JPEG signature, then deterministic noise).
fn jpeg(n: usize, seed: u8) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
    v.extend((0..n - 4).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    v
}

/// An id no fixture has.
const GHOST: &str = "00000000-0000-4000-8000-00000000dead";

/// The `error.message` of an envelope.
fn message(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Sends one request; returns the status, the error code of an envelope (if any) and the body.
async fn send(
    app: &TestApp,
    method: &str,
    path_and_query: &str,
    token: Option<&str>,
    headers: &[(&str, String)],
    body: Option<(&str, Vec<u8>)>,
) -> (u16, String, String) {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.client.request(method, app.url(path_and_query));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    if let Some((content_type, bytes)) = body {
        req = req.header("content-type", content_type).body(bytes);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    // Lossy: an XLSX or a photo is not text, and only ids are looked for in it.
    let bytes = res.bytes().await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let code = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, code, text)
}

async fn created(app: &TestApp, path: &str, token: &str, body: Value) -> Value {
    let (s, v) = app.post(path, token, body).await;
    assert_eq!(s, StatusCode::CREATED, "POST {path}: {v}");
    v
}

async fn login(app: &TestApp, username: &str) -> String {
    app.login_full(username, &format!("{username}-phone")).await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn tus_create(app: &TestApp, token: &str, photo: &str, bytes: &[u8]) -> reqwest::Response {
    let meta = format!("photo_id {},sha256 {}", b64(photo), b64(&hex_sha256(bytes)));
    app.client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", bytes.len().to_string())
        .header("upload-metadata", meta)
        .send()
        .await
        .unwrap()
}

async fn world(app: TestApp) -> World {
    // The first admin comes from the store (as the CLI makes it); every other account through
    // the API.
    app.user("admin", Role::Admin).await;
    let admin = login(&app, "admin").await;
    let mut user_ids = BTreeMap::new();
    for (name, role) in [
        ("reviewer", "reviewer"),
        ("lab", "lab"),
        ("insp-1", "inspector"),
        ("insp-2", "inspector"),
        ("insp-3", "inspector"),
        ("insp-4", "inspector"),
        ("throwaway", "lab"),
    ] {
        let u = created(
            &app,
            "/api/v1/users",
            &admin,
            json!({"username": name, "password": format!("password-{name}"), "role": role,
                   "name": format!("Name of {name}"), "badge_no": (role == "inspector").then(|| format!("TJ-{name}"))}),
        )
        .await;
        user_ids.insert(name, u["id"].as_str().unwrap().to_string());
    }

    // A checklist template of our own, version 1 published.
    let (s, v) = app
        .get(
            "/api/v1/checklists/00000000-0000-4000-8000-000000002016/versions/1",
            &admin,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let t = created(
        &app,
        "/api/v1/checklists",
        &admin,
        json!({"code": "matrix", "name": "Matrix", "content": v["content"]}),
    )
    .await;
    let template = t["template"]["id"]
        .as_str()
        .or(t["id"].as_str())
        .unwrap()
        .to_string();
    let (s, v) = app
        .post(
            &format!("/api/v1/checklists/{template}/versions/1/publish"),
            &admin,
            json!(null),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "publish: {v}");

    // Two establishments and a plan drawn over both with two teams of two.
    let mut establishments = Vec::new();
    for i in 1..=2 {
        let e = created(
            &app,
            "/api/v1/establishments",
            &admin,
            json!({"sign_name": format!("矩阵店{i}"), "licensed_name": format!("矩阵餐饮有限公司{i}"),
                   "license_no": format!("JY2120115000000{i}"), "category": "small_restaurant",
                   "address": format!("测试路{i}号"), "town": "周良街道", "risk_grade": "C"}),
        )
        .await;
        establishments.push(e["id"].as_str().unwrap().to_string());
    }
    let inspectors: Vec<&String> = (1..=4)
        .map(|i| &user_ids[format!("insp-{i}").as_str()])
        .collect();
    let plan = created(
        &app,
        "/api/v1/plans",
        &admin,
        json!({"name": "matrix", "round_title": "r", "theme": "t", "period_start": "2024-03-01",
               "period_end": "2024-03-31", "due_date": "2099-01-01", "template_id": template,
               "template_version": 1, "quotas": {"explicit": {"C": 2}}, "inspector_ids": inspectors,
               "team_size": 2}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    created(
        &app,
        &format!("/api/v1/plans/{plan}/draw"),
        &admin,
        json!({"seed": "matrix"}),
    )
    .await;

    // Team A: the team of insp-1's task; team B: the other task's.
    let (s, tasks) = app
        .get(&format!("/api/v1/tasks?plan_id={plan}"), &admin)
        .await;
    assert_eq!(s, StatusCode::OK, "{tasks}");
    let tasks = tasks["items"].as_array().unwrap().clone();
    assert_eq!(tasks.len(), 2, "two tasks: {tasks:?}");
    let members = |t: &Value| -> Vec<String> {
        t["team"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["user_id"].as_str().unwrap().to_string())
            .collect()
    };
    let insp_1 = &user_ids["insp-1"];
    let (task_a, task_b) = if members(&tasks[0]).contains(insp_1) {
        (&tasks[0], &tasks[1])
    } else {
        (&tasks[1], &tasks[0])
    };
    assert!(members(task_a).contains(insp_1));
    let other_id = members(task_b)[0].clone();
    assert!(
        !members(task_a).contains(&other_id),
        "the teams are disjoint"
    );
    let other_name = user_ids
        .iter()
        .find(|(_, id)| **id == other_id)
        .map(|(n, _)| *n)
        .unwrap();
    let task = task_a["id"].as_str().unwrap().to_string();
    let establishment = task_a["establishment"]["id"].as_str().unwrap().to_string();

    let inspector = login(&app, "insp-1").await;
    let other = login(&app, other_name).await;

    // Team A's inspection with two photo records, pushed by sync.
    let (s, pulled) = app
        .get(
            "/api/v1/sync?last_pulled_at=null&schema_version=2",
            &inspector,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{pulled}");
    let cursor = pulled["timestamp"].as_i64().unwrap();
    let inspection = Uuid::new_v4().to_string();
    let photo = Uuid::new_v4().to_string();
    let upload_photo = Uuid::new_v4().to_string();
    let photo_bytes = jpeg(5_000, 1);
    let upload_bytes = jpeg(6_000, 2);
    let record = |id: &str, bytes: &[u8]| {
        json!({"id": id, "inspection_id": inspection, "item_code": null, "sha256": hex_sha256(bytes),
               "byte_size": bytes.len(), "taken_at": 1_710_000_000_000i64})
    };
    let (s, r) = app
        .post(
            &format!("/api/v1/sync?last_pulled_at={cursor}"),
            &inspector,
            json!({"changes": {
                "inspections": {"created": [{"id": inspection, "task_id": task, "establishment_id": establishment,
                    "started_at": 1_710_000_000_000i64, "team": "[]", "representative_signed": false,
                    "representative_refused": false, "submitted": false}]},
                "photos": {"created": [record(&photo, &photo_bytes), record(&upload_photo, &upload_bytes)]}}}),
        )
        .await;
    assert_eq!((s, r), (StatusCode::OK, json!({})));

    // The first photo's bytes in full; the second's upload left open.
    let res = tus_create(&app, &inspector, &photo, &photo_bytes).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let res = app
        .client
        .patch(app.url(&location))
        .bearer_auth(&inspector)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(photo_bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = tus_create(&app, &inspector, &upload_photo, &upload_bytes).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let upload = res.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();

    let conflict = created(
        &app,
        "/api/v1/conflicts",
        &admin,
        json!({"inspector_id": other_id, "establishment_id": establishment, "reason": "亲属经营"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // A follow-up of team A's inspection, stored directly (the walk only needs the record; an
    // approval that opens one is tested in tests/api/followup.rs).
    let followup = Uuid::new_v4().to_string();
    let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    let mut conn = app.db().acquire().await.unwrap();
    let (plan_of_task,): (String,) = sqlx::query_as("SELECT plan_id FROM tasks WHERE id = $1")
        .bind(&task)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    foodcheck::store::followup::insert(
        &mut conn,
        &foodcheck::followup::Followup {
            id: followup.clone(),
            inspection_id: Some(inspection.clone()),
            sample_id: None,
            establishment_id: establishment.clone(),
            plan_id: Some(plan_of_task),
            origin_result: Some(foodcheck::checklist::rule::ResultCode::BasicallyCompliant),
            state: foodcheck::followup::FollowupState::Open,
            order_text: None,
            ordered_on: day,
            period_working_days: Some(10),
            period_calendar_days: None,
            deadline: day,
            failed_items: vec!["3.1".into()],
            stop_operating: false,
            case_opened: false,
            recheck_team: members(task_a),
            recheck_task_id: None,
            recheck_inspection_id: None,
            outcome_result: None,
            closed_at: None,
            created_by: "system".into(),
            created_at: 0,
            updated_at: 0,
        },
    )
    .await
    .unwrap();
    // A published list issue with one entry, stored directly as a draft and published (the walk only needs the
    // records; composing and publishing one is tested in tests/api/lists.rs).
    let (list_issue, list_entry) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let admin_id: (String,) = sqlx::query_as("SELECT id FROM users WHERE role = 'admin' LIMIT 1")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    foodcheck::store::lists::insert_issue(
        &mut conn,
        &foodcheck::store::lists::IssueRow {
            id: list_issue.clone(),
            issue_no: "2026年第1期".into(),
            revision: 1,
            revises_id: None,
            revision_note: None,
            title: "红黑榜".into(),
            theme: "餐饮具清洗消毒".into(),
            district: "武清区".into(),
            period_start: "2026-01-01".into(),
            period_end: "2026-12-31".into(),
            criteria: "{}".into(),
            state: "draft".into(),
            published_at: None,
            published_by: None,
            checkpoint: None,
            superseded_by: None,
            created_by: admin_id.0.clone(),
            created_at: 1,
            updated_at: 1,
        },
    )
    .await
    .unwrap();
    foodcheck::store::lists::insert_entry(
        &mut conn,
        &foodcheck::store::lists::EntryRow {
            id: list_entry.clone(),
            issue_id: list_issue.clone(),
            list_type: "black".into(),
            position: 1,
            establishment_id: establishment.clone(),
            inspection_id: Some(inspection.clone()),
            sample_id: None,
            inspected_on: Some("2026-03-02".into()),
            result: Some("basically_compliant".into()),
            sign_name: "店".into(),
            licensed_name: "店".into(),
            license_no: None,
            address: "街".into(),
            town: "镇".into(),
            category: "small_restaurant".into(),
            lng: None,
            lat: None,
            reason: "理由".into(),
            measures: Some("措施".into()),
            created_by: admin_id.0.clone(),
            created_at: 1,
            updated_at: 1,
        },
    )
    .await
    .unwrap();
    // Published after its entry: a published issue gains none (migration 0022).
    assert!(
        foodcheck::store::lists::publish(&mut conn, &list_issue, &admin_id.0, None, 1)
            .await
            .unwrap()
    );
    drop(conn);

    let mut tokens = BTreeMap::new();
    tokens.insert(Caller::Admin, admin);
    tokens.insert(Caller::Reviewer, login(&app, "reviewer").await);
    tokens.insert(Caller::Lab, login(&app, "lab").await);
    tokens.insert(Caller::Inspector, inspector);
    tokens.insert(Caller::OtherTeam, other);
    let user = user_ids["throwaway"].clone();
    let campaign = created(
        &app,
        "/api/v1/campaigns",
        &tokens[&Caller::Admin],
        json!({"name": "3·15", "period_start": "2026-03-01", "period_end": "2026-03-31"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let unit = created(
        &app,
        "/api/v1/reporting-units",
        &tokens[&Caller::Admin],
        json!({"name": "科", "kind": "section"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (sample, lab) = sample_fixture(
        &app,
        &tokens,
        &user_ids["lab"],
        &members(task_a),
        &establishment,
    )
    .await;
    let announcement = announcement_fixture(&app, &sample).await;
    let (sampling_plan, sampling_task) =
        sampling_fixture(&app, &tokens, &lab, &members(task_a)).await;
    let attachment = attachment_fixture(&app, &tokens[&Caller::Inspector], &sample).await;
    World {
        app,
        tokens,
        template,
        plan,
        establishment,
        task,
        inspection,
        photo,
        upload,
        upload_photo,
        upload_bytes,
        conflict,
        followup,
        list_issue,
        list_entry,
        user,
        cursor,
        campaign,
        unit,
        sample,
        announcement,
        sampling_plan,
        sampling_task,
        attachment,
    }
}

/// A published announcement with the sample in its 合格 table, stored directly (composing and
/// publishing one is tested in tests/api/announcements.rs).
async fn announcement_fixture(app: &TestApp, sample: &str) -> String {
    use foodcheck::public::announcement::PublicSample;
    use foodcheck::store::announcements as a;
    let mut conn = app.db().acquire().await.unwrap();
    let admin_id: (String,) = sqlx::query_as("SELECT id FROM users WHERE role = 'admin' LIMIT 1")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let id = Uuid::new_v4().to_string();
    a::insert(
        &mut conn,
        &a::AnnouncementRow {
            id: id.clone(),
            announcement_no: "2026年第1期".into(),
            title: "抽检信息公告".into(),
            period_start: "2026-01-01".into(),
            period_end: "2026-12-31".into(),
            stage: None,
            category_code: None,
            state: "draft".into(),
            qualified_count: 0,
            unqualified_count: 0,
            published_at: None,
            published_by: None,
            checkpoint: None,
            created_by: admin_id.0.clone(),
            created_at: 1,
            updated_at: 1,
        },
    )
    .await
    .unwrap();
    let row = PublicSample {
        position: 1,
        verdict: foodcheck::sampling::results::Verdict::Qualified,
        sample_no: "FC-1".into(),
        premises_name: "店".into(),
        premises_licensed_name: "店".into(),
        premises_address: "街".into(),
        town: "镇".into(),
        sample_name: "小麦粉".into(),
        brand: "/".into(),
        specification: "/".into(),
        production_date_or_batch: "/".into(),
        producer_name: "/".into(),
        producer_address: "/".into(),
        category_code: "01".into(),
        category_name: "粮食加工品".into(),
        stage: foodcheck::sampling::form::Stage::Circulation,
        lab_name: "检验中心".into(),
        report_no: "R-1".into(),
        failed_items: vec![],
    };
    a::insert_rows(&mut conn, &id, &[(sample.to_string(), row)])
        .await
        .unwrap();
    assert!(a::publish(&mut conn, &id, &admin_id.0, None, (1, 0), 1)
        .await
        .unwrap());
    id
}

/// A sampling plan drawn with one task, whose team is team A.
async fn sampling_fixture(
    app: &TestApp,
    tokens: &BTreeMap<Caller, String>,
    lab: &str,
    team: &[String],
) -> (String, String) {
    let admin = &tokens[&Caller::Admin];
    // Task due dates are counted from today on the working-day calendar.
    crate::common::cover_this_and_next_year(app, admin).await;
    let plan = created(
        app,
        "/api/v1/sampling-plans",
        admin,
        json!({"title": "矩阵抽检", "purpose": "supervision", "stage": "circulation",
               "period_start": "2026-01-01", "period_end": "2099-12-31", "lab_id": lab,
               "batches": [{"category_code": "010101", "batches": 1}],
               "quotas": {"weighted": {"total": 1, "weights": {"A": 1, "B": 1, "C": 1, "D": 1}}}}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let drawn = created(
        app,
        &format!("/api/v1/sampling-plans/{plan}/draw"),
        admin,
        json!({"seed": "matrix"}),
    )
    .await;
    let task = drawn["tasks"][0]["id"].as_str().unwrap().to_string();
    let (s, v) = app
        .put(
            &format!("/api/v1/sampling-tasks/{task}/team"),
            admin,
            json!({"sampler_ids": team}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    (plan, task)
}

/// A site photo of `sample`, declared and uploaded (creation-with-upload) by a sampler.
async fn attachment_fixture(app: &TestApp, token: &str, sample: &str) -> String {
    let id = Uuid::new_v4().to_string();
    let bytes = jpeg(3000, 7);
    created(
        app,
        &format!("/api/v1/samples/{sample}/attachments"),
        token,
        json!({"id": id, "kind": "site", "sha256": hex_sha256(&bytes), "byte_size": bytes.len(),
               "taken_at": 1_772_416_800_000i64}),
    )
    .await;
    let meta = format!(
        "attachment_id {},sha256 {}",
        b64(&id),
        b64(&hex_sha256(&bytes))
    );
    let res = app
        .client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", bytes.len().to_string())
        .header("upload-metadata", meta)
        .header("content-type", "application/offset+octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.headers()["upload-offset"],
        bytes.len().to_string().as_str()
    );
    id
}

/// A lab for the `lab` account, the category tree, and team A's sample sent to that lab.
async fn sample_fixture(
    app: &TestApp,
    tokens: &BTreeMap<Caller, String>,
    lab_user: &str,
    team: &[String],
    establishment: &str,
) -> (String, String) {
    let admin = &tokens[&Caller::Admin];
    let lab = created(
        app,
        "/api/v1/labs",
        admin,
        json!({"name": "检验中心", "code": "LAB"}),
    )
    .await;
    let (s, v) = app
        .put(
            &format!("/api/v1/users/{lab_user}/lab"),
            admin,
            json!({"lab_id": lab["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _, v) = send(
        app,
        "POST",
        "/api/v1/food-categories/import",
        Some(admin),
        &[],
        Some(("application/octet-stream", "code,level,parent_code,name\n01,1,,粮食加工品\n0101,2,01,小麦粉\n010101,3,0101,通用小麦粉\n".as_bytes().to_vec())),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let id = Uuid::new_v4().to_string();
    let mut form = json!({
        "task_source": "矩阵", "purpose": "supervision", "stage": "circulation",
        "food_category_1": "粮食加工品", "food_category_2": "小麦粉", "food_category_3": "通用小麦粉",
        "food_category_4": "/", "premises_name": "矩阵店", "premises_address": "测试路",
        "premises_credit_code": "/", "premises_licence_no": "/", "premises_legal_representative": "/",
        "premises_contact": "/", "producer_name": "/", "producer_address": "/", "producer_sc_licence": "/",
        "sample_name": "小麦粉", "sample_brand": "/", "sample_specification": "/",
        "sample_production_date": "/", "sample_batch": "/", "sample_shelf_life": "/",
        "sample_standard": "/", "sample_price": "/"});
    // Two halves: one json! of the whole form passes the macro recursion limit.
    let rest = json!({"sample_imported": false, "sample_storage": "常温",
        "sampling_method": "non_aseptic", "sampling_base": 10.0, "sampling_base_unit": "袋",
        "sample_quantity": 2.0, "sample_quantity_unit": "袋", "backup_quantity": 1.0,
        "backup_quantity_unit": "袋", "sampled_at": 1_772_416_800_000i64, "lng": 117.3, "lat": 39.7,
        "crs": "wgs84", "premises_opinion": "no_objection"});
    form.as_object_mut()
        .unwrap()
        .extend(rest.as_object().unwrap().clone());
    form["sampler_1"] = json!(team[0]);
    form["sampler_2"] = json!(team[1]);
    created(
        app,
        "/api/v1/samples",
        &tokens[&Caller::Inspector],
        json!({"id": id, "establishment_id": establishment, "lab_id": lab["id"], "category_code": "010101", "form": form}),
    )
    .await;
    (id, lab["id"].as_str().unwrap().to_string())
}

impl World {
    /// Ids of team A's records, which no answer to team B may carry.
    fn team_a_records(&self) -> [(&'static str, &str); 8] {
        [
            ("sample", &self.sample),
            ("sampling task", &self.sampling_task),
            ("task", &self.task),
            ("follow-up", &self.followup),
            ("inspection", &self.inspection),
            ("photo record", &self.photo),
            ("photo record", &self.upload_photo),
            ("upload", &self.upload),
        ]
    }

    /// Team B pushes an update of team A's inspection: it must be refused (409, or listed as
    /// rejected) and the stored inspection must stay as it was. `Some(problem)` otherwise.
    async fn other_team_push_changes_nothing(&self) -> Option<String> {
        let admin = &self.tokens[&Caller::Admin];
        let other = &self.tokens[&Caller::OtherTeam];
        let listed = format!("/api/v1/inspections?task_id={}", self.task);
        let (s, before) = self.app.get(&listed, admin).await;
        assert_eq!(s, StatusCode::OK, "{before}");
        let (s, pulled) = self
            .app
            .get("/api/v1/sync?last_pulled_at=null&schema_version=2", other)
            .await;
        assert_eq!(s, StatusCode::OK, "{pulled}");
        let (status, answer) = self
            .app
            .post(
                &format!("/api/v1/sync?last_pulled_at={}", pulled["timestamp"]),
                other,
                json!({"changes": {"inspections": {"updated": [{"id": self.inspection, "task_id": self.task,
                    "establishment_id": self.establishment, "started_at": 1_710_000_000_000i64, "team": "[]",
                    "representative_name": "乙队改写", "representative_signed": true,
                    "representative_refused": false, "submitted": false}]}}}),
            )
            .await;
        let (_, after) = self.app.get(&listed, admin).await;
        let refused = status == StatusCode::CONFLICT
            || (status == StatusCode::OK
                && answer["experimentalRejectedIds"]["inspections"]
                    .as_array()
                    .is_some_and(|ids| ids.contains(&json!(self.inspection))));
        (!refused || before != after).then(|| {
            format!(
                "POST /api/v1/sync as OtherTeam: an update of team A's inspection got {status} \
                 {answer}; stored before {before}, after {after}"
            )
        })
    }
}

/// A request for one operation, the same for every caller but the token.
struct Call {
    path_and_query: String,
    headers: Vec<(&'static str, String)>,
    body: Option<(&'static str, Vec<u8>)>,
}

impl World {
    /// The value of the path parameter `name` that follows the literal segment `after`; with
    /// `ghost`, an id that names nothing instead of a record's.
    fn path_value(&self, after: &str, name: &str, ghost: bool) -> Option<String> {
        if ghost && name == "id" {
            return Some(GHOST.into());
        }
        Some(match (after, name) {
            ("checklists", "id") => self.template.clone(),
            ("campaigns", "id") => self.campaign.clone(),
            ("reports", "unit_id") => self.unit.clone(),
            ("versions", "version") => "1".into(),
            ("conflicts", "id") => self.conflict.clone(),
            ("establishments", "id") => self.establishment.clone(),
            ("inspections", "id") => self.inspection.clone(),
            ("lists", "id") => self.list_issue.clone(),
            ("entries", "entry_id") => self.list_entry.clone(),
            ("followups", "id") => self.followup.clone(),
            ("samples", "id") => self.sample.clone(),
            ("announcements", "id") => self.announcement.clone(),
            ("exclusions", "sample_id") => self.sample.clone(),
            ("sampling-plans", "id") => self.sampling_plan.clone(),
            ("sampling-tasks", "id") => self.sampling_task.clone(),
            ("attachments", "aid") => self.attachment.clone(),
            ("years", "year") => "2030".into(),
            ("queues", "queue") => "waiting".into(),
            ("photos", "id") => self.photo.clone(),
            ("photos", "variant") => "original".into(),
            ("photos", "photo_id") => self.photo.clone(),
            ("plans", "id") => self.plan.clone(),
            // A kind a reviewer may read (accounts are admin-only: tests/api/audit.rs).
            ("records", "type") => "plan".into(),
            ("records", "id") => self.user.clone(),
            ("tasks", "id") => self.task.clone(),
            ("uploads", "id") => self.upload.clone(),
            ("users", "id") => self.user.clone(),
            _ => return None,
        })
    }

    /// The request the walk sends for `op`: real ids in the path, required query parameters,
    /// and a body that changes nothing shared (mostly `{}`, refused as invalid by those let
    /// through). With `ghost`, the same request naming records that do not exist.
    fn call(&self, op: &Operation, ghost: bool) -> Result<Call, String> {
        let mut path = String::new();
        let mut after = "";
        for segment in op.path.split('/').skip(1) {
            path.push('/');
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    path.push_str(&self.path_value(after, name, ghost).ok_or_else(|| {
                        format!("no fixture for the path parameter {{{name}}} after /{after}/")
                    })?)
                }
                None => {
                    path.push_str(segment);
                    after = segment;
                }
            }
        }
        let key = op.key();
        let query = match key.as_str() {
            "GET /api/v1/inspections" => format!("task_id={}", self.task),
            "GET /api/v1/audit/proof" => "entry=0".into(),
            "GET /api/v1/audit/consistency" => "from=1".into(),
            "POST /api/v1/establishments/import" => "dry_run=true".into(),
            "POST /api/v1/sync" => format!("last_pulled_at={}", self.cursor),
            "GET /public/v1/lists/{id}/export" => "format=csv".into(),
            "GET /public/v1/announcements/{id}/export" => "format=csv".into(),
            "GET /public/v1/establishments/{id}/export" => "format=csv".into(),
            "POST /api/v1/samples/{id}/result/items-file" => {
                "report_no=R-1&overall=qualified".into()
            }
            "GET /api/v1/stats" | "GET /api/v1/stats.xlsx" => {
                "from=2026-03-01&to=2026-03-31".into()
            }
            _ => String::new(),
        };
        for (name, location, required) in &op.params {
            if location == "query" && *required && !query.contains(&format!("{name}=")) {
                return Err(format!(
                    "no fixture for the required query parameter {name}"
                ));
            }
        }
        let mut headers = Vec::new();
        if op.path.starts_with("/api/v1/uploads") {
            headers.push(("tus-resumable", "1.0.0".to_string()));
        }
        if key == "POST /api/v1/uploads" {
            // The open upload's record: its creator is answered that upload, nothing changes.
            headers.push(("upload-length", self.upload_bytes.len().to_string()));
            headers.push((
                "upload-metadata",
                format!(
                    "photo_id {},sha256 {}",
                    b64(if ghost { GHOST } else { &self.upload_photo }),
                    b64(&hex_sha256(&self.upload_bytes))
                ),
            ));
        }
        if key == "PATCH /api/v1/uploads/{id}" {
            // The wrong offset: 409 for the owner, nothing appended.
            headers.push(("upload-offset", "999999".to_string()));
        }
        let json_body = match key.as_str() {
            "POST /api/v1/auth/logout" => json!({"refresh_token": "not-a-refresh-token"}),
            "POST /api/v1/checklists/{id}/versions/{version}/evaluate" => json!({"answers": []}),
            "POST /api/v1/sync" => json!({"changes": {}}),
            _ => json!({}),
        };
        let body = if op.body_types.iter().any(|t| t == "application/json") {
            Some(("application/json", serde_json::to_vec(&json_body).unwrap()))
        } else if op
            .body_types
            .iter()
            .any(|t| t == "application/octet-stream")
        {
            Some(("application/octet-stream", Vec::new()))
        } else if op
            .body_types
            .iter()
            .any(|t| t == "application/offset+octet-stream")
        {
            Some(("application/offset+octet-stream", Vec::new()))
        } else if let Some(other) = op.body_types.first() {
            return Err(format!("no fixture body for the content type {other}"));
        } else {
            None
        };
        Ok(Call {
            path_and_query: if query.is_empty() {
                path
            } else {
                format!("{path}?{query}")
            },
            headers,
            body,
        })
    }
}

async fn every_operation_answers_each_caller_as_the_table_says(app: TestApp) {
    let mut problems: Vec<String> = Vec::new();
    let mut table: BTreeMap<&str, [Expect; 6]> = BTreeMap::new();
    for (key, cells) in TABLE {
        if table.insert(key, *cells).is_some() {
            problems.push(format!("{key}: the table has two rows for it"));
        }
    }
    let mut ops = spec_operations();
    let in_spec: BTreeSet<String> = ops.iter().map(Operation::key).collect();
    for key in table.keys() {
        if !in_spec.contains(*key) {
            problems.push(format!(
                "{key}: in the table but not in the spec (remove the row)"
            ));
        }
    }
    // Destructive operations last, the rest in spec order.
    ops.sort_by_key(|op| DESTRUCTIVE.contains(&op.key().as_str()));

    let w = world(app).await;
    let mut walked = 0;
    for op in &ops {
        let key = op.key();
        let Some(cells) = table.get(key.as_str()) else {
            problems.push(format!(
                "{key}: in the spec but not in the table (add a row with the intended policy)"
            ));
            continue;
        };
        // Public exactly where the spec says no token is needed.
        let public = matches!(cells[0], Expect::Public | Expect::PublicUnpublished);
        if public == op.secured {
            problems.push(format!(
                "{key}: the spec says {} but the table's no-token cell is {:?}",
                if op.secured {
                    "a token is required"
                } else {
                    "no token is needed"
                },
                cells[0]
            ));
        }
        let (call, ghost) = match (w.call(op, false), w.call(op, true)) {
            (Ok(c), Ok(g)) => (c, g),
            (Err(e), _) | (_, Err(e)) => {
                problems.push(format!("{key}: {e}"));
                continue;
            }
        };
        for caller in CALL_ORDER {
            let column = COLUMNS.iter().position(|c| *c == caller).unwrap();
            let expected = cells[column];
            let token = w.tokens.get(&caller).map(String::as_str);
            let (status, code, text) = send(
                &w.app,
                &op.method,
                &call.path_and_query,
                token,
                &call.headers,
                call.body.clone(),
            )
            .await;
            walked += 1;
            // A hidden record is answered exactly as one that does not exist: its id reveals
            // nothing.
            if expected == Expect::Hidden {
                let (s, c, t) = send(
                    &w.app,
                    &op.method,
                    &ghost.path_and_query,
                    token,
                    &ghost.headers,
                    ghost.body.clone(),
                )
                .await;
                if (s, &c, message(&t)) != (status, &code, message(&text)) {
                    problems.push(format!(
                        "{key} as {caller:?}: the hidden record is answered {status} {code} {:?}, \
                         a missing one {s} {c} {:?}",
                        message(&text),
                        message(&t)
                    ));
                }
            }
            if !expected.admits(status) {
                problems.push(format!(
                    "{key} as {caller:?}: expected {expected:?}, got {status} {code}"
                ));
            }
            // What team B is let through to read never names team A's records.
            if caller == Caller::OtherTeam {
                for (what, id) in w.team_a_records() {
                    if text.contains(id) {
                        problems.push(format!(
                            "{key} as {caller:?}: the answer names team A's {what} {id}"
                        ));
                    }
                }
            }
        }
    }

    // Sync is owned too: team B's push cannot change team A's inspection.
    if let Some(p) = w.other_team_push_changes_nothing().await {
        problems.push(p);
    }

    assert!(
        problems.is_empty(),
        "{} problem(s) in the permission matrix ({walked} calls):\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The walk did run: every cell of every operation of the spec.
    assert_eq!(walked, ops.len() * COLUMNS.len());
}

/// The lab named for a requested 复检 reads the sample (without the premises' personal fields,
/// as the sample's own lab), from the request on; before it, and for any other lab, the sample
/// is answered as a missing one. Reading is all: its result stays the sample's lab's to report.
async fn the_retest_lab_reads_the_sample_and_no_other_lab_does(app: TestApp) {
    let w = crate::sampling::world(app).await;
    crate::common::cover_this_and_next_year(&w.app, &w.admin).await;
    let at = crate::sampling::march_2_2026();
    let day = 86_400_000;
    let sample = crate::sample_facts::unqualified(
        &w,
        at,
        at + 4 * day,
        json!([crate::sampling::item("铅", "0.35", "≤0.2", "unqualified")]),
    )
    .await;
    // A third lab with an account.
    let (s, lab_c) = w
        .app
        .post(
            "/api/v1/labs",
            &w.admin,
            json!({"name": "C检验中心", "code": "CJY"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{lab_c}");
    let lab_c_user = w.app.user("lab-c-reader", Role::Lab).await;
    let (s, v) = w
        .app
        .put(
            &format!("/api/v1/users/{lab_c_user}/lab"),
            &w.admin,
            json!({"lab_id": lab_c["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let lab_c = login(&w.app, "lab-c-reader").await;
    let path = format!("/api/v1/samples/{sample}");
    let missing = format!("/api/v1/samples/{}", Uuid::new_v4());
    let (_, ghost) = w.app.get(&missing, &w.lab_b).await;
    let (s, v) = w.app.get(&path, &w.lab_b).await;
    assert_eq!((s, &v), (StatusCode::NOT_FOUND, &ghost), "before the 复检");
    // The samplers' seal photo, uploaded: the 复检 lab may read it from the request on.
    use crate::sample_attachments as sa;
    let photo = sa::jpeg();
    let seal = Uuid::new_v4().to_string();
    let (s, v) = sa::declare(
        &w,
        &sample,
        &w.insp1,
        sa::declaration(&seal, "seal", &photo),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        sa::upload(&w, &w.insp1, &seal, &photo, "seal.jpg")
            .await
            .status(),
        204
    );
    let listing = format!("{path}/attachments");
    let (s, _) = w.app.get(&listing, &w.lab_b).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "attachments before the 复检");
    let res = sa::content(&w, &sample, &w.lab_b, &seal, "original").await;
    assert_eq!(res.status(), 404, "a download before the 复检");

    for (kind, on) in [("bureau_notified", "2026-03-09"), ("served", "2026-03-10")] {
        crate::sample_facts::recorded(&w, &sample, &w.reviewer, json!({"kind": kind, "on": on}))
            .await;
    }
    crate::sample_facts::recorded(
        &w,
        &sample,
        &w.reviewer,
        json!({"kind": "retest_requested", "on": "2026-03-11", "retest_lab_id": w.lab_b_id}),
    )
    .await;
    let (s, v) = w.app.get(&path, &w.lab_b).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], sample);
    let form = v["form"].as_object().unwrap();
    assert!(form.contains_key("sample_name"), "{v}");
    for personal in ["premises_legal_representative", "premises_contact"] {
        assert!(
            !form.contains_key(personal),
            "{personal} shown to the 复检 lab: {v}"
        );
    }
    let (s, v) = w.app.get(&listing, &w.lab_b).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["items"][0]["id"], json!(seal), "{v}");
    let res = sa::content(&w, &sample, &w.lab_b, &seal, "original").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().as_ref(), photo.as_slice());
    // Reading only: it declares nothing on the sample.
    let doc = sa::pdf("复检");
    let other = Uuid::new_v4().to_string();
    let (s, v) = sa::declare(
        &w,
        &sample,
        &w.lab_b,
        sa::declaration(&other, "report", &doc),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, _) = w.app.get(&listing, &lab_c).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let res = sa::content(&w, &sample, &lab_c, &seal, "original").await;
    assert_eq!(res.status(), 404);
    // The sample's own lab still reads it; the third lab gets what a missing sample gets.
    let (s, _) = w.app.get(&path, &w.lab_a).await;
    assert_eq!(s, StatusCode::OK);
    let (_, ghost) = w.app.get(&missing, &lab_c).await;
    let (s, v) = w.app.get(&path, &lab_c).await;
    assert_eq!((s, &v), (StatusCode::NOT_FOUND, &ghost));
    // Reading only: the 复检 lab does not report the sample's result.
    let (s, v) = w
        .app
        .put(
            &format!("{path}/result"),
            &w.lab_b,
            json!({"report_no": "B-1", "overall": "qualified", "items": [crate::sampling::item("铅", "0.05", "≤0.2", "qualified")]}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}
