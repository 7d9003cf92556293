//! Sampling benchmarks of issue 13 (`cargo bench --bench sampling`; FOODCHECK_BENCH_POSTGRES_URL
//! adds PostgreSQL, FOODCHECK_BENCH_ONLY=sqlite|postgres runs one backend,
//! FOODCHECK_BENCH_SAMPLING_RUNS changes the 100 timed runs per row). Figures go to
//! BENCHMARKS.md.
//!
//! The real release binary (`foodcheck serve`, default settings, its log to a file) runs as a
//! child process on a fresh database and is driven over HTTP/1.1 (one keep-alive connection),
//! as benches/public.rs does. Everything is seeded through the API itself (only the first admin
//! is created through the library, as `foodcheck user add` does).
//!
//! 1. A sampler's first pull: a sampler on the teams of 100 sampling tasks (one plan drawn over
//!    100 premises, each task's team assigned) pulls with `last_pulled_at=null` at schema
//!    version 6. Target: under 30 ms.
//! 2. Lab result intake of a 200-item report: `PUT /api/v1/samples/{id}/result` with 200 items
//!    as JSON (all qualified; and one item failed, which also computes the unqualified
//!    deadlines and opens the 核查处置 follow-up), and `POST …/result/items-file` with the same
//!    200 items as CSV and as XLSX (rust_xlsxwriter). Every run takes its own sample, submitted,
//!    sealed, dispatched and received through the API before the timing. Target: under 50 ms.
//!
//! Each row: client latency p50/p95 over the runs (after warm-up runs, not counted), and the
//! server process's CPU time per operation (/proc/PID/stat over the timed block; PostgreSQL's
//! own CPU is not in it). Baseline in the same run: `GET /api/v1/me` with the same token, timed
//! the same way right after each block, so the ratio survives a noisy machine.

mod common;

use common::server::{ticks_per_second, Server};

use std::time::{Duration, Instant};

use foodcheck::audit::Ctx;
use foodcheck::auth::Role;
use foodcheck::store::Db;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const WARMUP: usize = 10;
const TASKS: usize = 100;
const ITEMS: usize = 200;
const PASSWORD: &str = "bench-password-1";
const TOWN: &str = "抽检镇";
const CATEGORIES: &str = "分类编码,级别,上级编码,分类名称,微生物\n\
    01,1,,粮食加工品,\n\
    0101,2,01,小麦粉,否\n\
    010101,3,0101,通用小麦粉,否\n";

fn runs() -> usize {
    std::env::var("FOODCHECK_BENCH_SAMPLING_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
        .max(2)
}

// ---- HTTP ------------------------------------------------------------------------------------

/// One keep-alive connection to the server.
struct Api {
    client: reqwest::Client,
    base: String,
}

enum Body {
    None,
    Json(Value),
    Raw(Vec<u8>),
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Raw(b) => req
                .header("content-type", "application/octet-stream")
                .body(b),
        };
        let res = req.send().await?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// A call that must answer `want`.
    async fn ok(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Body,
        want: u16,
    ) -> anyhow::Result<Value> {
        let (s, v) = self.call(method.clone(), path, Some(token), body).await?;
        anyhow::ensure!(s == want, "{method} {path}: {s} {v}");
        Ok(v)
    }

    async fn login(&self, username: &str) -> anyhow::Result<String> {
        let (s, v) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Body::Json(json!({"username": username, "password": PASSWORD, "device_id": format!("bench-{username}")})),
            )
            .await?;
        anyhow::ensure!(s == 200, "login {username}: {s} {v}");
        Ok(v["access_token"].as_str().unwrap_or_default().to_string())
    }
}

// ---- Measurement ---------------------------------------------------------------------------

#[derive(Debug)]
struct Block {
    /// Sorted.
    lat: Vec<Duration>,
    cpu_ms_per_op: f64,
}

impl Block {
    fn at(&self, p: f64) -> f64 {
        let v = &self.lat;
        v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1].as_secs_f64() * 1000.0
    }
}

/// Times `op(i)` for `i` in `0..n` one after the other (after `WARMUP` untimed calls
/// `op(n..n + WARMUP)`), with the server's CPU over the timed calls.
async fn block<F, Fut>(server: &Server, n: usize, mut op: F) -> anyhow::Result<Block>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    for i in n..n + WARMUP {
        op(i).await?;
    }
    let mut lat = Vec::with_capacity(n);
    let cpu = server.cpu_ticks();
    for i in 0..n {
        let t = Instant::now();
        op(i).await?;
        lat.push(t.elapsed());
    }
    let cpu_ms = (server.cpu_ticks() - cpu) as f64 * 1000.0 / ticks_per_second();
    lat.sort();
    Ok(Block {
        lat,
        cpu_ms_per_op: cpu_ms / n as f64,
    })
}

/// The baseline block: `GET /api/v1/me` with `token`.
async fn me_block(api: &Api, server: &Server, token: &str, n: usize) -> anyhow::Result<Block> {
    block(server, n, |_| async move {
        api.ok(Method::GET, "/api/v1/me", token, Body::None, 200)
            .await
            .map(|_| ())
    })
    .await
}

/// Two table rows: the operation's and its baseline's.
fn rows(backend: &str, name: &str, op: &Block, me: &Block, target_ms: f64) -> Vec<String> {
    let p50 = op.at(0.5);
    vec![
        format!(
            "| {name} | {backend} | {p50:.2} ms | {:.2} ms | {:.2} ms | {} | < {target_ms:.0} ms | {:.2} | {:.1}× |",
            op.at(0.95),
            op.cpu_ms_per_op,
            op.lat.len(),
            p50 / target_ms,
            p50 / me.at(0.5),
        ),
        format!(
            "| ↳ baseline `GET /api/v1/me` right after | {backend} | {:.2} ms | {:.2} ms | {:.2} ms | {} | | | 1× |",
            me.at(0.5),
            me.at(0.95),
            me.cpu_ms_per_op,
            me.lat.len(),
        ),
    ]
}

// ---- The fixture ---------------------------------------------------------------------------

struct World {
    reviewer: String,
    s1: String,
    s1_id: String,
    s2: String,
    s2_id: String,
    lab: String,
    lab_id: String,
    /// Where the intake's samples are taken (not a drawn premises: samples without a task).
    premises: String,
}

async fn user(api: &Api, admin: &str, username: &str, role: &str) -> anyhow::Result<String> {
    let badge = (role == "inspector").then(|| format!("B-{username}"));
    let v = api
        .ok(
            Method::POST,
            "/api/v1/users",
            admin,
            Body::Json(
                json!({"username": username, "password": PASSWORD, "role": role,
                "name": username, "badge_no": badge}),
            ),
            201,
        )
        .await?;
    Ok(v["id"].as_str().unwrap_or_default().to_string())
}

async fn world(api: &Api) -> anyhow::Result<World> {
    let admin = api.login("admin").await?;
    user(api, &admin, "reviewer", "reviewer").await?;
    let s1_id = user(api, &admin, "sampler1", "inspector").await?;
    let s2_id = user(api, &admin, "sampler2", "inspector").await?;
    let lab_user = user(api, &admin, "lab", "lab").await?;
    // The working-day calendar through next year (tasks' and results' deadlines run into it).
    let have = api
        .ok(
            Method::GET,
            "/api/v1/calendar/years",
            &admin,
            Body::None,
            200,
        )
        .await?;
    let have: Vec<i64> = have["years"]
        .as_array()
        .map(|a| a.iter().filter_map(|y| y["year"].as_i64()).collect())
        .unwrap_or_default();
    let this: i64 = chrono::Utc::now().format("%Y").to_string().parse()?;
    for year in [this, this + 1] {
        if !have.contains(&year) {
            api.ok(
                Method::PUT,
                &format!("/api/v1/calendar/years/{year}"),
                &admin,
                Body::Json(
                    json!({"off": {"元旦": [format!("{year}-01-01")]}, "source": "benchmark"}),
                ),
                200,
            )
            .await?;
        }
    }
    let lab = api
        .ok(
            Method::POST,
            "/api/v1/labs",
            &admin,
            Body::Json(json!({"name": "天津市宝坻区食品检验检测中心", "code": "BDJC"})),
            201,
        )
        .await?;
    let lab_id = lab["id"].as_str().unwrap_or_default().to_string();
    api.ok(
        Method::PUT,
        &format!("/api/v1/users/{lab_user}/lab"),
        &admin,
        Body::Json(json!({"lab_id": lab_id})),
        200,
    )
    .await?;
    api.ok(
        Method::POST,
        "/api/v1/food-categories/import",
        &admin,
        Body::Raw(CATEGORIES.as_bytes().to_vec()),
        200,
    )
    .await?;
    let mut premises = String::new();
    for i in 0..=TASKS {
        // The last one is elsewhere: the intake's samples are taken there.
        let town = if i < TASKS { TOWN } else { "钰华街道" };
        let e = api
            .ok(
                Method::POST,
                "/api/v1/establishments",
                &admin,
                Body::Json(json!({"sign_name": format!("粮油店{i}"),
                    "licensed_name": format!("天津市宝坻区粮油商行{i}"),
                    "license_no": format!("JY2120115{i:07}"), "category": "food_sales",
                    "address": format!("天津市宝坻区抽检路{i}号"), "town": town, "risk_grade": "B"})),
                201,
            )
            .await?;
        premises = e["id"].as_str().unwrap_or_default().to_string();
    }
    Ok(World {
        reviewer: api.login("reviewer").await?,
        s1: api.login("sampler1").await?,
        s2: api.login("sampler2").await?,
        lab: api.login("lab").await?,
        s1_id,
        s2_id,
        lab_id,
        premises,
    })
}

/// One plan drawn over the town's 100 premises, every task's team the two samplers.
async fn tasks(api: &Api, w: &World) -> anyhow::Result<()> {
    let this: i64 = chrono::Utc::now().format("%Y").to_string().parse()?;
    let plan = api
        .ok(
            Method::POST,
            "/api/v1/sampling-plans",
            &w.reviewer,
            Body::Json(json!({
                "title": "流通环节小麦粉监督抽检（基准）", "purpose": "supervision", "stage": "circulation",
                "period_start": format!("{this}-01-01"), "period_end": format!("{}-12-31", this + 1),
                "lab_id": w.lab_id, "batches": [{"category_code": "010101", "batches": TASKS}],
                "filter": {"towns": [TOWN]}, "quotas": {"explicit": {"B": TASKS}}})),
            201,
        )
        .await?;
    let plan = plan["id"].as_str().unwrap_or_default().to_string();
    api.ok(
        Method::POST,
        &format!("/api/v1/sampling-plans/{plan}/draw"),
        &w.reviewer,
        Body::Json(json!({"seed": "基准 公开摇号 07 19 23"})),
        201,
    )
    .await?;
    let page = api
        .ok(
            Method::GET,
            &format!("/api/v1/sampling-tasks?plan_id={plan}&page_size=200"),
            &w.reviewer,
            Body::None,
            200,
        )
        .await?;
    let ids: Vec<String> = page["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    anyhow::ensure!(ids.len() == TASKS, "{} tasks drawn", ids.len());
    for id in ids {
        api.ok(
            Method::PUT,
            &format!("/api/v1/sampling-tasks/{id}/team"),
            &w.reviewer,
            Body::Json(json!({"sampler_ids": [w.s1_id, w.s2_id]})),
            200,
        )
        .await?;
    }
    Ok(())
}

/// A complete 抽样单 (no task) by the two samplers, sent to the lab.
fn sample_body(w: &World, id: &str, sampled_at: i64) -> Value {
    // Two halves: one json! of the whole form passes the macro recursion limit.
    let mut form = json!({
        "task_source": "2026年第四季度监督抽检", "purpose": "supervision", "stage": "流通",
        "food_category_1": "粮食加工品", "food_category_2": "小麦粉", "food_category_3": "通用小麦粉",
        "food_category_4": "/", "premises_name": "粮油店100", "premises_address": "天津市宝坻区抽检路100号",
        "premises_credit_code": "/", "premises_licence_no": "JY21201150000100",
        "premises_legal_representative": "王老五", "premises_contact": "13800138000",
        "producer_name": "天津某面粉厂", "producer_address": "天津市宝坻区",
        "producer_sc_licence": "SC10112011500012", "sample_name": "小麦粉", "sample_brand": "/",
        "sample_specification": "1kg/袋", "sample_production_date": "2026-02-01"});
    let rest = json!({
        "sample_batch": "/", "sample_shelf_life": "12个月", "sample_standard": "GB 1355",
        "sample_price": "12.50", "sample_imported": false, "sample_storage": "常温",
        "sampling_method": "non_aseptic", "sampling_base": 100.0, "sampling_base_unit": "袋",
        "sample_quantity": 4.0, "sample_quantity_unit": "袋", "backup_quantity": 2.0,
        "backup_quantity_unit": "袋", "sampled_at": sampled_at, "lng": 117.3, "lat": 39.7,
        "crs": "wgs84", "sampler_1": w.s1_id, "sampler_2": w.s2_id,
        "premises_opinion": "no_objection"});
    if let (Some(f), Some(r)) = (form.as_object_mut(), rest.as_object()) {
        f.extend(r.clone());
    }
    json!({"id": id, "establishment_id": w.premises, "lab_id": w.lab_id,
        "category_code": "010101", "form": form})
}

/// `n` samples submitted, sealed, dispatched and received by the lab (state `received`).
async fn received_samples(api: &Api, w: &World, n: usize) -> anyhow::Result<Vec<String>> {
    let minute = 60_000;
    let at = chrono::Utc::now().timestamp_millis() - 120 * minute;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let id = Uuid::new_v4().to_string();
        api.ok(
            Method::POST,
            "/api/v1/samples",
            &w.s1,
            Body::Json(sample_body(w, &id, at)),
            201,
        )
        .await?;
        let custody = format!("/api/v1/samples/{id}/custody");
        for (token, event) in [
            (
                &w.s1,
                json!({"kind": "sealed", "occurred_at": at + minute, "place": "粮油店100"}),
            ),
            (
                &w.s2,
                json!({"kind": "dispatched", "occurred_at": at + 2 * minute, "place": "粮油店100"}),
            ),
            (
                &w.lab,
                json!({"kind": "received", "occurred_at": at + 30 * minute, "place": "检验中心收样室",
                "sample_condition": "包装完好", "seal_intact": true}),
            ),
        ] {
            let mut event = event;
            event["id"] = json!(Uuid::new_v4());
            api.ok(Method::POST, &custody, token, Body::Json(event), 201)
                .await?;
        }
        out.push(id);
    }
    Ok(out)
}

/// 200 items as a pesticide-and-metals report lists them; with `failed`, the first is 不合格.
fn items(failed: bool) -> Vec<Value> {
    (0..ITEMS)
        .map(|i| {
            let bad = failed && i == 0;
            json!({"name": format!("农药残留项目{i:03}"), "value": if bad { "0.35" } else { "未检出" },
                "unit": "mg/kg", "limit": "≤0.2", "standard": "GB 2763-2021",
                "method": "GB 23200.113-2018", "verdict": if bad { "unqualified" } else { "qualified" }})
        })
        .collect()
}

const FILE_HEADER: [&str; 7] = [
    "检验项目",
    "检验结果",
    "计量单位",
    "标准指标",
    "判定依据",
    "检验方法",
    "单项判定",
];

fn file_row(item: &Value) -> [String; 7] {
    let s = |k: &str| item[k].as_str().unwrap_or_default().to_string();
    [
        s("name"),
        s("value"),
        s("unit"),
        s("limit"),
        s("standard"),
        s("method"),
        if s("verdict") == "qualified" {
            "合格".into()
        } else {
            "不合格".into()
        },
    ]
}

fn items_csv() -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    out.push_str(&FILE_HEADER.join(","));
    out.push('\n');
    for item in items(false) {
        out.push_str(&file_row(&item).join(","));
        out.push('\n');
    }
    out.into_bytes()
}

fn items_xlsx() -> anyhow::Result<Vec<u8>> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in FILE_HEADER.iter().enumerate() {
        ws.write_string(0, c as u16, *h)?;
    }
    for (r, item) in items(false).iter().enumerate() {
        for (c, v) in file_row(item).iter().enumerate() {
            ws.write_string(r as u32 + 1, c as u16, v)?;
        }
    }
    Ok(wb.save_to_buffer()?)
}

// ---- A run on one backend --------------------------------------------------------------------

async fn run(backend: &str) -> anyhow::Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let (url, cleanup) = common::fresh_db(backend, dir.path(), "samplingbench").await?;
    {
        // The first admin, as `foodcheck user add` makes it.
        let db = Db::connect(&url, 2).await?;
        db.migrate().await?;
        let hash = foodcheck::auth::password::hash_password_blocking(PASSWORD)?;
        let new = foodcheck::auth::NewUser::parse("admin", Role::Admin, "管理员", None, None)
            .map_err(anyhow::Error::msg)?;
        foodcheck::ops::accounts::create_user_with_hash(&db, &Ctx::system(), &new, &hash).await?;
        db.close().await;
    }
    let server = Server::start(&url, dir.path()).await?;
    let api = Api {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?,
        base: server.base.clone(),
    };
    let n = runs();
    let started = Instant::now();
    let w = world(&api).await?;
    tasks(&api, &w).await?;
    eprintln!(
        "{backend}: fixture ({TASKS} tasks) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut out = Vec::new();

    // 1. The sampler's first pull.
    let pull = "/api/v1/sync?last_pulled_at=null&schema_version=6";
    let first = api.ok(Method::GET, pull, &w.s1, Body::None, 200).await?;
    let got = first["changes"]["sampling_tasks"]["created"]
        .as_array()
        .map_or(0, Vec::len);
    anyhow::ensure!(got == TASKS, "the first pull has {got} sampling tasks");
    let bytes = serde_json::to_vec(&first)?.len();
    let (api_ref, s1) = (&api, w.s1.as_str());
    let op = block(&server, n, |_| async move {
        api_ref
            .ok(Method::GET, pull, s1, Body::None, 200)
            .await
            .map(|_| ())
    })
    .await?;
    let me = me_block(&api, &server, &w.s1, n).await?;
    out.extend(rows(
        backend,
        &format!(
            "first pull (schema 6), sampler on {TASKS} sampling tasks ({} KiB)",
            bytes / 1024
        ),
        &op,
        &me,
        30.0,
    ));
    // The second sampler's pull too, once: same tasks (nothing per-device cached).
    api.ok(Method::GET, pull, &w.s2, Body::None, 200).await?;

    // 2. Result intake, each run on its own received sample.
    let csv = items_csv();
    let xlsx = items_xlsx()?;
    for variant in ["json", "json-unqualified", "csv", "xlsx"] {
        let t = Instant::now();
        let samples = received_samples(&api, &w, n + WARMUP).await?;
        eprintln!(
            "{backend} {variant}: {} received samples in {:.1} s",
            samples.len(),
            t.elapsed().as_secs_f64()
        );
        let (csv, xlsx, samples) = (&csv, &xlsx, &samples);
        let api = &api;
        let lab = w.lab.as_str();
        let op = block(&server, n, |i| async move {
            let sample = &samples[i];
            let report_no = format!("BDJC2026-{}", &sample[..8]);
            match variant {
                "json" | "json-unqualified" => {
                    let failed = variant == "json-unqualified";
                    let body = json!({"report_no": report_no,
                        "overall": if failed { "unqualified" } else { "qualified" },
                        "items": items(failed)});
                    api.ok(
                        Method::PUT,
                        &format!("/api/v1/samples/{sample}/result"),
                        lab,
                        Body::Json(body),
                        201,
                    )
                    .await?;
                }
                _ => {
                    let file = if variant == "csv" { csv } else { xlsx };
                    api.ok(
                        Method::POST,
                        &format!("/api/v1/samples/{sample}/result/items-file?report_no={report_no}&overall=qualified"),
                        lab,
                        Body::Raw(file.clone()),
                        201,
                    )
                    .await?;
                }
            }
            Ok(())
        })
        .await?;
        let me = me_block(api, &server, lab, n).await?;
        let name = match variant {
            "json" => format!("result intake, {ITEMS} items as JSON (`PUT …/result`, 合格)"),
            "json-unqualified" => format!(
                "result intake, {ITEMS} items as JSON, 1 failed (不合格: deadlines, 核查处置 follow-up)"
            ),
            "csv" => format!(
                "result intake, {ITEMS}-item CSV (`POST …/result/items-file`, {} KiB)",
                csv.len() / 1024
            ),
            _ => format!(
                "result intake, {ITEMS}-item XLSX (`POST …/result/items-file`, {} KiB)",
                xlsx.len() / 1024
            ),
        };
        out.extend(rows(backend, &name, &op, &me, 50.0));
        // Every timed report was stored with all its items.
        let check = api
            .ok(
                Method::GET,
                &format!("/api/v1/samples/{}", samples[0]),
                lab,
                Body::None,
                200,
            )
            .await?;
        let stored = check["result"]["items"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(stored == ITEMS, "{variant}: {stored} items stored");
    }

    server.stop().await;
    common::drop_fresh(cleanup).await?;
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut rows = vec![
        "| benchmark | backend | p50 | p95 | server CPU / op | runs | target | p50 / target | p50 / baseline |".to_string(),
        "|---|---|---|---|---|---|---|---|---|".to_string(),
    ];
    for backend in common::backends() {
        rows.extend(run(backend).await?);
    }
    for r in rows {
        println!("{r}");
    }
    Ok(())
}
