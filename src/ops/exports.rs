//! Exports of a published red/black list issue (CSV, XLSX, JSON, GeoJSON, LIVES ZIP), streamed
//! from the database: the entries are read row by row from one query and written as they come
//! ([`crate::export`] writers), so memory does not grow with the issue. The HTTP edge streams
//! the bytes as they are written; the CLI writes a file with a progress bar.

use std::io::Write;

use chrono::NaiveDate;
use futures::StreamExt;

use super::templates::{failed_codes, Templates};
use super::{Error, Result};
use crate::export::csv::InspectionCsv;
use crate::export::json::IssueMeta;
use crate::export::lives::{LivesBusiness, LivesFeed};
use crate::export::xlsx::XlsxHistoryWriter;
use crate::export::{
    csv::EntryCsv, geojson::GeoJsonWriter, json::JsonWriter, lives::LivesWriter,
    xlsx::XlsxListWriter, DatedNote, ExportEntry, ExportFormat, ExportInspection, ExportIssue,
    FailedItem, InspectionType, ListType, Progress,
};
use crate::public::{PublicEstablishment, PublicIssue};
use crate::store::{public as q, Db};

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("export: {e}"))
}

fn day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// A published issue as its exports describe it (with its entry counts, stored at
/// publication), or 404.
pub async fn issue(
    db: &Db,
    id: &str,
    zone: crate::clock::BureauZone,
) -> Result<(PublicIssue, ExportIssue)> {
    let mut conn = db.acquire().await?;
    let issue = q::issue(&mut conn, id)
        .await?
        .ok_or_else(|| Error::not_found("no such published issue"))?;
    let criteria: crate::lists::Criteria = q::issue_criteria(&mut conn, id)
        .await?
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_default();
    let export = ExportIssue {
        issue_no: issue.issue_no.clone(),
        revision: u32::try_from(issue.revision).unwrap_or(1),
        revision_note: issue.revision_note.clone(),
        title: issue.title.clone(),
        theme: issue.theme.clone(),
        district: issue.district.clone(),
        period_start: day(&issue.period_start).ok_or_else(|| internal("period_start"))?,
        period_end: day(&issue.period_end).ok_or_else(|| internal("period_end"))?,
        // The bureau's day of publication.
        published_on: chrono::DateTime::parse_from_rfc3339(&issue.published_at)
            .map(|t| zone.date_at(t.with_timezone(&chrono::Utc)))
            .map_err(|_| internal("published_at"))?,
        criteria: criteria.describe_zh(),
    };
    Ok((issue, export))
}

fn entry_of(r: q::ExportEntryRow) -> Result<ExportEntry> {
    let note = |text: Option<String>, on: Option<String>| match (text, on.as_deref().and_then(day))
    {
        (Some(text), Some(on)) => Some(DatedNote { text, on }),
        _ => None,
    };
    Ok(ExportEntry {
        list_type: ListType::parse(&r.list_type).ok_or_else(|| internal("list_type"))?,
        position: u32::try_from(r.position).unwrap_or(0),
        establishment_id: r.establishment_id,
        sign_name: r.sign_name,
        licensed_name: r.licensed_name,
        license_no: r.license_no,
        address: r.address,
        town: r.town,
        category: r.category,
        inspected_on: r.inspected_on.as_deref().and_then(day),
        result: r
            .result
            .as_deref()
            .map(|s| serde_json::from_value(serde_json::Value::String(s.into())))
            .transpose()
            .map_err(internal)?,
        reason: r.reason,
        measures: r.measures,
        rectification: note(r.rectified_text, r.rectified_on),
        revocation: note(r.revoked_text, r.revoked_on),
        lng: r.lng,
        lat: r.lat,
    })
}

/// Rows taken from the database per `block_on`: entering the runtime once per row cost more
/// than decoding the row.
const BATCH: usize = 256;

/// The largest keyset batch: batches start at [`BATCH`] (the first rows go out at once) and
/// double up to this, so a long export pays one query and one pool checkout per 4,096 rows
/// instead of per 256, while a batch in memory stays around 2 MB.
const MAX_BATCH: usize = 4096;

/// Feeds a query's rows to `each`, in order. Runs on a blocking thread (the writers are
/// synchronous). Only the database is driven with `block_on`, a batch of rows at a time:
/// `each` runs outside it, because a writer that hands bytes to a download blocks on the
/// channel (`blocking_send`), which panics inside a runtime context. Memory holds one batch.
fn drain<T: Send>(
    rt: &tokio::runtime::Handle,
    mut rows: futures::stream::BoxStream<'_, std::result::Result<T, sqlx::Error>>,
    mut each: impl FnMut(T) -> Result<()>,
) -> Result<()> {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let more = rt.block_on(async {
            while batch.len() < BATCH {
                match rows.next().await {
                    Some(row) => batch.push(row?),
                    None => return Ok::<_, sqlx::Error>(false),
                }
            }
            Ok(true)
        })?;
        for row in batch.drain(..) {
            each(row)?;
        }
        if !more {
            return Ok(());
        }
    }
}

/// Feeds an issue's rows to `each` in list order, in batches growing from [`BATCH`] to
/// [`MAX_BATCH`]: each batch is one keyset query on a connection taken for it (see
/// `store::public::export_entries`), run with `block_on`; `each` runs outside it, as in
/// [`drain`], with that batch's connection.
fn for_each_batch<T: q::InListOrder>(
    rt: &tokio::runtime::Handle,
    db: &Db,
    fetch: impl for<'c> Fn(
        &'c mut sqlx::AnyConnection,
        Option<&'c q::EntryKey>,
        i64,
    )
        -> futures::future::BoxFuture<'c, std::result::Result<Vec<T>, sqlx::Error>>,
    mut each: impl FnMut(T, &mut sqlx::AnyConnection) -> Result<()>,
) -> Result<()> {
    let mut key: Option<q::EntryKey> = None;
    let mut limit = BATCH;
    loop {
        let mut conn = rt.block_on(db.acquire())?;
        let rows = rt.block_on(fetch(&mut conn, key.as_ref(), limit as i64))?;
        let full = rows.len() == limit;
        key = rows.last().map(q::InListOrder::key);
        for row in rows {
            each(row, &mut conn)?;
        }
        if !full {
            return Ok(());
        }
        limit = (limit * 2).min(MAX_BATCH);
    }
}

/// Feeds every entry of the issue to `each`, in list order (see [`for_each_batch`]).
fn for_each_entry(
    rt: &tokio::runtime::Handle,
    db: &Db,
    issue_id: &str,
    mut each: impl FnMut(&ExportEntry) -> Result<()>,
) -> Result<()> {
    for_each_batch(
        rt,
        db,
        |c, k, limit| {
            let id = issue_id.to_string();
            Box::pin(async move { q::export_entries(c, &id, k, limit).await })
        },
        |row, _| each(&entry_of(row)?),
    )
}

/// Feeds each entry's basis inspection (with its failed items, named by the checklist version
/// it was made with) to `each`, in entry order; entries without an approved basis are
/// skipped. Same batches as [`for_each_entry`].
fn for_each_basis(
    rt: &tokio::runtime::Handle,
    db: &Db,
    issue_id: &str,
    mut each: impl FnMut(&ExportInspection) -> Result<()>,
) -> Result<()> {
    let mut templates = Templates::default();
    for_each_batch(
        rt,
        db,
        |c, k, limit| {
            let id = issue_id.to_string();
            Box::pin(async move { q::export_bases(c, &id, k, limit).await })
        },
        |r, conn| {
            let (Some(date), Some(result)) = (
                r.inspected_on.as_deref().and_then(day),
                r.result
                    .as_deref()
                    .and_then(crate::store::followup::parse_result),
            ) else {
                return Ok(());
            };
            let failed_items = match (&r.template_id, r.template_version) {
                (Some(id), Some(version)) => failed_items(
                    rt,
                    &mut templates,
                    conn,
                    id,
                    version,
                    r.evaluation.as_deref(),
                )?,
                _ => Vec::new(),
            };
            each(&ExportInspection {
                establishment_id: r.establishment_id,
                date,
                result,
                kind: r
                    .task_kind
                    .as_deref()
                    .and_then(InspectionType::of_task_kind)
                    .unwrap_or(InspectionType::Routine),
                failed_items,
            })
        },
    )
}

/// The failed items of a stored evaluation, with their text from the checklist version the
/// inspection was made with. Enters the runtime only for a version not read yet.
fn failed_items(
    rt: &tokio::runtime::Handle,
    templates: &mut Templates,
    conn: &mut sqlx::AnyConnection,
    template_id: &str,
    version: i64,
    evaluation: Option<&str>,
) -> Result<Vec<FailedItem>> {
    let codes = failed_codes(evaluation);
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    let content = rt.block_on(templates.get(conn, template_id, version))?;
    Ok(codes
        .iter()
        .filter_map(|c| content.item(c))
        .map(|i| FailedItem {
            code: i.code.clone(),
            text: i.text.clone(),
        })
        .collect())
}

/// Writes the issue's export in `format` to `out`. Blocking: call it from a blocking thread
/// (`spawn_blocking`) with the runtime's handle. Every format streams into `out` as the rows
/// are read.
pub fn write_issue(
    rt: &tokio::runtime::Handle,
    db: &Db,
    issue: &ExportIssue,
    issue_id: &str,
    format: ExportFormat,
    out: &mut (impl Write + Send + ?Sized),
    progress: Option<Progress>,
) -> Result<()> {
    let e = |err: crate::export::ExportError| internal(err);
    match format {
        ExportFormat::Csv => {
            let mut w = EntryCsv::new(out).map_err(e)?;
            if let Some(p) = progress {
                w.0.set_progress(p);
            }
            for_each_entry(rt, db, issue_id, |x| w.entry(x).map_err(e))?;
            w.finish().map_err(e)?;
        }
        ExportFormat::Json => {
            let mut w = JsonWriter::new(out, &IssueMeta::new(issue)).map_err(e)?;
            if let Some(p) = progress {
                w.set_progress(p);
            }
            for_each_entry(rt, db, issue_id, |x| w.item(x).map_err(e))?;
            w.finish().map_err(e)?;
        }
        ExportFormat::Geojson => {
            let mut w = GeoJsonWriter::new(out, issue).map_err(e)?;
            if let Some(p) = progress {
                w.set_progress(p);
            }
            for_each_entry(rt, db, issue_id, |x| w.entry(x).map_err(e))?;
            w.finish().map_err(e)?;
        }
        ExportFormat::Xlsx => {
            let mut w = XlsxListWriter::new(&mut *out, issue).map_err(e)?;
            if let Some(p) = progress {
                w.set_progress(p);
            }
            for_each_entry(rt, db, issue_id, |x| w.entry(x).map_err(e))?;
            w.finish().map_err(e)?;
        }
        ExportFormat::Lives => {
            let feed = LivesFeed {
                feed_date: issue.published_on,
                feed_version: format!("{}-r{}", issue.issue_no, issue.revision),
                municipality_name: issue.district.clone(),
                municipality_url: String::new(),
                contact_email: String::new(),
                city: issue.district.clone(),
                state: String::new(),
            };
            // The archive is streamed (data descriptors): it goes straight to `out`.
            let mut w = LivesWriter::new(&mut *out, feed).map_err(e)?;
            if let Some(p) = progress {
                w.set_progress(p);
            }
            // Businesses first, then each entry's basis inspection with its failed items (as
            // violations): two passes over the issue, one row at a time each.
            for_each_entry(rt, db, issue_id, |x| w.business(&x.into()).map_err(e))?;
            for_each_basis(rt, db, issue_id, |i| w.inspection(i).map_err(e))?;
            w.finish().map_err(e)?;
        }
    }
    Ok(())
}

/// The formats an establishment's history is offered in. GeoJSON is not: the public record of an
/// establishment has no location of its own (list entries carry the point they were listed at).
pub const HISTORY_FORMATS: [ExportFormat; 4] = [
    ExportFormat::Csv,
    ExportFormat::Json,
    ExportFormat::Xlsx,
    ExportFormat::Lives,
];

/// An establishment with a published history, as its exports describe it, or 404 (an unknown
/// establishment and one with nothing published look alike, as on the public API).
pub async fn history_subject(
    db: &Db,
    id: &str,
    zone: crate::clock::BureauZone,
) -> Result<PublicEstablishment> {
    let mut conn = db.acquire().await?;
    q::history_subject(&mut conn, id, zone)
        .await?
        .ok_or_else(|| Error::not_found("no published history for this establishment"))
}

/// The `meta` of a history's JSON export.
#[derive(serde::Serialize)]
struct HistoryMeta<'a> {
    establishment: &'a PublicEstablishment,
    disclaimer: &'static str,
    licence: &'static str,
}

/// Feeds the establishment's published inspections, oldest first, to `each`.
fn for_each_published(
    rt: &tokio::runtime::Handle,
    db: &Db,
    id: &str,
    zone: crate::clock::BureauZone,
    mut each: impl FnMut(&ExportInspection) -> Result<()>,
) -> Result<()> {
    let (mut conn, mut side) =
        rt.block_on(async { Ok::<_, Error>((db.acquire().await?, db.acquire().await?)) })?;
    let mut templates = Templates::default();
    drain(rt, q::export_history(&mut conn, id), |r| {
        let Some(result) = r
            .result
            .as_deref()
            .and_then(crate::store::followup::parse_result)
        else {
            return Ok(());
        };
        let date = chrono::DateTime::from_timestamp_millis(r.at)
            .map(|t| zone.date_at(t))
            .ok_or_else(|| internal("inspection time"))?;
        let failed_items = failed_items(
            rt,
            &mut templates,
            &mut side,
            &r.template_id,
            r.template_version,
            r.evaluation.as_deref(),
        )?;
        each(&ExportInspection {
            establishment_id: id.to_string(),
            date,
            result,
            kind: InspectionType::of_task_kind(&r.task_kind).unwrap_or(InspectionType::Routine),
            failed_items,
        })
    })
}

/// Writes an establishment's published history in `format` (one of [`HISTORY_FORMATS`]) to
/// `out`. Blocking, like [`write_issue`].
pub fn write_history(
    rt: &tokio::runtime::Handle,
    db: &Db,
    est: &PublicEstablishment,
    zone: crate::clock::BureauZone,
    format: ExportFormat,
    out: &mut (impl Write + Send + ?Sized),
) -> Result<()> {
    let e = |err: crate::export::ExportError| internal(err);
    let id = est.id.as_str();
    match format {
        ExportFormat::Csv => {
            let mut w = InspectionCsv::new(out).map_err(e)?;
            for_each_published(rt, db, id, zone, |i| w.inspection(i).map_err(e))?;
            w.finish().map_err(e)?;
        }
        ExportFormat::Json => {
            let meta = HistoryMeta {
                establishment: est,
                disclaimer: crate::export::DISCLAIMER,
                licence: crate::export::OPEN_LICENCE,
            };
            let mut w = JsonWriter::new(out, &meta).map_err(e)?;
            for_each_published(rt, db, id, zone, |i| w.item(i).map_err(e))?;
            w.finish().map_err(e)?;
        }
        ExportFormat::Xlsx => {
            let mut w = XlsxHistoryWriter::new(
                &mut *out,
                vec![
                    ("主体编号", est.id.clone()),
                    ("牌匾名称", est.sign_name.clone()),
                    ("营业执照名称", est.licensed_name.clone()),
                    ("许可证编号", est.license_no.clone().unwrap_or_default()),
                    ("经营地址", est.address.clone()),
                    ("乡镇街道", est.town.clone()),
                    ("业态", est.category.clone()),
                    ("风险等级", est.risk_grade.clone()),
                ],
            )
            .map_err(e)?;
            for_each_published(rt, db, id, zone, |i| w.inspection(i).map_err(e))?;
            w.finish().map_err(e)?;
        }
        ExportFormat::Lives => {
            let today = zone.date_at(chrono::Utc::now());
            let feed = LivesFeed {
                feed_date: today,
                feed_version: format!("{}-{}", est.id, today.format("%Y%m%d")),
                municipality_name: String::new(),
                municipality_url: String::new(),
                contact_email: String::new(),
                city: String::new(),
                state: String::new(),
            };
            let mut w = LivesWriter::new(&mut *out, feed).map_err(e)?;
            w.business(&LivesBusiness {
                id,
                name: &est.sign_name,
                address: &est.address,
                lng: None,
                lat: None,
            })
            .map_err(e)?;
            for_each_published(rt, db, id, zone, |i| w.inspection(i).map_err(e))?;
            w.finish().map_err(e)?;
        }
        ExportFormat::Geojson => {
            return Err(Error::bad_request(
                "invalid_format",
                "an establishment's history is exported as csv, json, xlsx or lives",
            ))
        }
    }
    Ok(())
}
