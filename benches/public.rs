//! Public open-data benchmarks (`cargo bench --bench public`; FOODCHECK_BENCH_POSTGRES_URL adds
//! PostgreSQL, FOODCHECK_BENCH_ONLY=sqlite|postgres runs one). Figures go to BENCHMARKS.md (by
//! the lead). Both parts serve the real release binary (`foodcheck serve`, default settings,
//! its log to a file) as a child process on a local TCP port and talk to it over HTTP/1.1.
//!
//! 1. Exports from the database: one published issue of FOODCHECK_BENCH_PUBLIC_ROWS entries
//!    (default 1,000,000; half red, half black) and as many establishments, bulk-loaded by SQL
//!    into the migrated schema, downloaded from `GET /public/v1/lists/{id}/export?format=…`
//!    with a streaming client: time to the response headers and to the first body byte, total
//!    time, bytes, and the server's peak RSS during the download (its VmHWM, reset through
//!    /proc/PID/clear_refs before each). Each download's rows are counted (CSV lines, JSON and
//!    GeoJSON lines, XLSX `<row>` elements, LIVES CSV lines) so an error page cannot pass. The
//!    same writer fed synthetic rows into a byte-counting sink, in this process and in the same
//!    run, is the baseline: the ratio is what reading the database and HTTP add.
//!    FOODCHECK_BENCH_PUBLIC_FORMATS=csv,json,… picks formats.
//! 2. The public issue API under load: FOODCHECK_BENCH_PUBLIC_ISSUES published issues (default
//!    300) of FOODCHECK_BENCH_PUBLIC_ISSUE_ENTRIES entries each (default 200) over 20,000
//!    establishments in 14 towns; FOODCHECK_BENCH_PUBLIC_CLIENTS concurrent keep-alive clients
//!    (default 200, each its own connection) offering FOODCHECK_BENCH_PUBLIC_RATE requests per
//!    second between them (default 1,000; an open loop: each request is due at its time
//!    whatever the answers before it, and its latency counts from then) for
//!    FOODCHECK_BENCH_PUBLIC_SECS per route (default 10, after 1 s of warm-up). The server's
//!    CPU time per request comes from /proc/PID/stat. Baseline: the same load on `GET /healthz`.
//!    The list routes run twice: with the public page cache (default settings; after warm-up
//!    most pages are hits) and again on a server started with FOODCHECK_PUBLIC_PAGE_CACHE_MB=0
//!    (every page built from the database).
//!
//! FOODCHECK_BENCH_PUBLIC_PART=export|api runs one part.

mod common;

use common::server::{status_kib, ticks_per_second, Server};

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use foodcheck::export::csv::EntryCsv;
use foodcheck::export::geojson::GeoJsonWriter;
use foodcheck::export::json::{IssueMeta, JsonWriter};
use foodcheck::export::lives::{LivesFeed, LivesWriter};
use foodcheck::export::rows::ResultCode;
use foodcheck::export::xlsx::XlsxListWriter;
use foodcheck::export::{
    DatedNote, ExportEntry, ExportError, ExportInspection, ExportIssue, InspectionType, ListType,
};
use foodcheck::store::{self, Backend, Db};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

const TOWNS: usize = 14;
const API_ESTABLISHMENTS: usize = 20_000;
const CENTRAL_NS_PER_ROW: f64 = 100_000.0;

fn env_num(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

// ---- Fixture SQL -----------------------------------------------------------------------------

/// A UUID-shaped id `prefix-…-{i:012}` from the SQL integer `i`.
fn id_sql(b: Backend, prefix: &str, i: &str) -> String {
    match b {
        Backend::Sqlite => format!("printf('{prefix}-%012d', {i})"),
        Backend::Postgres => format!("'{prefix}-' || lpad(({i})::text, 12, '0')"),
    }
}

/// `INSERT … SELECT` over the integers 0..n: a recursive CTE on SQLite, generate_series on
/// PostgreSQL. `select` uses `i`.
fn insert_series(b: Backend, n: usize, table: &str, cols: &str, select: &str) -> String {
    match b {
        Backend::Sqlite => format!(
            "WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < {n}) \
             INSERT INTO {table} ({cols}) SELECT {select} FROM g"
        ),
        Backend::Postgres => format!(
            "INSERT INTO {table} ({cols}) SELECT {select} FROM generate_series(0::bigint, {n}::bigint - 1) AS g(i)"
        ),
    }
}

const EST_PREFIX: &str = "00000000-0000-4000-8000";

/// `n` establishments, id `EST_PREFIX-{i}`, town `第{i % 14}街道`, with a WGS-84 point (the
/// latitude missing on every 50th, as in benches/export.rs).
async fn load_establishments(db: &Db, n: usize, now: i64) -> anyhow::Result<()> {
    let b = db.backend();
    let sql = insert_series(
        b,
        n,
        "establishments",
        "id, search_text, sign_name, licensed_name, license_no, category, address, town, risk_grade, \
         status, crs, raw_lng, raw_lat, lng, lat, created_at, updated_at",
        &format!(
            "{id}, '老王烧烤第' || i || '号店', '老王烧烤第' || i || '号店', '天津市宝坻区老王餐饮管理有限公司', \
             'JY1120' || {lic}, 'small_restaurant', '天津市宝坻区钰华街道南关大街1-3号底商', \
             '第' || (i % {TOWNS}) || '街道', CASE i % 4 WHEN 0 THEN 'A' WHEN 1 THEN 'B' WHEN 2 THEN 'C' ELSE 'D' END, \
             'open', 'wgs84', {lng}, {lat}, {lng}, {lat}, {now}, {now}",
            id = id_sql(b, EST_PREFIX, "i"),
            lic = match b {
                Backend::Sqlite => "printf('%010d', i)".to_string(),
                Backend::Postgres => "lpad(i::text, 10, '0')".to_string(),
            },
            lng = "117.2 + (i % 1000) / 5000.0",
            lat = "CASE WHEN i % 50 = 0 THEN NULL ELSE 39.6 + (i % 777) / 5000.0 END",
        ),
    );
    let mut tx = db.begin_write().await?;
    sqlx::query(&sql).execute(tx.conn()).await?;
    tx.commit().await?;
    Ok(())
}

async fn insert_reviewer(db: &Db, now: i64) -> anyhow::Result<String> {
    let id = Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO users (id, username, name, role, password_hash, created_at, updated_at) \
         VALUES ($1, 'bench-reviewer', '审核员', 'reviewer', 'x', $2, $3)",
    )
    .bind(&id)
    .bind(now)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(id)
}

/// Draft issues `ISSUE_PREFIX-{0..n}`, published afterwards by [`publish`].
const ISSUE_PREFIX: &str = "00000000-0000-4000-a000";
const ENTRY_PREFIX: &str = "00000000-0000-4000-9000";

async fn insert_issues(db: &Db, n: usize, by: &str, now: i64) -> anyhow::Result<()> {
    let b = db.backend();
    let criteria = serde_json::to_string(&foodcheck::lists::Criteria::default())?;
    let sql = insert_series(
        b,
        n,
        "list_issues",
        "id, issue_no, revision, title, theme, district, period_start, period_end, criteria, state, \
         created_by, created_at, updated_at",
        &format!(
            "{id}, '第' || (i + 1) || '期', 1, '宝坻区餐饮服务食品安全红黑榜', '校园周边', '宝坻区', \
             '2026-10-01', '2026-10-31', '{criteria}', 'draft', '{by}', {now} + i, {now} + i",
            id = id_sql(b, ISSUE_PREFIX, "i"),
        ),
    );
    sqlx::query(&sql).execute(db.pool()).await?;
    Ok(())
}

/// `per` entries in each of `issues` issues (entry `i` is number `i % per` of issue
/// `i / per`): the first `red` of each issue red, the rest black, the establishment
/// `(i) % establishments` (distinct within an issue while `per <= establishments`). Copies the
/// establishment's public identity as adding an entry does.
async fn insert_entries(
    db: &Db,
    issues: usize,
    per: usize,
    red: usize,
    establishments: usize,
    by: &str,
    now: i64,
) -> anyhow::Result<()> {
    let b = db.backend();
    let k = format!("(i % {per})");
    let black = format!("{k} >= {red}");
    let est = format!("(i % {establishments})");
    let sql = insert_series(
        b,
        issues * per,
        "list_entries",
        "id, issue_id, list_type, position, establishment_id, inspected_on, result, sign_name, \
         licensed_name, license_no, address, town, category, lng, lat, reason, measures, \
         created_by, created_at, updated_at",
        &format!(
            "{id}, {issue}, CASE WHEN {black} THEN 'black' ELSE 'red' END, \
             CASE WHEN {black} THEN {k} - {red} + 1 ELSE {k} + 1 END, {est_id}, '2026-10-12', \
             CASE WHEN {black} THEN 'non_compliant' ELSE 'compliant' END, \
             '老王烧烤第' || {est} || '号店', '天津市宝坻区老王餐饮管理有限公司', 'JY1120' || {lic}, \
             '天津市宝坻区钰华街道南关大街1-3号底商', '第' || ({est} % {TOWNS}) || '街道', '餐饮服务/小型餐馆', \
             117.2 + ({est} % 1000) / 5000.0, \
             CASE WHEN {est} % 50 = 0 THEN NULL ELSE 39.6 + ({est} % 777) / 5000.0 END, \
             '后厨整洁，台账齐全，从业人员持健康证明上岗', \
             CASE WHEN {black} THEN '责令改正通知书' ELSE NULL END, '{by}', {now}, {now}",
            id = id_sql(b, ENTRY_PREFIX, "i"),
            issue = id_sql(b, ISSUE_PREFIX, &format!("i / {per}")),
            est_id = id_sql(b, EST_PREFIX, &est),
            lic = match b {
                Backend::Sqlite => format!("printf('%010d', {est})"),
                Backend::Postgres => format!("lpad({est}::text, 10, '0')"),
            },
        ),
    );
    let mut tx = db.begin_write().await?;
    sqlx::query(&sql).execute(tx.conn()).await?;
    tx.commit().await?;
    Ok(())
}

/// Publishes the draft issues through the store's publish statement (the state change the
/// freeze triggers guard), issue `i` at `now + i` minutes.
async fn publish(db: &Db, issues: usize, by: &str, now: i64) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    for i in 0..issues {
        let id = format!("{ISSUE_PREFIX}-{i:012}");
        let ok = store::lists::publish(tx.conn(), &id, by, None, now + i as i64 * 60_000).await?;
        anyhow::ensure!(ok, "issue {id} was not a draft");
    }
    tx.commit().await?;
    Ok(())
}

/// Lifecycle updates after publication (append-only, as the real ones): a rectification on
/// every third black entry, a revocation on every 997th red one.
async fn insert_updates(
    db: &Db,
    issues: usize,
    per: usize,
    red: usize,
    now: i64,
) -> anyhow::Result<()> {
    let b = db.backend();
    let k = format!("(i % {per})");
    for (kind, prefix, cond, on, text) in [
        (
            "rectified",
            "00000000-0000-4000-b000",
            format!("{k} >= {red} AND i % 3 = 0"),
            "2026-11-15",
            "已整改，复查符合",
        ),
        (
            "revoked",
            "00000000-0000-4000-c000",
            format!("{k} < {red} AND i % 997 = 0"),
            "2026-11-20",
            "后续检查不符合，撤销红榜",
        ),
    ] {
        let sql = insert_series(
            b,
            issues * per,
            "list_entry_updates",
            "id, entry_id, kind, occurred_on, text, created_by, created_at",
            &format!(
                "{id}, {entry}, '{kind}', '{on}', '{text}', 'system', {now}",
                id = id_sql(b, prefix, "i"),
                entry = id_sql(b, ENTRY_PREFIX, "i"),
            ),
        );
        // The series' rows that qualify (the CTE's WHERE on SQLite, a filter on PostgreSQL).
        let sql = format!("{sql} WHERE {cond}");
        let mut tx = db.begin_write().await?;
        sqlx::query(&sql).execute(tx.conn()).await?;
        tx.commit().await?;
    }
    Ok(())
}

async fn analyze(db: &Db) -> anyhow::Result<()> {
    // What autovacuum does shortly after a bulk load on PostgreSQL (statistics and the
    // visibility map), and what the server does after its own bulk writes on SQLite: with
    // statistics SQLite plans differently (e.g. Bloom filters for joins), so the exports are
    // measured with them.
    let statement = match db.backend() {
        Backend::Postgres => "VACUUM ANALYZE",
        Backend::Sqlite => "ANALYZE",
    };
    sqlx::query(statement).execute(db.pool()).await?;
    Ok(())
}

// ---- The server ------------------------------------------------------------------------------

// ---- Part 1: exports -------------------------------------------------------------------------

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn export_issue() -> ExportIssue {
    ExportIssue {
        issue_no: "第1期".into(),
        revision: 1,
        revision_note: None,
        title: "宝坻区餐饮服务食品安全红黑榜".into(),
        theme: "校园周边".into(),
        district: "宝坻区".into(),
        period_start: day(2026, 10, 1),
        period_end: day(2026, 10, 31),
        published_on: day(2026, 11, 5),
        criteria: "红榜：符合；黑榜：不符合".into(),
    }
}

/// Synthetic rows shaped like the fixture's (one entry re-filled per row, as benches/export.rs).
struct Rows(ExportEntry);

impl Rows {
    fn new() -> Rows {
        Rows(ExportEntry {
            list_type: ListType::Red,
            position: 0,
            establishment_id: String::with_capacity(36),
            sign_name: String::with_capacity(64),
            licensed_name: "天津市宝坻区老王餐饮管理有限公司".into(),
            license_no: Some("JY11201000000001".into()),
            address: "天津市宝坻区钰华街道南关大街1-3号底商".into(),
            town: "第3街道".into(),
            category: "餐饮服务/小型餐馆".into(),
            inspected_on: Some(day(2026, 10, 12)),
            result: Some(ResultCode::Compliant),
            reason: "后厨整洁，台账齐全，从业人员持健康证明上岗".into(),
            measures: None,
            rectification: None,
            revocation: None,
            lng: Some(117.3081),
            lat: Some(39.7170),
        })
    }

    /// Row `i` of `n`: black first (as the export reads them), then red.
    fn entry(&mut self, i: usize, n: usize) -> &ExportEntry {
        let e = &mut self.0;
        let black = i < n - n / 2;
        e.list_type = if black {
            ListType::Black
        } else {
            ListType::Red
        };
        e.position = (if black { i } else { i - (n - n / 2) }) as u32 + 1;
        e.establishment_id.clear();
        write!(e.establishment_id, "{EST_PREFIX}-{i:012}").unwrap();
        e.sign_name.clear();
        write!(e.sign_name, "老王烧烤第{i}号店").unwrap();
        e.result = Some(if black {
            ResultCode::NonCompliant
        } else {
            ResultCode::Compliant
        });
        e.measures = black.then(|| "责令改正通知书".into());
        e.rectification = (black && i % 3 == 0).then(|| DatedNote {
            text: "已整改，复查符合".into(),
            on: day(2026, 11, 15),
        });
        e.lng = Some(117.2 + (i % 1000) as f64 / 5000.0);
        e.lat = (i % 50 != 0).then_some(39.6 + (i % 777) as f64 / 5000.0);
        &self.0
    }
}

/// Counts bytes and newlines, keeps none.
#[derive(Default)]
struct Count {
    bytes: u64,
    lines: u64,
}

impl Write for Count {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.bytes += b.len() as u64;
        self.lines += b.iter().filter(|&&c| c == b'\n').count() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Csv,
    Json,
    Geojson,
    Xlsx,
    Lives,
}

impl Format {
    const ALL: [Format; 5] = [
        Format::Csv,
        Format::Json,
        Format::Geojson,
        Format::Xlsx,
        Format::Lives,
    ];
    fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Geojson => "geojson",
            Format::Xlsx => "xlsx",
            Format::Lives => "lives",
        }
    }
    /// Whole archives, counted after the download (the others are counted as they stream).
    fn archive(self) -> bool {
        matches!(self, Format::Xlsx | Format::Lives)
    }
}

fn feed(issue: &ExportIssue) -> LivesFeed {
    // As ops::exports builds it.
    LivesFeed {
        feed_date: issue.published_on,
        feed_version: format!("{}-r{}", issue.issue_no, issue.revision),
        municipality_name: issue.district.clone(),
        municipality_url: String::new(),
        contact_email: String::new(),
        city: issue.district.clone(),
        state: String::new(),
    }
}

/// The writer fed `n` synthetic rows into a sink: (time, bytes, newlines).
fn synthetic(format: Format, n: usize) -> Result<(Duration, u64, u64), ExportError> {
    let t = Instant::now();
    let mut r = Rows::new();
    let issue = export_issue();
    let out = match format {
        Format::Csv => {
            let mut w = EntryCsv::new(Count::default())?;
            for i in 0..n {
                w.entry(r.entry(i, n))?;
            }
            w.finish()?
        }
        Format::Json => {
            let mut w = JsonWriter::new(Count::default(), &IssueMeta::new(&issue))?;
            for i in 0..n {
                w.item(r.entry(i, n))?;
            }
            w.finish()?
        }
        Format::Geojson => {
            let mut w = GeoJsonWriter::new(Count::default(), &issue)?;
            for i in 0..n {
                w.entry(r.entry(i, n))?;
            }
            w.finish()?
        }
        Format::Xlsx => {
            let mut w = XlsxListWriter::new(Count::default(), &issue)?;
            for i in 0..n {
                w.entry(r.entry(i, n))?;
            }
            w.finish()?
        }
        Format::Lives => {
            // Businesses, then each entry's basis inspection, as ops::exports does.
            let mut w = LivesWriter::new(Count::default(), feed(&issue))?;
            for i in 0..n {
                w.business(&r.entry(i, n).into())?;
            }
            for i in 0..n {
                let e = r.entry(i, n);
                let x = ExportInspection {
                    establishment_id: e.establishment_id.clone(),
                    date: e.inspected_on.unwrap(),
                    result: e.result.unwrap(),
                    kind: InspectionType::Routine,
                    failed_items: Vec::new(),
                };
                w.inspection(&x)?;
            }
            w.finish()?
        }
    };
    Ok((t.elapsed(), out.bytes, out.lines))
}

/// Newlines in a member of a ZIP archive, or `<row ` elements for an XLSX sheet.
fn count_in_zip(data: &[u8], member: &str, needle: &[u8]) -> anyhow::Result<u64> {
    let mut zip = zip::ZipArchive::new(io::Cursor::new(data))?;
    let mut f = zip.by_name(member)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut carry: Vec<u8> = Vec::new();
    let mut n = 0u64;
    loop {
        let got = f.read(&mut buf)?;
        if got == 0 {
            break;
        }
        carry.extend_from_slice(&buf[..got]);
        n += carry.windows(needle.len()).filter(|w| *w == needle).count() as u64;
        // Keep a tail shorter than the needle: a match across two reads is counted once.
        let keep = carry.len().min(needle.len() - 1);
        carry.drain(..carry.len() - keep);
    }
    Ok(n)
}

struct Download {
    headers: Duration,
    first_byte: Duration,
    total: Duration,
    bytes: u64,
    rss_before: u64,
    peak: u64,
    /// What was counted, and whether it is what `n` rows make.
    check: String,
    ok: bool,
    /// The server process's CPU time (user + system) for the download: on a shared machine
    /// it moves less than the wall time. On PostgreSQL the database's own CPU is not in it.
    cpu: Duration,
}

async fn download(
    server: &Server,
    issue_id: &str,
    format: Format,
    n: usize,
    synthetic_lines: u64,
) -> anyhow::Result<Download> {
    let client = reqwest::Client::new();
    let url = format!(
        "{}/public/v1/lists/{issue_id}/export?format={}",
        server.base,
        format.name()
    );
    let rss_before = server.reset_peak();
    let cpu_before = server.cpu_ticks();
    let t = Instant::now();
    let mut res = client.get(&url).send().await?;
    let headers = t.elapsed();
    anyhow::ensure!(
        res.status() == reqwest::StatusCode::OK,
        "{url}: {}",
        res.status()
    );
    let mut first_byte = None;
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut kept = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        if chunk.is_empty() {
            continue;
        }
        first_byte.get_or_insert_with(|| t.elapsed());
        bytes += chunk.len() as u64;
        if format.archive() {
            kept.extend_from_slice(&chunk);
        } else {
            lines += chunk.iter().filter(|&&c| c == b'\n').count() as u64;
        }
    }
    let total = t.elapsed();
    let cpu =
        Duration::from_secs_f64((server.cpu_ticks() - cpu_before) as f64 / ticks_per_second());
    let peak = server.peak();
    let (check, ok) = check_rows(format, n, lines, &kept, synthetic_lines)?;
    Ok(Download {
        headers,
        first_byte: first_byte.unwrap_or(total),
        total,
        bytes,
        rss_before,
        peak,
        check,
        ok,
        cpu,
    })
}

/// Whether an export holds what `n` entries make: `lines` are the newlines of a streamed
/// format, `archive` the bytes of an XLSX or LIVES file. (description, ok)
fn check_rows(
    format: Format,
    n: usize,
    lines: u64,
    archive: &[u8],
    synthetic_lines: u64,
) -> anyhow::Result<(String, bool)> {
    let n64 = n as u64;
    Ok(match format {
        Format::Csv => (format!("{lines} lines"), lines == n64 + 1),
        // `{"meta":…,"items":[` and each item on a line of its own, then `]}`.
        Format::Json | Format::Geojson => (
            format!("{lines} lines"),
            lines == n64 + 2 && lines == synthetic_lines,
        ),
        Format::Xlsx => {
            let red = count_in_zip(archive, "xl/worksheets/sheet1.xml", b"<row ")?;
            let black = count_in_zip(archive, "xl/worksheets/sheet2.xml", b"<row ")?;
            (
                format!("{red} + {black} sheet rows"),
                red == (n / 2) as u64 + 1 && black == (n - n / 2) as u64 + 1,
            )
        }
        Format::Lives => {
            let b = count_in_zip(archive, "businesses.csv", b"\n")?;
            let i = count_in_zip(archive, "inspections.csv", b"\n")?;
            (format!("{b} + {i} CSV lines"), b == n64 + 1 && i == n64 + 1)
        }
    })
}

/// The same export through `foodcheck export list ISSUE --format F --out FILE` (the same
/// `ops::exports::write_issue`, into a buffered file instead of the HTTP channel): total time,
/// bytes, the process's peak RSS (its VmHWM, sampled every 10 ms until it exits), rows check.
async fn cli_export(
    url: &str,
    dir: &Path,
    issue_id: &str,
    format: Format,
    n: usize,
    synthetic_lines: u64,
) -> anyhow::Result<(Duration, u64, u64, String, bool)> {
    let out = dir.join(format!("cli-export.{}", format.name()));
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_foodcheck"));
    for (k, _) in std::env::vars() {
        if k.starts_with("FOODCHECK_") {
            cmd.env_remove(k);
        }
    }
    cmd.args([
        "export",
        "list",
        issue_id,
        "--format",
        format.name(),
        "--out",
    ])
    .arg(&out)
    .env("FOODCHECK_DATA_DIR", dir.join("data"))
    .env("FOODCHECK_DATABASE_URL", url)
    .env("FOODCHECK_LOG_LEVEL", "warn")
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .kill_on_drop(true);
    let t = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = child.id().unwrap_or(0).to_string();
    let mut peak = 0;
    let status = loop {
        peak = peak.max(status_kib(&pid, "VmHWM:"));
        if let Some(s) = child.try_wait()? {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let took = t.elapsed();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use tokio::io::AsyncReadExt;
            let _ = e.read_to_string(&mut err).await;
        }
        anyhow::bail!(
            "foodcheck export list --format {}: {status}: {err}",
            format.name()
        );
    }
    let data = std::fs::read(&out)?;
    std::fs::remove_file(&out)?;
    let lines = data.iter().filter(|&&c| c == b'\n').count() as u64;
    let (check, ok) = check_rows(format, n, lines, &data, synthetic_lines)?;
    Ok((took, data.len() as u64, peak, check, ok))
}

async fn exports(
    backend: &str,
    n: usize,
    formats: &[Format],
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let dir = tempfile::tempdir()?;
    let (url, pg) = common::fresh_db(backend, dir.path(), "public").await?;
    let out = exports_in(backend, &url, dir.path(), n, formats).await;
    common::drop_fresh(pg).await?;
    out
}

async fn exports_in(
    backend: &str,
    url: &str,
    dir: &Path,
    n: usize,
    formats: &[Format],
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let started = Instant::now();
    let db = Db::connect(url, 4).await?;
    db.migrate().await?;
    let now = store::now_ms();
    let by = insert_reviewer(&db, now).await?;
    load_establishments(&db, n, now).await?;
    insert_issues(&db, 1, &by, now).await?;
    // One issue: entry i is establishment i; the first half red (as the synthetic rows'
    // second half; the export reads black first).
    insert_entries(&db, 1, n, n / 2, n, &by, now).await?;
    publish(&db, 1, &by, now).await?;
    insert_updates(&db, 1, n, n / 2, now).await?;
    analyze(&db).await?;
    db.close().await;
    eprintln!(
        "{backend}: {n} entries and establishments loaded and published in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let server = Server::start(url, dir).await?;
    let issue_id = format!("{ISSUE_PREFIX}-{:012}", 0);
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for &f in formats {
        // The baseline first, in this process (the server idle), then the download.
        let (syn, syn_bytes, syn_lines) =
            tokio::task::block_in_place(|| synthetic(f, n)).map_err(|e| anyhow::anyhow!("{e}"))?;
        let d = download(&server, &issue_id, f, n, syn_lines).await?;
        let ns = d.total.as_nanos() as f64 / n as f64;
        let syn_ns = syn.as_nanos() as f64 / n as f64;
        eprintln!(
            "{backend} {}: {} in {:.2} s, first byte {:.1} ms, peak {:.1} MB; synthetic {:.2} s ({:.1} MB); {}",
            f.name(),
            d.bytes,
            d.total.as_secs_f64(),
            d.first_byte.as_secs_f64() * 1000.0,
            d.peak as f64 / 1024.0,
            syn.as_secs_f64(),
            syn_bytes as f64 / 1e6,
            d.check
        );
        if !d.ok {
            failed.push(format!("{backend} {} over HTTP ({})", f.name(), d.check));
        }
        let ok = |b: bool| if b { "✓" } else { "✗" };
        rows.push(format!(
            "| {} | {backend} | HTTP | {:.1} ms | {:.1} ms | {:.2} s | {:.0} | {:.0} | {:.1} MB | {:.1} → {:.1} MB | {:.0} | {:.2}× | {:.0}× | {} {} |",
            f.name(),
            d.headers.as_secs_f64() * 1000.0,
            d.first_byte.as_secs_f64() * 1000.0,
            d.total.as_secs_f64(),
            ns,
            d.cpu.as_nanos() as f64 / n as f64,
            d.bytes as f64 / 1e6,
            d.rss_before as f64 / 1024.0,
            d.peak as f64 / 1024.0,
            syn_ns,
            ns / syn_ns,
            CENTRAL_NS_PER_ROW / ns,
            d.check,
            ok(d.ok),
        ));
        // The same database read and writer without HTTP (the server idle meanwhile).
        let (took, bytes, peak, check, cli_ok) =
            cli_export(url, dir, &issue_id, f, n, syn_lines).await?;
        let ns = took.as_nanos() as f64 / n as f64;
        eprintln!(
            "{backend} {} (CLI): {bytes} in {:.2} s, peak {:.1} MB; {check}",
            f.name(),
            took.as_secs_f64(),
            peak as f64 / 1024.0
        );
        if !cli_ok {
            failed.push(format!("{backend} {} by the CLI ({check})", f.name()));
        }
        rows.push(format!(
            "| {} | {backend} | CLI to a file | | | {:.2} s | {:.0} | | {:.1} MB | peak {:.1} MB (whole process) | {:.0} | {:.2}× | {:.0}× | {check} {} |",
            f.name(),
            took.as_secs_f64(),
            ns,
            bytes as f64 / 1e6,
            peak as f64 / 1024.0,
            syn_ns,
            ns / syn_ns,
            CENTRAL_NS_PER_ROW / ns,
            ok(cli_ok),
        ));
    }
    server.stop().await;
    if !failed.is_empty() {
        // The server's own account of the failed downloads.
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        for l in log.lines().filter(|l| !l.contains("INFO")).take(40) {
            eprintln!("server: {l}");
        }
    }
    Ok((rows, failed))
}

// ---- Part 2: the public API under load -------------------------------------------------------

/// What a route's requests look like.
enum Route {
    Fixed(String),
    /// An issue picked at random.
    Issue,
    /// A random page of a random issue's entries.
    EntriesPage {
        pages: usize,
    },
    /// Black entries of a random town, across every current issue.
    EntriesFiltered,
    /// `If-None-Match` with the ETag the URL answered with: 304 expected.
    Conditional {
        url: String,
        etag: String,
    },
}

struct Load {
    name: String,
    route: Route,
}

struct Outcome {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

/// One client. Open loop: it sends a request every `every` (from a phase of its own), and a
/// latency counts from when the request was due, so a server that falls behind is charged
/// its queueing delay too (no coordinated omission). A late client sends at once.
async fn client_loop(
    client: reqwest::Client,
    base: String,
    route: std::sync::Arc<Route>,
    issues: usize,
    seed: u64,
    every: Duration,
    until: Instant,
) -> Outcome {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Outcome {
        latencies: Vec::with_capacity(4096),
        errors: 0,
        first_error: None,
    };
    let mut url = String::with_capacity(160);
    let mut due = Instant::now() + every.mul_f64(rng.gen_range(0.0..1.0));
    loop {
        if due >= until {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        url.clear();
        url.push_str(&base);
        let mut expect = reqwest::StatusCode::OK;
        let mut etag = None;
        match &*route {
            Route::Fixed(path) => url.push_str(path),
            Route::Issue => {
                let i = rng.gen_range(0..issues);
                write!(url, "/public/v1/lists/{ISSUE_PREFIX}-{i:012}").unwrap();
            }
            Route::EntriesPage { pages } => {
                let i = rng.gen_range(0..issues);
                let p = rng.gen_range(1..=*pages);
                write!(
                    url,
                    "/public/v1/lists/{ISSUE_PREFIX}-{i:012}/entries?page={p}"
                )
                .unwrap();
            }
            Route::EntriesFiltered => {
                let t = rng.gen_range(0..TOWNS);
                write!(
                    url,
                    "/public/v1/entries?list_type=black&town={}",
                    urlencode(&format!("第{t}街道"))
                )
                .unwrap();
            }
            Route::Conditional { url: path, etag: e } => {
                url.push_str(path);
                etag = Some(e.clone());
                expect = reqwest::StatusCode::NOT_MODIFIED;
            }
        }
        let mut req = client.get(&url);
        if let Some(e) = etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, e);
        }
        let t = due;
        due += every;
        let res = match req.send().await {
            Ok(r) => {
                let status = r.status();
                match r.bytes().await {
                    Ok(body)
                        if status == expect && (status.as_u16() == 304 || !body.is_empty()) =>
                    {
                        Ok(())
                    }
                    Ok(body) => Err(format!(
                        "{url}: {status} {}",
                        String::from_utf8_lossy(&body[..body.len().min(200)])
                    )),
                    Err(e) => Err(format!("{url}: {e}")),
                }
            }
            Err(e) => Err(format!("{url}: {e}")),
        };
        let took = t.elapsed();
        match res {
            Ok(()) => out.latencies.push(took),
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
            }
        }
    }
    out
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            write!(out, "%{b:02X}").unwrap();
        }
    }
    out
}

/// `clients` concurrent clients on `route` for `run`, offering `rate` requests per second
/// between them: (latencies, errors, first error, elapsed).
async fn hammer(
    clients: &[reqwest::Client],
    base: &str,
    route: std::sync::Arc<Route>,
    issues: usize,
    rate: f64,
    run: Duration,
) -> (Vec<Duration>, u64, Option<String>, Duration) {
    let started = Instant::now();
    let until = started + run;
    let every = Duration::from_secs_f64(clients.len() as f64 / rate);
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(k, c)| {
            tokio::spawn(client_loop(
                c.clone(),
                base.to_string(),
                route.clone(),
                issues,
                k as u64 + 1,
                every,
                until,
            ))
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first = None;
    for t in tasks {
        let o = t.await.expect("client task");
        all.extend(o.latencies);
        errors += o.errors;
        if first.is_none() {
            first = o.first_error;
        }
    }
    (all, errors, first, started.elapsed())
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn percentile(v: &[Duration], p: f64) -> f64 {
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1000.0
}

async fn api(backend: &str) -> anyhow::Result<(Vec<String>, u64)> {
    let dir = tempfile::tempdir()?;
    let (url, pg) = common::fresh_db(backend, dir.path(), "publicapi").await?;
    let out = api_in(backend, &url, dir.path()).await;
    common::drop_fresh(pg).await?;
    out
}

async fn api_in(backend: &str, url: &str, dir: &Path) -> anyhow::Result<(Vec<String>, u64)> {
    let issues = env_num("FOODCHECK_BENCH_PUBLIC_ISSUES", 300).max(1);
    let per = env_num("FOODCHECK_BENCH_PUBLIC_ISSUE_ENTRIES", 200).clamp(1, API_ESTABLISHMENTS);
    let clients = env_num("FOODCHECK_BENCH_PUBLIC_CLIENTS", 200).max(1);
    let secs = env_num("FOODCHECK_BENCH_PUBLIC_SECS", 10).max(1);
    let rate = env_num("FOODCHECK_BENCH_PUBLIC_RATE", 1000).max(1) as f64;
    let started = Instant::now();
    let db = Db::connect(url, 4).await?;
    db.migrate().await?;
    let now = store::now_ms();
    let by = insert_reviewer(&db, now).await?;
    load_establishments(&db, API_ESTABLISHMENTS, now).await?;
    insert_issues(&db, issues, &by, now).await?;
    // Three quarters red, a quarter black.
    let red = per - per / 4;
    insert_entries(&db, issues, per, red, API_ESTABLISHMENTS, &by, now).await?;
    publish(&db, issues, &by, now).await?;
    insert_updates(&db, issues, per, red, now).await?;
    analyze(&db).await?;
    db.close().await;
    eprintln!(
        "{backend}: {issues} issues of {per} entries loaded and published in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let server = Server::start(url, dir).await?;
    let one: Vec<reqwest::Client> = (0..clients)
        .map(|_| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .tcp_nodelay(true)
                .timeout(Duration::from_secs(30))
                .build()
        })
        .collect::<Result<_, _>>()?;
    // The ETags conditional clients send (a plain GET first, as a cache would).
    let probe = &one[0];
    let target = format!("{ISSUE_PREFIX}-{:012}", issues / 2);
    let etag_of = async |path: &str| -> anyhow::Result<String> {
        let r = probe.get(format!("{}{path}", server.base)).send().await?;
        anyhow::ensure!(r.status() == 200, "{path}: {}", r.status());
        let tag = r
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
            .ok_or_else(|| anyhow::anyhow!("{path}: no ETag"))?;
        r.bytes().await?;
        Ok(tag)
    };
    let issue_path = format!("/public/v1/lists/{target}");
    let entries_path = format!("/public/v1/lists/{target}/entries?page=1");
    let issue_tag = etag_of(&issue_path).await?;
    let entries_tag = etag_of(&entries_path).await?;
    let pages = per.div_ceil(50);
    let [lists, entries, filtered] = list_loads(pages);
    let loads = [
        Load {
            name: "`GET /healthz` (baseline)".into(),
            route: Route::Fixed("/healthz".into()),
        },
        lists,
        Load {
            name: "`GET /public/v1/lists/{id}` (random issue)".into(),
            route: Route::Issue,
        },
        entries,
        filtered,
        Load {
            name: "`GET /public/v1/lists/{id}`, `If-None-Match` → 304".into(),
            route: Route::Conditional {
                url: issue_path,
                etag: issue_tag,
            },
        },
        Load {
            name: "`GET /public/v1/lists/{id}/entries?page=1`, `If-None-Match` → 304".into(),
            route: Route::Conditional {
                url: entries_path,
                etag: entries_tag,
            },
        },
    ];
    let (mut rows, mut errors_total) =
        measure(&one, &server, loads, issues, rate, secs, backend, "").await?;
    server.stop().await;
    // The same list routes with the page cache off: what building a page costs (a page asked
    // for the first time after a change, or a cache too small for the traffic).
    let server = Server::start_with(url, dir, &[("FOODCHECK_PUBLIC_PAGE_CACHE_MB", "0")]).await?;
    let uncached = list_loads(pages);
    let (more, errors) = measure(
        &one,
        &server,
        uncached,
        issues,
        rate,
        secs,
        backend,
        ", page cache off",
    )
    .await?;
    rows.extend(more);
    errors_total += errors;
    server.stop().await;
    if errors_total > 0 {
        eprintln!("{backend}: {errors_total} failed requests (see above)");
    }
    Ok((rows, errors_total))
}

/// The list routes, measured with the page cache and without it.
fn list_loads(pages: usize) -> [Load; 3] {
    [
        Load {
            name: "`GET /public/v1/lists` (first page, 50 issues)".into(),
            route: Route::Fixed("/public/v1/lists".into()),
        },
        Load {
            name: format!(
                "`GET /public/v1/lists/{{id}}/entries?page=N` (random issue, page 1–{pages})"
            ),
            route: Route::EntriesPage { pages },
        },
        Load {
            name: "`GET /public/v1/entries?list_type=black&town=…` (random town)".into(),
            route: Route::EntriesFiltered,
        },
    ]
}

/// Each load in turn on a running server: one table row per load, and the failed requests.
#[allow(clippy::too_many_arguments)]
async fn measure(
    one: &[reqwest::Client],
    server: &Server,
    loads: impl IntoIterator<Item = Load>,
    issues: usize,
    rate: f64,
    secs: usize,
    backend: &str,
    label: &str,
) -> anyhow::Result<(Vec<String>, u64)> {
    let mut rows = Vec::new();
    let mut errors_total = 0;
    for l in loads {
        let route = std::sync::Arc::new(l.route);
        // Warm-up (connections, caches), not counted.
        hammer(
            one,
            &server.base,
            route.clone(),
            issues,
            rate,
            Duration::from_secs(1),
        )
        .await;
        let rss_before = server.reset_peak();
        let cpu_before = server.cpu_ticks();
        let (mut lat, errors, first, took) = hammer(
            one,
            &server.base,
            route,
            issues,
            rate,
            Duration::from_secs(secs as u64),
        )
        .await;
        let cpu_ms = (server.cpu_ticks() - cpu_before) as f64 * 1000.0 / ticks_per_second();
        let peak = server.peak();
        lat.sort();
        errors_total += errors;
        if let Some(e) = &first {
            eprintln!("{backend} {}: {errors} errors, first: {e}", l.name);
        }
        anyhow::ensure!(!lat.is_empty(), "{}: no request succeeded", l.name);
        let rps = lat.len() as f64 / took.as_secs_f64();
        let cpu_per = cpu_ms / (lat.len() as f64 + errors as f64);
        eprintln!(
            "{backend} {}{label}: {} requests, {rps:.0}/s, p50 {:.2} p99 {:.2} max {:.2} ms, server CPU {cpu_per:.3} ms/request, RSS {:.1} → {:.1} MB",
            l.name,
            lat.len(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.last().unwrap().as_secs_f64() * 1000.0,
            rss_before as f64 / 1024.0,
            peak as f64 / 1024.0,
        );
        rows.push(format!(
            "| {}{label} | {backend} | {:.2} ms | {:.2} ms | {:.2} ms | {rps:.0} | {cpu_per:.3} ms | {} | {errors} | {:.1} MB |",
            l.name,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.last().unwrap().as_secs_f64() * 1000.0,
            lat.len(),
            peak as f64 / 1024.0,
        ));
    }
    Ok((rows, errors_total))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let only = std::env::var("FOODCHECK_BENCH_ONLY").ok();
    let part = std::env::var("FOODCHECK_BENCH_PUBLIC_PART").ok();
    let n = env_num("FOODCHECK_BENCH_PUBLIC_ROWS", 1_000_000).max(2);
    let formats: Vec<Format> = match std::env::var("FOODCHECK_BENCH_PUBLIC_FORMATS") {
        Ok(list) => Format::ALL
            .into_iter()
            .filter(|f| list.split(',').any(|x| x.trim() == f.name()))
            .collect(),
        Err(_) => Format::ALL.to_vec(),
    };
    let mut backends = Vec::new();
    if only.as_deref() != Some("postgres") {
        backends.push("sqlite");
    }
    if std::env::var("FOODCHECK_BENCH_POSTGRES_URL").is_ok() && only.as_deref() != Some("sqlite") {
        backends.push("postgres");
    }
    let mut export_rows = Vec::new();
    let mut export_failures: Vec<String> = Vec::new();
    let mut api_rows = Vec::new();
    let mut api_errors = 0;
    for b in &backends {
        if part.as_deref() != Some("api") {
            let (rows, failed) = exports(b, n, &formats).await?;
            export_rows.extend(rows);
            export_failures.extend(failed);
        }
        if part.as_deref() != Some("export") {
            let (rows, errors) = api(b).await?;
            api_rows.extend(rows);
            api_errors += errors;
        }
    }
    if !export_rows.is_empty() {
        println!("\nexports of one published issue of {n} entries, from the database over HTTP");
        println!("| format | backend | path | headers | first byte | total | ns per entry | server CPU ns per entry | bytes | RSS before → peak | synthetic ns per entry | vs synthetic | per row vs Central | rows checked |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for r in export_rows {
            println!("{r}");
        }
    }
    if !api_rows.is_empty() {
        println!("\npublic API under load (open loop, latency from when each request was due)");
        println!(
            "| route | backend | p50 | p99 | max | requests/s | server CPU per request | requests | errors | server peak RSS |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for r in api_rows {
            println!("{r}");
        }
    }
    // Wrong row counts and failed requests fail the run, after the figures are out.
    anyhow::ensure!(
        export_failures.is_empty(),
        "exports with wrong row counts: {}",
        export_failures.join("; ")
    );
    anyhow::ensure!(api_errors == 0, "{api_errors} API requests failed");
    Ok(())
}
