//! Export writer benchmarks (`cargo bench --bench export`; FOODCHECK_BENCH_EXPORT_ROWS to
//! change the 1,000,000). Synthetic rows, no database: what the writers cost per row, the time
//! to the first byte through the channel adapter, and the peak RSS of each run (the kernel's
//! high-water mark, reset before each run through /proc/self/clear_refs). Figures go to
//! BENCHMARKS.md (by the lead).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use foodcheck::export::csv::EntryCsv;
use foodcheck::export::geojson::GeoJsonWriter;
use foodcheck::export::json::{IssueMeta, JsonWriter};
use foodcheck::export::lives::{LivesFeed, LivesWriter};
use foodcheck::export::rows::ResultCode;
use foodcheck::export::stream;
use foodcheck::export::xlsx::XlsxListWriter;
use foodcheck::export::{
    DatedNote, ExportEntry, ExportError, ExportInspection, ExportIssue, FailedItem, InspectionType,
    ListType,
};

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn issue() -> ExportIssue {
    ExportIssue {
        issue_no: "2026年第11期".into(),
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

/// Rows made in place (one entry re-filled per row) so the figures are the writer's.
struct Rows {
    entry: ExportEntry,
    inspection: ExportInspection,
}

impl Rows {
    fn new() -> Rows {
        Rows {
            entry: ExportEntry {
                list_type: ListType::Red,
                position: 0,
                establishment_id: String::with_capacity(36),
                sign_name: String::with_capacity(64),
                licensed_name: "天津市宝坻区老王餐饮管理有限公司".into(),
                license_no: Some("JY11201000000001".into()),
                address: "天津市宝坻区钰华街道南关大街1-3号底商".into(),
                town: "钰华街道".into(),
                category: "餐饮服务/小型餐馆".into(),
                inspected_on: Some(day(2026, 10, 12)),
                result: Some(ResultCode::Compliant),
                reason: "后厨整洁，台账齐全，从业人员持健康证明上岗".into(),
                measures: None,
                rectification: None,
                revocation: None,
                lng: Some(117.3081),
                lat: Some(39.7170),
            },
            inspection: ExportInspection {
                establishment_id: String::with_capacity(36),
                date: day(2026, 10, 12),
                result: ResultCode::Compliant,
                kind: InspectionType::Routine,
                failed_items: Vec::new(),
            },
        }
    }

    /// Row `i` of `n`: the first half red, the second black (as the read side orders them).
    fn entry(&mut self, i: usize, n: usize) -> &ExportEntry {
        let e = &mut self.entry;
        let black = i >= n / 2;
        e.list_type = if black {
            ListType::Black
        } else {
            ListType::Red
        };
        e.position = (if black { i - n / 2 } else { i }) as u32 + 1;
        e.establishment_id.clear();
        write!(e.establishment_id, "00000000-0000-4000-8000-{i:012}").unwrap();
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
        &self.entry
    }

    fn inspection(&mut self, i: usize) -> &ExportInspection {
        let r = &mut self.inspection;
        r.establishment_id.clear();
        write!(r.establishment_id, "00000000-0000-4000-8000-{i:012}").unwrap();
        let failed = i % 5 == 0;
        r.result = if failed {
            ResultCode::NonCompliant
        } else {
            ResultCode::Compliant
        };
        r.kind = if i % 7 == 0 {
            InspectionType::Recheck
        } else {
            InspectionType::Routine
        };
        r.failed_items.clear();
        if failed {
            r.failed_items.push(FailedItem {
                code: "4.1".into(),
                text: "未按要求贮存食品".into(),
            });
            r.failed_items.push(FailedItem {
                code: "8.4".into(),
                text: "从业人员未持有效健康证明".into(),
            });
        }
        &self.inspection
    }
}

fn feed() -> LivesFeed {
    LivesFeed {
        feed_date: day(2026, 11, 5),
        feed_version: "2026-11".into(),
        municipality_name: "天津市宝坻区市场监督管理局".into(),
        municipality_url: "https://example.gov.cn/".into(),
        contact_email: "opendata@example.gov.cn".into(),
        city: "宝坻区".into(),
        state: "天津市".into(),
    }
}

fn status_kib(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resets the peak-RSS mark (Linux: writing 5 to clear_refs) and returns the current RSS.
fn reset_peak() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_kib("VmRSS:")
}

/// Counts bytes, keeps none.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Line {
    name: String,
    rows: usize,
    took: Duration,
    bytes: u64,
    rss_before: u64,
    peak: u64,
    first_byte: Option<Duration>,
}

fn run(name: &str, rows: usize, f: impl FnOnce() -> Result<u64, ExportError>) -> Line {
    let rss_before = reset_peak();
    let t = Instant::now();
    let bytes = f().expect(name);
    let took = t.elapsed();
    Line {
        name: name.into(),
        rows,
        took,
        bytes,
        rss_before,
        peak: status_kib("VmHWM:"),
        first_byte: None,
    }
}

/// Through the channel adapter, drained by an async reader: the time to the first chunk and
/// the whole run.
fn streamed(
    rt: &tokio::runtime::Runtime,
    name: &str,
    rows: usize,
    write: impl FnOnce(&mut stream::ChannelWriter) -> Result<(), ExportError> + Send + 'static,
) -> Line {
    let rss_before = reset_peak();
    let t = Instant::now();
    let (first, bytes) = rt.block_on(async move {
        let mut rx = stream::spawn_writer(write);
        let mut first = None;
        let mut bytes = 0u64;
        while let Some(chunk) = rx.recv().await {
            first.get_or_insert_with(|| t.elapsed());
            bytes += chunk.expect("no error").len() as u64;
        }
        (first, bytes)
    });
    Line {
        name: name.into(),
        rows,
        took: t.elapsed(),
        bytes,
        rss_before,
        peak: status_kib("VmHWM:"),
        first_byte: first,
    }
}

fn main() {
    let n: usize = std::env::var("FOODCHECK_BENCH_EXPORT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut lines = Vec::new();

    lines.push(run("csv (entries)", n, || {
        let mut r = Rows::new();
        let mut w = EntryCsv::new(Count(0))?;
        for i in 0..n {
            w.entry(r.entry(i, n))?;
        }
        Ok(w.finish()?.0)
    }));
    lines.push(run("geojson", n, || {
        let mut r = Rows::new();
        let mut w = GeoJsonWriter::new(Count(0), &issue())?;
        for i in 0..n {
            w.entry(r.entry(i, n))?;
        }
        Ok(w.finish()?.0)
    }));
    lines.push(run("json (meta+items)", n, || {
        let mut r = Rows::new();
        let issue = issue();
        let mut w = JsonWriter::new(Count(0), &IssueMeta::new(&issue))?;
        for i in 0..n {
            w.item(r.entry(i, n))?;
        }
        Ok(w.finish()?.0)
    }));
    lines.push(run(
        "lives zip (n businesses + n inspections)",
        2 * n,
        || {
            let mut r = Rows::new();
            let mut w = LivesWriter::new(Count(0), feed())?;
            for i in 0..n {
                w.business(&r.entry(i, n).into())?;
            }
            for i in 0..n {
                w.inspection(r.inspection(i))?;
            }
            Ok(w.finish()?.0)
        },
    ));
    lines.push(run("xlsx (n/2 红榜 + n/2 黑榜)", n, || {
        let mut r = Rows::new();
        let mut w = XlsxListWriter::new(Count(0), &issue())?;
        for i in 0..n {
            w.entry(r.entry(i, n))?;
        }
        Ok(w.finish()?.0)
    }));
    lines.push(streamed(&rt, "csv through the channel", n, move |out| {
        let mut r = Rows::new();
        let mut w = EntryCsv::new(out)?;
        for i in 0..n {
            w.entry(r.entry(i, n))?;
        }
        w.finish()?;
        Ok(())
    }));
    lines.push(streamed(
        &rt,
        "geojson through the channel",
        n,
        move |out| {
            let mut r = Rows::new();
            let mut w = GeoJsonWriter::new(out, &issue())?;
            for i in 0..n {
                w.entry(r.entry(i, n))?;
            }
            w.finish()?;
            Ok(())
        },
    ));
    lines.push(streamed(&rt, "xlsx through the channel", n, move |out| {
        let mut r = Rows::new();
        let mut w = XlsxListWriter::new(out, &issue())?;
        for i in 0..n {
            w.entry(r.entry(i, n))?;
        }
        w.finish()?;
        Ok(())
    }));
    lines.push(streamed(
        &rt,
        "lives through the channel",
        2 * n,
        move |out| {
            let mut r = Rows::new();
            let mut w = LivesWriter::new(out, feed())?;
            for i in 0..n {
                w.business(&r.entry(i, n).into())?;
            }
            for i in 0..n {
                w.inspection(r.inspection(i))?;
            }
            w.finish()?;
            Ok(())
        },
    ));

    println!("export writers, {n} synthetic rows (release, this machine)");
    println!(
        "{:<44} {:>9} {:>9} {:>8} {:>9} {:>10} {:>10} {:>11}",
        "writer", "rows", "total s", "ns/row", "out MB", "RSS0 MB", "peak MB", "1st byte ms"
    );
    for l in &lines {
        println!(
            "{:<44} {:>9} {:>9.2} {:>8.0} {:>9.1} {:>10.1} {:>10.1} {:>11}",
            l.name,
            l.rows,
            l.took.as_secs_f64(),
            l.took.as_nanos() as f64 / l.rows as f64,
            l.bytes as f64 / 1e6,
            l.rss_before as f64 / 1024.0,
            l.peak as f64 / 1024.0,
            l.first_byte
                .map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1000.0)),
        );
    }
}
