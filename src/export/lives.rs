//! The LIVES open-data feed (Yelp with San Francisco and NYC): a ZIP of businesses.csv,
//! inspections.csv, violations.csv, feed_info.csv and legend.csv.
//!
//! The archive is written as a stream (ZIP data descriptors, no `Seek`), so it can go straight
//! into [`super::stream`]: feed_info.csv and legend.csv first (sent before any row is read),
//! then businesses, then inspections. violations.csv comes from the
//! same inspection rows; it is spooled to an anonymous temp file while inspections.csv is
//! written, then copied into the archive, so one pass over the rows suffices and memory stays
//! at the buffers. The CSVs have no BOM (feed readers would take it into `business_id`) but are
//! RFC 4180 and neutralised like every other CSV. No contact data: `phone_number` is always
//! empty.
//!
//! LIVES wants a 0–100 score; the bureau gives a result, not a score. Each result is mapped to
//! a band and a fixed score in it (符合 → 100, 基本符合 → 75, 不符合 → 40), and legend.csv
//! says that the score stands for the result only.

use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};

use chrono::{Datelike, NaiveDate};
use zip::write::{SimpleFileOptions, StreamWriter};
use zip::{CompressionMethod, ZipWriter};

use super::csv::write_record;
use super::progress::{self, Progress};
use super::rows::{wgs84_point, InspectionType, ResultCode};
use super::{Cell, ExportEntry, ExportError, ExportInspection, Result};

/// The feed's own description (feed_info.csv) and where its businesses are.
#[derive(Debug, Clone)]
pub struct LivesFeed {
    pub feed_date: NaiveDate,
    pub feed_version: String,
    pub municipality_name: String,
    pub municipality_url: String,
    /// The bureau's public address for data questions (an office mailbox, never a person's).
    pub contact_email: String,
    /// `city` of every business (the district, e.g. 宝坻区).
    pub city: String,
    /// `state` of every business (the province-level unit, e.g. 天津市).
    pub state: String,
}

/// A row of businesses.csv: public identity only (LIVES' phone number is always left empty).
#[derive(Debug, Clone, Copy)]
pub struct LivesBusiness<'a> {
    pub id: &'a str,
    /// The name on the sign (牌匾名称), as a consumer knows the shop.
    pub name: &'a str,
    pub address: &'a str,
    /// WGS-84 degrees.
    pub lng: Option<f64>,
    pub lat: Option<f64>,
}

impl<'a> From<&'a ExportEntry> for LivesBusiness<'a> {
    fn from(e: &'a ExportEntry) -> LivesBusiness<'a> {
        LivesBusiness {
            id: &e.establishment_id,
            name: &e.sign_name,
            address: &e.address,
            lng: e.lng,
            lat: e.lat,
        }
    }
}

/// A score band of legend.csv.
pub struct Band {
    pub result: ResultCode,
    pub min: u8,
    pub max: u8,
    /// The score an inspection with this result gets.
    pub score: u8,
}

pub const BANDS: [Band; 3] = [
    Band {
        result: ResultCode::Compliant,
        min: 90,
        max: 100,
        score: 100,
    },
    Band {
        result: ResultCode::BasicallyCompliant,
        min: 60,
        max: 89,
        score: 75,
    },
    Band {
        result: ResultCode::NonCompliant,
        min: 0,
        max: 59,
        score: 40,
    },
];

pub fn score(result: ResultCode) -> u8 {
    BANDS
        .iter()
        .find(|b| b.result == result)
        .map_or(0, |b| b.score)
}

const BUSINESS_HEADERS: [&str; 9] = [
    "business_id",
    "name",
    "address",
    "city",
    "state",
    "postal_code",
    "latitude",
    "longitude",
    "phone_number",
];
const INSPECTION_HEADERS: [&str; 5] = ["business_id", "score", "date", "description", "type"];
const VIOLATION_HEADERS: [&str; 4] = ["business_id", "date", "code", "description"];
/// Rows are gathered to this size before going into the compressor.
const BUFFER: usize = 64 * 1024;

#[derive(PartialEq)]
enum Phase {
    Businesses,
    Inspections,
}

pub struct LivesWriter<W: Write> {
    zip: ZipWriter<StreamWriter<W>>,
    buf: Vec<u8>,
    phase: Phase,
    violations: BufWriter<File>,
    feed: LivesFeed,
    progress: Option<Progress>,
}

fn options() -> SimpleFileOptions {
    // large_file: the sizes are unknown when a streamed entry starts, so allow ZIP64.
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .large_file(true)
}

/// `YYYYMMDD`, LIVES' date.
fn lives_date(d: NaiveDate) -> Cell<'static> {
    Cell::Int(i64::from(d.year()) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day()))
}

impl<W: Write> LivesWriter<W> {
    pub fn new(out: W, feed: LivesFeed) -> Result<LivesWriter<W>> {
        let mut zip = ZipWriter::new_stream(out);
        // The feed's description and legend need no rows: they go first and are sent at once,
        // so a reader gets bytes before the first rows are read (readers find files by name).
        write_small_files(&mut zip, &feed)?;
        zip.flush()?;
        zip.start_file("businesses.csv", options())?;
        let mut buf = Vec::with_capacity(BUFFER + 4096);
        write_record(&mut buf, BUSINESS_HEADERS.iter().map(|h| Cell::text(h)))?;
        let mut violations = BufWriter::with_capacity(BUFFER, tempfile::tempfile()?);
        write_record(
            &mut violations,
            VIOLATION_HEADERS.iter().map(|h| Cell::text(h)),
        )?;
        Ok(LivesWriter {
            zip,
            buf,
            phase: Phase::Businesses,
            violations,
            feed,
            progress: None,
        })
    }

    pub fn set_progress(&mut self, progress: Progress) {
        self.progress = Some(progress);
    }

    fn spill(&mut self, at_least: usize) -> io::Result<()> {
        if self.buf.len() >= at_least {
            self.zip.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// A business (its public identity as listed or published). Every business comes before
    /// the first inspection.
    pub fn business(&mut self, e: &LivesBusiness<'_>) -> Result<()> {
        if self.phase != Phase::Businesses {
            return Err(ExportError::OutOfOrder("a business after the inspections"));
        }
        let point = wgs84_point(e.lng, e.lat);
        write_record(
            &mut self.buf,
            [
                Cell::text(e.id),
                Cell::text(e.name),
                Cell::text(e.address),
                Cell::text(&self.feed.city),
                Cell::text(&self.feed.state),
                Cell::Empty,
                point.map_or(Cell::Empty, |p| Cell::Float(p.1)),
                point.map_or(Cell::Empty, |p| Cell::Float(p.0)),
                Cell::Empty,
            ],
        )?;
        self.spill(BUFFER)?;
        progress::tick(&mut self.progress);
        Ok(())
    }

    /// An approved inspection of a business already written, and its failed items (as
    /// violations).
    pub fn inspection(&mut self, i: &ExportInspection) -> Result<()> {
        if self.phase == Phase::Businesses {
            self.spill(0)?;
            self.zip.start_file("inspections.csv", options())?;
            write_record(
                &mut self.buf,
                INSPECTION_HEADERS.iter().map(|h| Cell::text(h)),
            )?;
            self.phase = Phase::Inspections;
        }
        let kind = match i.kind {
            InspectionType::Routine => "routine",
            InspectionType::Recheck => "followup",
        };
        write_record(
            &mut self.buf,
            [
                Cell::text(&i.establishment_id),
                Cell::Int(score(i.result).into()),
                lives_date(i.date),
                Cell::text(i.result.label_zh()),
                Cell::text(kind),
            ],
        )?;
        for f in &i.failed_items {
            write_record(
                &mut self.violations,
                [
                    Cell::text(&i.establishment_id),
                    lives_date(i.date),
                    Cell::text(&f.code),
                    Cell::text(&f.text),
                ],
            )?;
        }
        self.spill(BUFFER)?;
        progress::tick(&mut self.progress);
        Ok(())
    }

    /// Writes violations.csv and closes the archive.
    pub fn finish(mut self) -> Result<W> {
        if self.phase == Phase::Businesses {
            self.spill(0)?;
            self.zip.start_file("inspections.csv", options())?;
            write_record(
                &mut self.buf,
                INSPECTION_HEADERS.iter().map(|h| Cell::text(h)),
            )?;
        }
        self.spill(0)?;
        progress::done(&mut self.progress);

        self.zip.start_file("violations.csv", options())?;
        let mut spool = self
            .violations
            .into_inner()
            .map_err(|e| ExportError::Io(e.into_error()))?;
        spool.rewind()?;
        io::copy(&mut spool, &mut self.zip)?;

        Ok(self.zip.finish()?.into_inner())
    }
}

/// feed_info.csv and legend.csv.
fn write_small_files<W: Write>(
    zip: &mut ZipWriter<StreamWriter<W>>,
    feed: &LivesFeed,
) -> Result<()> {
    let mut small = Vec::new();
    write_record(
        &mut small,
        [
            "feed_date",
            "feed_version",
            "municipality_name",
            "municipality_url",
            "contact_email",
        ]
        .map(Cell::text),
    )?;
    write_record(
        &mut small,
        [
            lives_date(feed.feed_date),
            Cell::text(&feed.feed_version),
            Cell::text(&feed.municipality_name),
            Cell::text(&feed.municipality_url),
            Cell::text(&feed.contact_email),
        ],
    )?;
    zip.start_file("feed_info.csv", options())?;
    zip.write_all(&small)?;

    small.clear();
    write_record(
        &mut small,
        ["minimum_score", "maximum_score", "description"].map(Cell::text),
    )?;
    for b in &BANDS {
        let text = format!(
            "{}（检查结果，非评分：本数据源以分数{}代表该结果）",
            b.result.label_zh(),
            b.score
        );
        write_record(
            &mut small,
            [
                Cell::Int(b.min.into()),
                Cell::Int(b.max.into()),
                Cell::Text(text.into()),
            ],
        )?;
    }
    zip.start_file("legend.csv", options())?;
    zip.write_all(&small)?;

    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_cover_0_to_100_and_hold_their_scores() {
        let mut covered = [false; 101];
        for b in &BANDS {
            assert!(b.min <= b.score && b.score <= b.max);
            for s in b.min..=b.max {
                assert!(!covered[s as usize], "{s} in two bands");
                covered[s as usize] = true;
            }
        }
        assert!(covered.iter().all(|c| *c));
    }

    /// Records what reached it, and how much of it had been flushed.
    #[derive(Clone, Default)]
    struct Seen(std::rc::Rc<std::cell::RefCell<(Vec<u8>, usize)>>);

    impl Write for Seen {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().0.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            let mut s = self.0.borrow_mut();
            s.1 = s.0.len();
            Ok(())
        }
    }

    #[test]
    fn the_feed_description_goes_out_before_any_row_is_read() {
        let seen = Seen::default();
        let feed = LivesFeed {
            feed_date: NaiveDate::from_ymd_opt(2026, 11, 5).unwrap(),
            feed_version: "1".into(),
            municipality_name: "天津市宝坻区市场监督管理局".into(),
            municipality_url: "https://example.gov.cn".into(),
            contact_email: "data@example.gov.cn".into(),
            city: "宝坻区".into(),
            state: "天津市".into(),
        };
        let w = LivesWriter::new(seen.clone(), feed).unwrap();
        let flushed = {
            let s = seen.0.borrow();
            s.0[..s.1].to_vec()
        };
        let has = |name: &[u8]| flushed.windows(name.len()).any(|x| x == name);
        assert!(has(b"feed_info.csv") && has(b"legend.csv"), "{flushed:?}");
        assert!(!has(b"businesses.csv"));
        // The whole archive still reads back with its five files.
        w.finish().unwrap();
        let bytes = seen.0.borrow().0.clone();
        let zip = zip::ZipArchive::new(io::Cursor::new(bytes)).unwrap();
        let mut names: Vec<&str> = zip.file_names().collect();
        names.sort_unstable();
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
    }

    #[test]
    fn dates_are_yyyymmdd() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 5).unwrap();
        assert_eq!(lives_date(d), Cell::Int(20260305));
    }
}
