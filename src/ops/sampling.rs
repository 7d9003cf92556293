//! 食品安全抽检 use cases: the food category tree (admin import), samples (抽样单) submitted
//! by their samplers, the chain of custody, who may see a sample, its stored deadlines and the
//! reviewers' deadline queue. Lab accounts and lab results are in [`super::lab`].
//!
//! Each write is one transaction with its audit events; the rules are in `crate::sampling`
//! (form check, numbers, custody decision, deadlines). Every write that changes a sample's
//! facts recomputes its deadlines inside the same transaction ([`recompute_deadlines`]).
//!
//! Who sees a sample ([`visible`]): admins and reviewers every sample; an inspector the
//! samples they are a sampler of; a lab account the samples sent to its lab. Any other caller
//! is answered exactly as for a sample that does not exist (404).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::{access, Ctx, Error, Result};
use crate::audit::{Action, Event, RecordKind};
use crate::auth::Role;
use crate::clock::BureauZone;
use crate::establishment::import::{Format, ImportError, RowProblem};
use crate::establishment::{FieldError, Warning};
use crate::sampling::categories::{self, Category};
use crate::sampling::custody::{self, Kind as CustodyKind};
use crate::sampling::deadlines::{self, Deadline, Facts, Period, Periods, Rule};
use crate::sampling::form::{self, Form};
use crate::sampling::number::{self, Prefix};
use crate::sampling::results::Verdict;
use crate::store::sampling::{self as q, CustodyRow, DeadlineRow, SampleRow};
use crate::store::{self, Db};

const OFFICE: &[Role] = &[Role::Admin, Role::Reviewer];

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("{e}"))
}

fn not_found() -> Error {
    Error::not_found("no such sample")
}

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

pub(super) fn date_of(zone: BureauZone, ms: i64) -> NaiveDate {
    zone.date_at(DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default())
}

pub(super) fn today(zone: BureauZone) -> NaiveDate {
    zone.date_at(Utc::now())
}

// ---- Food categories ---------------------------------------------------------------------

/// A stored category.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategoryView {
    pub code: String,
    /// 1 (食品大类) to 4 (食品细类).
    pub level: i64,
    /// `null` for level 1.
    pub parent_code: Option<String>,
    pub name: String,
    /// Tested for microbiological items; `null`: not stated.
    pub microbiological: Option<bool>,
}

fn category_view(r: q::CategoryRow) -> CategoryView {
    CategoryView {
        code: r.code,
        level: r.level,
        parent_code: r.parent_code,
        name: r.name,
        microbiological: r.microbiological.map(|m| m != 0),
    }
}

/// The stored tree, by code (admin, reviewer, inspector).
pub async fn list_categories(db: &Db, ctx: &Ctx) -> Result<Vec<CategoryView>> {
    access::require(ctx, &[Role::Admin, Role::Reviewer, Role::Inspector])?;
    let mut conn = db.acquire().await?;
    Ok(q::categories(&mut conn)
        .await?
        .into_iter()
        .map(category_view)
        .collect())
}

/// The outcome of a category import (or of a dry run).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategoryImportReport {
    /// True when nothing was written (requested dry run).
    pub dry_run: bool,
    /// `csv` or `xlsx`, sniffed from the bytes.
    pub format: String,
    /// Data rows read (blank rows skipped).
    pub rows: u32,
    /// Categories created (or that would be, on a dry run).
    pub created: u32,
    /// Stored categories updated (same code).
    pub updated: u32,
    /// Problems that refuse the whole import, each with its row (at most 1,000 listed).
    pub errors: Vec<RowProblem>,
    /// Number of errors in total.
    pub errors_total: u32,
}

/// Why a category import wrote nothing.
#[derive(Debug)]
pub enum CategoryImportFailure {
    /// The file could not be read as a table (format, header).
    File(ImportError),
    /// Rows have errors; nothing was written.
    Rows(CategoryImportReport),
    /// Not allowed, or the database failed.
    Failed(Error),
}

impl From<Error> for CategoryImportFailure {
    fn from(e: Error) -> Self {
        CategoryImportFailure::Failed(e)
    }
}

impl From<sqlx::Error> for CategoryImportFailure {
    fn from(e: sqlx::Error) -> Self {
        CategoryImportFailure::Failed(e.into())
    }
}

/// Imports the category tree from a CSV or XLSX file (admin): rows are created or updated by
/// code, parents before children; any row problem (cells, a missing parent, an inconsistent
/// level) refuses the whole file with its row numbers. `dry_run` checks and reports only.
pub async fn import_categories(
    db: &Db,
    ctx: &Ctx,
    bytes: &[u8],
    dry_run: bool,
) -> std::result::Result<CategoryImportReport, CategoryImportFailure> {
    access::require(ctx, &[Role::Admin])?;
    let parsed =
        categories::parse(bytes, categories::MAX_ROWS).map_err(CategoryImportFailure::File)?;
    let mut tx = db.begin_write().await?;
    let stored: HashMap<String, u8> = q::categories(tx.conn())
        .await?
        .into_iter()
        .map(|r| (r.code, r.level as u8))
        .collect();
    let mut errors = parsed.problems();
    errors.extend(categories::check_tree(&parsed.rows, &stored));
    errors.sort_by_key(|p| p.row);
    let mut rows: Vec<&Category> = parsed
        .rows
        .iter()
        .filter_map(|r| r.category.as_ref())
        .collect();
    let created = rows
        .iter()
        .filter(|c| !stored.contains_key(&c.code))
        .count() as u32;
    let mut report = CategoryImportReport {
        dry_run,
        format: match parsed.format {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
        .into(),
        rows: parsed.rows.len() as u32,
        created,
        updated: rows.len() as u32 - created,
        errors_total: errors.len() as u32,
        errors,
    };
    report.errors.truncate(1000);
    if report.errors_total > 0 {
        return Err(CategoryImportFailure::Rows(report));
    }
    if dry_run {
        return Ok(report);
    }
    // Parents first: the foreign key is checked per statement.
    rows.sort_by_key(|c| c.level);
    let now = store::now_ms();
    for c in &rows {
        q::upsert_category(
            tx.conn(),
            &q::CategoryRow {
                code: c.code.clone(),
                level: i64::from(c.level),
                parent_code: c.parent_code.clone(),
                name: c.name.clone(),
                microbiological: c.microbiological.map(store::flag),
            },
            now,
        )
        .await?;
    }
    let event = Event::new(
        Action::FoodCategoriesImported,
        RecordKind::Batch,
        "food_categories",
    )
    .set("created", report.created)
    .set("updated", report.updated);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(report)
}

// ---- Views -------------------------------------------------------------------------------

/// Whose view of a sample the caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// Admins, reviewers, the system: everything.
    Office,
    /// One of the sample's samplers: everything.
    Sampler,
    /// The sample's lab: everything but the premises' personal fields.
    Lab,
}

/// Form fields a lab does not see: the premises' legal representative and phone.
pub const PERSONAL_FORM_FIELDS: [&str; 2] = ["premises_legal_representative", "premises_contact"];

/// How the caller may see `s`; 404 (as for a missing sample) when not at all.
pub(super) async fn visible(conn: &mut AnyConnection, ctx: &Ctx, s: &SampleRow) -> Result<Viewer> {
    let Some(user) = ctx.user_id() else {
        return Ok(Viewer::Office);
    };
    match ctx.actor.role {
        Some(Role::Admin | Role::Reviewer) => Ok(Viewer::Office),
        Some(Role::Inspector) => {
            if q::samplers(conn, &s.id).await?.iter().any(|u| u == user) {
                Ok(Viewer::Sampler)
            } else {
                Err(not_found())
            }
        }
        Some(Role::Lab) => match q::user_lab(conn, user).await? {
            Some(Some(lab)) if lab == s.lab_id => Ok(Viewer::Lab),
            _ => Err(not_found()),
        },
        None => Err(not_found()),
    }
}

/// Loads a sample the caller may see.
pub(super) async fn load_visible(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    id: &str,
) -> Result<(SampleRow, Viewer)> {
    let s = q::sample(conn, id).await?.ok_or_else(not_found)?;
    let v = visible(conn, ctx, &s).await?;
    Ok((s, v))
}

/// Sample `id` for a read only: whoever [`load_visible`] lets through, and also the lab named
/// for the sample's requested 复检 (as a [`Viewer::Lab`]: it tests the retained sample and reads
/// the form, custody and attachments, but writes nothing, since writes use `load_visible`).
pub(super) async fn load_readable(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    id: &str,
) -> Result<(SampleRow, Viewer)> {
    let s = q::sample(conn, id).await?.ok_or_else(not_found)?;
    match visible(conn, ctx, &s).await {
        Ok(v) => Ok((s, v)),
        Err(e) => {
            if !retest_lab_reads(conn, ctx, &s).await? {
                return Err(e);
            }
            Ok((s, Viewer::Lab))
        }
    }
}

/// 404 unless the caller may see the sample (for edges that check before reading a body).
pub async fn ensure_visible(db: &Db, ctx: &Ctx, id: &str) -> Result<Viewer> {
    let mut conn = db.acquire().await?;
    Ok(load_visible(&mut conn, ctx, id).await?.1)
}

/// A custody event as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CustodyView {
    /// Chosen by the recorder (UUID).
    pub id: String,
    pub kind: CustodyKind,
    /// When it happened, Unix ms.
    pub occurred_at: i64,
    /// User id of who recorded it.
    pub actor_id: String,
    pub actor_role: Role,
    pub place: String,
    pub note: Option<String>,
    /// `received` only.
    pub sample_condition: Option<String>,
    /// `received` only; `false` flags the sample (`seal_broken`).
    pub seal_intact: Option<bool>,
    /// When the server stored it, Unix ms.
    pub recorded_at: i64,
}

fn custody_view(r: &CustodyRow) -> Result<CustodyView> {
    Ok(CustodyView {
        id: r.id.clone(),
        kind: CustodyKind::parse(&r.kind).ok_or_else(|| internal(&r.kind))?,
        occurred_at: r.occurred_at,
        actor_id: r.actor_id.clone(),
        actor_role: r.actor_role.parse().map_err(internal)?,
        place: r.place.clone(),
        note: r.note.clone(),
        sample_condition: r.sample_condition.clone(),
        seal_intact: r.seal_intact.map(|b| b != 0),
        recorded_at: r.recorded_at,
    })
}

fn custody_event(r: &CustodyRow) -> Result<custody::Event> {
    let v = custody_view(r)?;
    Ok(custody::Event {
        id: v.id,
        kind: v.kind,
        at: v.occurred_at,
        actor: v.actor_id,
        actor_role: v.actor_role,
        place: v.place,
        sample_condition: v.sample_condition,
        seal_intact: v.seal_intact,
    })
}

/// A sample's custody state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SampleState {
    /// Submitted; no custody event yet.
    Submitted,
    Sealed,
    Dispatched,
    Received,
    Testing,
    Reported,
}

impl SampleState {
    pub fn as_str(self) -> &'static str {
        match self {
            SampleState::Submitted => "submitted",
            SampleState::Sealed => "sealed",
            SampleState::Dispatched => "dispatched",
            SampleState::Received => "received",
            SampleState::Testing => "testing",
            SampleState::Reported => "reported",
        }
    }

    pub fn parse(s: &str) -> Option<SampleState> {
        [
            SampleState::Submitted,
            SampleState::Sealed,
            SampleState::Dispatched,
            SampleState::Received,
            SampleState::Testing,
            SampleState::Reported,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    fn of(kind: CustodyKind) -> SampleState {
        match kind {
            CustodyKind::Sealed => SampleState::Sealed,
            CustodyKind::Dispatched => SampleState::Dispatched,
            CustodyKind::Received => SampleState::Received,
            CustodyKind::Testing => SampleState::Testing,
            CustodyKind::Reported => SampleState::Reported,
        }
    }
}

/// A sample in lists (no premises details).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SampleSummary {
    pub id: String,
    /// 抽样单编号.
    pub sample_no: String,
    pub sample_name: String,
    pub category_code: String,
    pub purpose: form::Purpose,
    pub stage: form::Stage,
    pub lab_id: String,
    pub state: SampleState,
    /// The lab received it with its seal broken.
    pub seal_broken: bool,
    /// 抽样时间, Unix ms.
    pub sampled_at: i64,
    /// Submission time, Unix ms.
    pub created_at: i64,
}

pub(super) fn summary_of(s: &SampleRow) -> Result<SampleSummary> {
    Ok(SampleSummary {
        id: s.id.clone(),
        sample_no: s.sample_no.clone(),
        sample_name: s.sample_name.clone(),
        category_code: s.category_code.clone(),
        purpose: form::Purpose::parse(&s.purpose).ok_or_else(|| internal(&s.purpose))?,
        stage: form::Stage::parse(&s.stage).ok_or_else(|| internal(&s.stage))?,
        lab_id: s.lab_id.clone(),
        state: SampleState::parse(&s.state).ok_or_else(|| internal(&s.state))?,
        seal_broken: s.seal_broken != 0,
        sampled_at: s.sampled_at,
        created_at: s.created_at,
    })
}

/// How a 抽样单编号 came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SampleNoKind {
    /// Copied from the national platform.
    National,
    /// Generated by this server (`{prefix}-{YYYYMMDD}-{seq}`).
    Generated,
}

/// Everything about a sample the caller may see.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SampleDetail {
    #[serde(flatten)]
    pub summary: SampleSummary,
    pub sample_no_kind: SampleNoKind,
    /// The sampling task it was submitted against, if any.
    pub task_id: Option<String>,
    /// The sampled premises in the registry.
    pub establishment_id: String,
    /// The samplers' user ids, in form order (the submitter among them).
    pub samplers: Vec<String>,
    /// The 抽样单 as submitted (wire form of `Form`: `"/"` not applicable, `null` missing; a
    /// generated 抽样单编号 is in `sample_no`). The lab's view leaves out
    /// `premises_legal_representative` and `premises_contact`.
    #[schema(value_type = Object)]
    pub form: serde_json::Value,
    /// Stored with the form but not refused (e.g. `uscc_check_failed`).
    pub warnings: Vec<Warning>,
    /// The chain of custody, in order.
    pub custody: Vec<CustodyView>,
    /// The lab's result, once reported.
    pub result: Option<super::lab::ResultView>,
    /// The site, sample and seal photos and the lab report, in declaration order, with their
    /// processing status.
    pub attachments: Vec<super::sample_attachments::AttachmentView>,
    /// The legal deadlines that apply so far, in rule order, with their status today.
    pub deadlines: Vec<Deadline>,
    /// User id of the submitter.
    pub submitted_by: String,
}

async fn detail_in(
    conn: &mut AnyConnection,
    zone: BureauZone,
    s: &SampleRow,
    viewer: Viewer,
) -> Result<SampleDetail> {
    let mut form: serde_json::Value = serde_json::from_str(&s.form).map_err(internal)?;
    if viewer == Viewer::Lab {
        if let Some(o) = form.as_object_mut() {
            for f in PERSONAL_FORM_FIELDS {
                o.remove(f);
            }
        }
    }
    let custody = q::custody_events(conn, &s.id)
        .await?
        .iter()
        .map(custody_view)
        .collect::<Result<Vec<_>>>()?;
    let result = super::lab::result_view(conn, &s.id).await?;
    Ok(SampleDetail {
        summary: summary_of(s)?,
        sample_no_kind: if s.sample_no_kind == "national" {
            SampleNoKind::National
        } else {
            SampleNoKind::Generated
        },
        task_id: s.task_id.clone(),
        establishment_id: s.establishment_id.clone(),
        samplers: q::samplers(conn, &s.id).await?,
        form,
        warnings: serde_json::from_str(&s.warnings).map_err(internal)?,
        custody,
        result,
        attachments: super::sample_attachments::views_in(conn, &s.id).await?,
        deadlines: stored_deadlines(conn, &s.id, today(zone)).await?,
        submitted_by: s.submitted_by.clone(),
    })
}

/// One sample (admins and reviewers; its samplers; its lab, and the lab named for its 复检,
/// without the premises' personal fields). Anyone else: 404.
pub async fn get(db: &Db, ctx: &Ctx, zone: BureauZone, id: &str) -> Result<SampleDetail> {
    let mut conn = db.acquire().await?;
    let (s, viewer) = load_readable(&mut conn, ctx, id).await?;
    detail_in(&mut conn, zone, &s, viewer).await
}

/// Whether the caller is a lab account of the lab named for `s`'s requested 复检.
async fn retest_lab_reads(conn: &mut AnyConnection, ctx: &Ctx, s: &SampleRow) -> Result<bool> {
    let (Some(user), Some(Role::Lab)) = (ctx.user_id(), ctx.actor.role) else {
        return Ok(false);
    };
    let Some(Some(lab)) = q::user_lab(conn, user).await? else {
        return Ok(false);
    };
    let (retest_lab, _) = store::sample_facts::retest_of(conn, &s.id).await?;
    Ok(retest_lab.as_deref() == Some(lab.as_str()))
}

// ---- Deadlines ---------------------------------------------------------------------------

fn rule_of(s: &str) -> Result<Rule> {
    Rule::parse(s).ok_or_else(|| internal(s))
}

fn day(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(internal)
}

fn deadline_of(r: &DeadlineRow, today: NaiveDate) -> Result<Deadline> {
    let days = u32::try_from(r.period_days).map_err(internal)?;
    let period = match r.period_unit.as_str() {
        "working_days" => Period::WorkingDays(days),
        _ => Period::CalendarDays(days),
    };
    let due = day(&r.due_on)?;
    let done_on = r.done_on.as_deref().map(day).transpose()?;
    Ok(Deadline {
        rule: rule_of(&r.rule)?,
        period,
        start: day(&r.start_on)?,
        due,
        done_on,
        status: deadlines::status(due, done_on, today),
    })
}

pub(super) async fn stored_deadlines(
    conn: &mut AnyConnection,
    sample_id: &str,
    today: NaiveDate,
) -> Result<Vec<Deadline>> {
    let mut out = q::deadlines_of(conn, sample_id)
        .await?
        .iter()
        .map(|r| deadline_of(r, today))
        .collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|d| d.rule);
    Ok(out)
}

/// The facts of sample `s` as stored now (the sample, its custody events, its result).
pub(super) async fn facts_of(
    conn: &mut AnyConnection,
    zone: BureauZone,
    s: &SampleRow,
) -> Result<Facts> {
    let id = s.id.as_str();
    let events = q::custody_events(conn, id).await?;
    let on = |kind: &str| {
        events
            .iter()
            .find(|e| e.kind == kind)
            .map(|e| date_of(zone, e.occurred_at))
    };
    let overall = match q::result(conn, id).await? {
        Some(r) => Some(Verdict::parse(&r.overall).ok_or_else(|| internal(&r.overall))?),
        None => None,
    };
    let opt = |d: &Option<String>| d.as_deref().map(day).transpose();
    let facts = Facts {
        sampled_on: date_of(zone, s.sampled_at),
        received_on: on("received"),
        reported_on: on("reported"),
        overall,
        bureau_notified_on: opt(&s.bureau_notified_on)?,
        served_on: opt(&s.served_on)?,
        retest_requested_on: opt(&s.retest_requested_on)?,
        objection_on: opt(&s.objection_on)?,
        retest_received_on: opt(&s.retest_received_on)?,
        retest_reported_on: opt(&s.retest_reported_on)?,
        disposal_done_on: opt(&s.disposal_done_on)?,
    };
    Ok(facts)
}

/// Recomputes and stores the deadlines of sample `id` from its facts as stored now (the
/// sample, its custody events, its result). Called inside each write that changes them.
pub(super) async fn recompute_deadlines(
    conn: &mut AnyConnection,
    zone: BureauZone,
    id: &str,
) -> Result<()> {
    let s = q::sample(conn, id).await?.ok_or_else(not_found)?;
    let facts = facts_of(conn, zone, &s).await?;
    let calendar = super::followup::effective_calendar(conn).await?;
    let computed = deadlines::deadlines(&facts, &Periods::default(), &calendar, today(zone))
        .map_err(|e| Error::invalid(e.code(), e.to_string()))?;
    let rows: Vec<DeadlineRow> = computed
        .iter()
        .map(|d| {
            let (unit, days) = match d.period {
                Period::WorkingDays(n) => ("working_days", n),
                Period::CalendarDays(n) => ("calendar_days", n),
            };
            DeadlineRow {
                sample_id: id.to_string(),
                rule: d.rule.code().to_string(),
                period_unit: unit.to_string(),
                period_days: i64::from(days),
                start_on: d.start.to_string(),
                due_on: d.due.to_string(),
                done_on: d.done_on.map(|x| x.to_string()),
            }
        })
        .collect();
    q::replace_deadlines(conn, id, &rows).await?;
    Ok(())
}

/// Which open deadlines the queue lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineQueue {
    /// Not done, due today or later.
    Due,
    /// Not done, past the due date.
    Overdue,
}

/// One entry of the deadline queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueuedDeadline {
    pub sample_id: String,
    pub sample_no: String,
    pub sample_name: String,
    /// 被抽样单位 (as on the form).
    pub premises_name: String,
    pub lab_id: String,
    pub deadline: Deadline,
}

/// A page of the deadline queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadlinePage {
    pub items: Vec<QueuedDeadline>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

fn encode_cursor(d: &DeadlineRow) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}|{}|{}", d.due_on, d.sample_id, d.rule))
}

/// The keyset of a cursor this queue returned; 400 `invalid_cursor` otherwise.
pub fn decode_cursor(c: &str) -> Result<(String, String, String)> {
    use base64::Engine;
    let bad = || {
        Error::bad_request(
            "invalid_cursor",
            "the cursor is not one this queue returned",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = text.splitn(3, '|');
    let (Some(due), Some(sample), Some(rule)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if NaiveDate::parse_from_str(due, "%Y-%m-%d").is_err() || Rule::parse(rule).is_none() {
        return Err(bad());
    }
    Ok((due.to_string(), sample.to_string(), rule.to_string()))
}

/// Open deadlines, earliest due first (admin, reviewer), `limit` per page.
pub async fn deadline_queue(
    db: &Db,
    ctx: &Ctx,
    zone: BureauZone,
    queue: DeadlineQueue,
    cursor: Option<&str>,
    limit: u32,
) -> Result<DeadlinePage> {
    access::require(ctx, OFFICE)?;
    let after = cursor.map(decode_cursor).transpose()?;
    let today = today(zone);
    let mut conn = db.acquire().await?;
    let mut rows = q::open_deadlines(
        &mut conn,
        queue == DeadlineQueue::Overdue,
        &today.to_string(),
        after.as_ref(),
        limit + 1,
    )
    .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last().map(|r| encode_cursor(&r.deadline)))
        .flatten();
    let items = rows
        .into_iter()
        .map(|r| {
            Ok(QueuedDeadline {
                deadline: deadline_of(&r.deadline, today)?,
                sample_id: r.deadline.sample_id,
                sample_no: r.sample_no,
                sample_name: r.sample_name,
                premises_name: r.premises_name,
                lab_id: r.lab_id,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(DeadlinePage { items, next_cursor })
}

// ---- Submission --------------------------------------------------------------------------

/// A 抽样单 submitted by one of its samplers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSample {
    /// Chosen by the client (UUID): the same id and body again is answered as the first time.
    pub id: String,
    /// The sampled premises in the registry.
    pub establishment_id: String,
    /// The lab the sample is sent to.
    pub lab_id: String,
    /// The sample's food category (level 3 or 4 of the stored tree). The form's
    /// `food_category_1`..`_4` must name its path (level 4 `"/"` for a level-3 category).
    pub category_code: String,
    pub form: Form,
    /// The sampling task this sample is for (`GET /api/v1/me/sampling-tasks`), if any: the
    /// submitter and the co-sampler must be on its team, and the premises, lab, 检验目的 and
    /// 抽样环节 must be the task's. A task of another team is answered as one that does not
    /// exist (422 `unknown_task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
}

/// Settings of the submission (from configuration).
#[derive(Debug, Clone)]
pub struct SubmitSettings {
    pub zone: BureauZone,
    pub sample_no_prefix: Prefix,
    /// The upload limit (`max_photo_bytes`): the largest `byte_size` an attachment declared
    /// through sync may have, as online.
    pub max_photo_bytes: i64,
}

fn field(field: &str, code: &str, message: impl Into<String>) -> Error {
    Error::validation_failed(vec![FieldError::new(field, code, message)])
}

/// Checks the sample's category and the form's category names; returns the category's code and
/// its ancestors' (most specific first), which a task's batches are matched against.
async fn check_category(conn: &mut AnyConnection, n: &NewSample) -> Result<Vec<String>> {
    let code = n.category_code.trim();
    let mut path = Vec::new();
    let mut next = Some(code.to_string());
    while let Some(c) = next {
        let row = q::category(conn, &c).await?.ok_or_else(|| {
            field(
                "category_code",
                "unknown_category",
                format!("no food category {c}; an admin imports the category tree"),
            )
        })?;
        next = row.parent_code.clone();
        path.push(row);
        if path.len() > 4 {
            return Err(internal("food category tree deeper than 4 levels"));
        }
    }
    let level = path.first().map_or(0, |r| r.level);
    if level < 3 {
        return Err(field(
            "category_code",
            "category_too_coarse",
            format!("sample category {code} is level {level}; a sample needs a level 3 (品种) or 4 (细类) category"),
        ));
    }
    let texts = [
        &n.form.food_category_1,
        &n.form.food_category_2,
        &n.form.food_category_3,
        &n.form.food_category_4,
    ];
    let mut problems = Vec::new();
    for (i, entry) in texts.iter().enumerate() {
        let lvl = i as i64 + 1;
        let want = path
            .iter()
            .find(|r| r.level == lvl)
            .map(|r| r.name.as_str());
        let ok = match (want, *entry) {
            (Some(w), form::Entry::Value(v)) => v.trim() == w,
            (None, form::Entry::NotApplicable) => true,
            _ => false,
        };
        if !ok {
            let f = format!("food_category_{lvl}");
            problems.push(FieldError::new(
                &f,
                "category_mismatch",
                match want {
                    Some(w) => {
                        format!("{f} must be {w:?}, the level-{lvl} name of category {code}")
                    }
                    None => format!("{f} must be \"/\": category {code} has no level {lvl}"),
                },
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::validation_failed(problems));
    }
    Ok(path.into_iter().map(|r| r.code).collect())
}

/// The submitter is one of the samplers.
fn check_submitter(submitter: Option<&str>, samplers: &[String]) -> Result<()> {
    match submitter {
        Some(me) if !samplers.iter().any(|s| s == me) => Err(field(
            "sampler_1",
            "submitter_not_sampler",
            "the submitter must be one of the samplers (sampler_1 or sampler_2)",
        )),
        _ => Ok(()),
    }
}

/// The samplers: each an enabled inspector account without a declared conflict (回避) at the
/// premises.
async fn check_samplers(
    conn: &mut AnyConnection,
    establishment_id: &str,
    samplers: &[String],
) -> Result<()> {
    let accounts = q::accounts(conn, samplers).await?;
    let conflicts = store::plans::conflicts_of(conn, samplers).await?;
    let mut problems = Vec::new();
    for (i, id) in samplers.iter().enumerate() {
        let f = format!("sampler_{}", i + 1);
        let active = accounts.iter().any(|(a, role, disabled)| {
            a == id && role == Role::Inspector.as_str() && *disabled == 0
        });
        if !active {
            problems.push(FieldError::new(
                &f,
                "sampler_not_active",
                format!("{f} {id} is not an enabled inspector account"),
            ));
        } else if conflicts
            .iter()
            .any(|(who, at)| who == id && at == establishment_id)
        {
            problems.push(FieldError::new(
                &f,
                "sampler_conflict",
                format!("{f} {id} has a declared conflict of interest (回避) at the premises"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::validation_failed(problems));
    }
    Ok(())
}

fn text_of(e: &form::Entry<String>) -> Option<String> {
    e.value().map(|v| v.trim().to_string())
}

/// The stored sample after a replay check: the same id and body → the stored sample; the
/// same id with another body → 409 `sample_id_conflict`.
async fn replay(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    zone: BureauZone,
    id: &str,
    body_sha256: &str,
) -> Result<Option<SampleDetail>> {
    let Some(s) = q::sample(conn, id).await? else {
        return Ok(None);
    };
    if s.body_sha256 != body_sha256 {
        return Err(Error::conflict(
            "sample_id_conflict",
            "a sample with this id was submitted with other content; a submitted 抽样单 cannot be changed",
        ));
    }
    let viewer = visible(conn, ctx, &s).await?;
    Ok(Some(detail_in(conn, zone, &s, viewer).await?))
}

/// The `user/device` a row remembers as its creator (sync: a device's own records come back
/// to it as `updated`), as `ops::sync` records it on inspections.
pub(super) fn origin_of(ctx: &Ctx) -> Option<String> {
    match (ctx.user_id(), ctx.actor.device_id.as_deref()) {
        (Some(u), Some(d)) => Some(format!("{u}/{d}")),
        _ => None,
    }
}

/// Submits a 抽样单 (inspector, one of its samplers): the online route. One transaction: the
/// sample, its samplers, its deadlines and the audit event ([`submit_sample_in`], which the
/// sync push calls inside its own transaction). Returns the sample and whether it was created
/// now (`false`: the same submission again).
///
/// Refusals: 422 `validation_failed` naming every field at fault (the form check, category,
/// samplers, disagreements with the task), `unknown_establishment`, `unknown_lab`,
/// `unknown_task`, `invalid_id`, `calendar_year_missing`; 409 `sample_no_taken` (a national
/// number already used), `sample_id_conflict`, `task_cancelled`.
pub async fn submit_sample(
    db: &Db,
    ctx: &Ctx,
    settings: &SubmitSettings,
    n: &NewSample,
) -> Result<(SampleDetail, bool)> {
    access::require(ctx, &[Role::Inspector])?;
    let mut tx = db.begin_write().await?;
    // The change counter first: samples sync (schema 6), and on PostgreSQL its row lock
    // orders this submission after every other write that took it (pushes included), so
    // the number checks below read what those committed.
    let seq = store::sync::next_seq(tx.conn()).await?;
    match submit_sample_in(tx.conn(), ctx, settings, n, seq).await {
        Ok(Submitted::New(detail)) => {
            tx.commit().await?;
            Ok((*detail, true))
        }
        // A replay writes nothing: the transaction is dropped (rolled back).
        Ok(Submitted::Replay(detail)) => Ok((*detail, false)),
        Err(Error::Conflict {
            code: "duplicate", ..
        }) => {
            // A unique violation no check foresaw (a concurrent submission won; PostgreSQL:
            // after its commit). This transaction is aborted there; what won is read afresh.
            drop(tx);
            let mut conn = db.acquire().await?;
            let body_sha256 = body_sha256(n)?;
            if let Some(done) = replay(&mut conn, ctx, settings.zone, &n.id, &body_sha256).await? {
                return Ok((done, false));
            }
            Err(Error::conflict(
                "sample_no_taken",
                "the 抽样单编号 is already used by another sample",
            ))
        }
        Err(e) => Err(e),
    }
}

/// What [`submit_sample_in`] did.
#[derive(Debug)]
pub enum Submitted {
    /// Created now, in the caller's transaction (with its audit event).
    New(Box<SampleDetail>),
    /// The same id and body were submitted before: nothing written.
    Replay(Box<SampleDetail>),
}

fn body_sha256(n: &NewSample) -> Result<String> {
    // Over the typed value, not the bytes received: Chinese labels, "／" and numbers spelt
    // differently hash alike, so a device re-sending what it pulled back is a replay.
    Ok(sha256_hex(&serde_json::to_vec(n).map_err(internal)?))
}

/// The national number a new sample claims, as [`submit_sample_in`] reads it (trimmed; none
/// when empty): what it locks, so concurrent claims of one number are decided in turn.
pub fn national_key(n: &NewSample) -> Option<String> {
    n.form
        .sampling_no
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The submission rules of a 抽样单, in the caller's write transaction (the online route's or a
/// sync push's), with `seq` the transaction's change-counter value: the form check, the
/// national number's shape or a generated number, the samplers (the submitter among them,
/// enabled inspector accounts without a conflict at the premises), the premises, lab and
/// category; then the sample, its samplers, deadlines and audit event. A refusal returns
/// before anything is written, except a failure of the deadline computation or of a write,
/// after which the caller must roll back (the sync push rolls back to its savepoint).
pub async fn submit_sample_in(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    settings: &SubmitSettings,
    n: &NewSample,
    seq: i64,
) -> Result<Submitted> {
    access::require(ctx, &[Role::Inspector])?;
    // What the decision rests on, locked first (PostgreSQL): the task's team and state, and the
    // sample id (a concurrent create of the same id waits, then finds it stored).
    if let Some(task) = n.task_id.as_deref() {
        store::sync::lock_rows(conn, "sampling_tasks", &[task.to_string()]).await?;
    }
    store::sync::lock_keys(conn, "sample", std::slice::from_ref(&n.id)).await?;
    // A national number is unique: two samples claiming it are decided one after the other.
    if let Some(no) = national_key(n) {
        store::sync::lock_keys(conn, "sample_no", &[no]).await?;
    }
    if !is_uuid(&n.id) {
        return Err(Error::invalid("invalid_id", "the sample id must be a UUID"));
    }
    form::validate_for_submission(&n.form).map_err(Error::validation_failed)?;
    let sampling_no = n
        .form
        .sampling_no
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let national = match sampling_no {
        None => None,
        Some(no) => Some(number::parse_national(no).map_err(|_| {
            field(
                "sampling_no",
                "invalid_sampling_no",
                "a generated 抽样单编号 is assigned by the server: send a national-system number or none",
            )
        })?),
    };
    let samplers: Vec<String> = [&n.form.sampler_1, &n.form.sampler_2]
        .into_iter()
        .filter_map(text_of)
        .collect();
    let body_sha256 = body_sha256(n)?;

    check_submitter(ctx.user_id(), &samplers)?;
    // A replay is answered before the samplers' accounts are checked again: one may have been
    // disabled since, and the stored sample stands.
    if let Some(done) = replay(conn, ctx, settings.zone, &n.id, &body_sha256).await? {
        return Ok(Submitted::Replay(Box::new(done)));
    }
    check_samplers(conn, &n.establishment_id, &samplers).await?;
    let premises = store::establishments::get(conn, &n.establishment_id)
        .await?
        .ok_or_else(|| Error::invalid("unknown_establishment", "no such establishment"))?;
    q::lab(conn, &n.lab_id)
        .await?
        .ok_or_else(|| Error::invalid("unknown_lab", "no such lab"))?;
    let category_path = check_category(conn, n).await?;
    let task_id = n
        .task_id
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(task) = task_id {
        super::sampling_plans::check_sample_task(
            conn,
            task,
            ctx.user_id(),
            &crate::sampling::plan::SampleForTask {
                samplers: &samplers,
                establishment_id: &n.establishment_id,
                lab_id: &n.lab_id,
                purpose: n.form.purpose.value().copied(),
                stage: n.form.stage.value().copied(),
                category_path: &category_path,
            },
        )
        .await?;
    }

    let now = store::now_ms();
    let (sample_no, kind) = match national {
        Some(no) => {
            if q::sample_with_no(conn, &no).await?.is_some() {
                return Err(sample_no_taken(&no));
            }
            (no, "national")
        }
        None => {
            let day = date_of(settings.zone, now);
            let key = day.format("%Y%m%d").to_string();
            let seq = q::next_sample_seq(conn, settings.sample_no_prefix.as_str(), &key).await?;
            let seq = u32::try_from(seq).map_err(internal)?;
            let no = number::generate(&settings.sample_no_prefix, day, seq)
                .map_err(|e| Error::invalid(e.code(), e.to_string()))?;
            (no, "generated")
        }
    };
    let f = &n.form;
    let value = |e: &form::Entry<f64>| e.value().copied().unwrap_or_default();
    let row = SampleRow {
        id: n.id.clone(),
        sample_no: sample_no.clone(),
        sample_no_kind: kind.to_string(),
        task_id: task_id.map(str::to_string),
        purpose: f
            .purpose
            .value()
            .map(|p| p.code())
            .unwrap_or_default()
            .to_string(),
        stage: f
            .stage
            .value()
            .map(|p| p.code())
            .unwrap_or_default()
            .to_string(),
        category_code: n.category_code.trim().to_string(),
        establishment_id: premises.id.clone(),
        premises_name: text_of(&f.premises_name).unwrap_or_default(),
        premises_address: text_of(&f.premises_address).unwrap_or_default(),
        premises_credit_code: text_of(&f.premises_credit_code),
        premises_licence_no: text_of(&f.premises_licence_no),
        sample_name: text_of(&f.sample_name).unwrap_or_default(),
        lab_id: n.lab_id.clone(),
        sampled_at: f.sampled_at.value().copied().unwrap_or_default(),
        lng: value(&f.lng),
        lat: value(&f.lat),
        crs: f
            .crs
            .value()
            .map(|c| c.as_str())
            .unwrap_or_default()
            .to_string(),
        state: SampleState::Submitted.as_str().to_string(),
        seal_broken: 0,
        form: serde_json::to_string(f).map_err(internal)?,
        warnings: serde_json::to_string(&form::warnings(f)).map_err(internal)?,
        body_sha256,
        bureau_notified_on: None,
        served_on: None,
        retest_requested_on: None,
        objection_on: None,
        retest_received_on: None,
        retest_reported_on: None,
        disposal_done_on: None,
        submitted_by: access::author(ctx).to_string(),
        created_at: now,
        updated_at: now,
    };
    let origin = origin_of(ctx);
    let stamp = q::Stamp {
        seq,
        origin_device: origin.as_deref(),
    };
    q::insert_sample(conn, &row, stamp).await?;
    q::insert_samplers(conn, &n.id, &samplers).await?;
    recompute_deadlines(conn, settings.zone, &n.id).await?;
    let detail = detail_in(conn, settings.zone, &row, Viewer::Sampler).await?;
    let event = Event::new(Action::SampleSubmitted, RecordKind::Sample, &n.id)
        .set("sample_no", &detail.summary.sample_no)
        .set("establishment_id", &detail.establishment_id)
        .set("lab_id", &detail.summary.lab_id)
        .set("samplers", &detail.samplers)
        .set("form", &detail.form);
    store::audit::append(conn, ctx, &[event]).await?;
    Ok(Submitted::New(Box::new(detail)))
}

fn sample_no_taken(no: &str) -> Error {
    Error::conflict(
        "sample_no_taken",
        format!("抽样单编号 {no} is already used by another sample"),
    )
}

// ---- Custody -----------------------------------------------------------------------------

/// A custody event to record.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustodyEvent {
    /// Chosen by the recorder (UUID): the same event sent again is answered as the first time.
    pub id: String,
    pub kind: CustodyKind,
    /// When it happened, Unix ms (not before the previous event).
    pub occurred_at: i64,
    /// Where (the premises, the courier office, the lab); 1–500 characters.
    pub place: String,
    /// Free text, at most 500 characters.
    pub note: Option<String>,
    /// `received` only (required there): the sample's condition as the lab found it.
    pub sample_condition: Option<String>,
    /// `received` only (required there): whether the seal was intact.
    pub seal_intact: Option<bool>,
}

/// Records a custody event (samplers: sealed, dispatched; the sample's lab: received,
/// testing, reported). Returns the event and whether it was appended now (`false`: the same
/// event again). A broken seal on receipt is stored and flags the sample. 409 for a conflict
/// with the chain (`custody_out_of_order`, `custody_already_recorded`,
/// `custody_time_before_previous`, `custody_event_edited`); 422 for a bad event
/// (`custody_wrong_role`, `validation_failed`, `invalid_id`).
pub async fn record_custody(
    db: &Db,
    ctx: &Ctx,
    zone: BureauZone,
    sample_id: &str,
    n: &NewCustodyEvent,
) -> Result<(CustodyView, bool)> {
    access::require(ctx, &[Role::Inspector, Role::Lab])?;
    let mut tx = db.begin_write().await?;
    // Custody syncs to the samplers' devices (schema 6): the event and the sample's state
    // carry this transaction's sequence number.
    let seq = store::sync::next_seq(tx.conn()).await?;
    let (view, appended) = record_custody_in(tx.conn(), ctx, zone, sample_id, n, seq).await?;
    if appended {
        tx.commit().await?;
    }
    Ok((view, appended))
}

/// The custody rules (`custody::decide`, the sample visible to the caller, the note) in the
/// caller's write transaction (the online route's or a sync push's), `seq` its change-counter
/// value. Returns the event and whether it was appended now (`false`: the same event again,
/// nothing written). A refusal returns before anything is written, except a failure of the
/// deadline computation or of a write, after which the caller must roll back.
pub async fn record_custody_in(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    zone: BureauZone,
    sample_id: &str,
    n: &NewCustodyEvent,
    seq: i64,
) -> Result<(CustodyView, bool)> {
    access::require(ctx, &[Role::Inspector, Role::Lab])?;
    // The chain is decided from its last event: one writer per sample (PostgreSQL).
    store::sync::lock_keys(conn, "sample", &[sample_id.to_string()]).await?;
    let (sample, _) = load_visible(conn, ctx, sample_id).await?;
    if !is_uuid(&n.id) {
        return Err(Error::invalid("invalid_id", "the event id must be a UUID"));
    }
    let note = n.note.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if note.is_some_and(|t| {
        t.chars().count() > custody::MAX_TEXT_CHARS || crate::text::find_forbidden(t).is_some()
    }) {
        return Err(field(
            "note",
            "too_long",
            format!(
                "note is at most {} characters, without control characters",
                custody::MAX_TEXT_CHARS
            ),
        ));
    }
    let edited = || {
        Error::conflict(
            "custody_event_edited",
            custody::Refusal::Edited(n.id.clone()).to_string(),
        )
    };
    if let Some(other) = q::custody_event(conn, &n.id).await? {
        if other.sample_id != sample.id {
            return Err(edited());
        }
    }
    let (Some(actor), Some(role)) = (ctx.user_id(), ctx.actor.role) else {
        return Err(Error::forbidden("custody events are recorded by users"));
    };
    let rows = q::custody_events(conn, &sample.id).await?;
    let existing = rows.iter().map(custody_event).collect::<Result<Vec<_>>>()?;
    let new = custody::Event {
        id: n.id.clone(),
        kind: n.kind,
        at: n.occurred_at,
        actor: actor.to_string(),
        actor_role: role,
        place: n.place.trim().to_string(),
        sample_condition: n.sample_condition.as_deref().map(|s| s.trim().to_string()),
        seal_intact: n.seal_intact,
    };
    let flags = match custody::decide(&existing, &new) {
        Ok(custody::Outcome::Duplicate) => {
            let stored = rows
                .iter()
                .find(|r| r.id == n.id)
                .ok_or_else(|| internal("lost event"))?;
            if stored.note.as_deref() != note {
                return Err(edited());
            }
            return Ok((custody_view(stored)?, false));
        }
        Ok(custody::Outcome::Append(flags)) => flags,
        Err(r) if r.is_conflict() => return Err(Error::conflict(r.code(), r.to_string())),
        Err(r) => return Err(Error::invalid(r.code(), r.to_string())),
    };
    let now = store::now_ms();
    let row = CustodyRow {
        id: new.id.clone(),
        sample_id: sample.id.clone(),
        kind: new.kind.code().to_string(),
        occurred_at: new.at,
        actor_id: new.actor.clone(),
        actor_role: role.as_str().to_string(),
        place: new.place.clone(),
        note: note.map(str::to_string),
        sample_condition: new.sample_condition.clone(),
        seal_intact: new.seal_intact.map(store::flag),
        recorded_at: now,
    };
    let origin = origin_of(ctx);
    let stamp = q::Stamp {
        seq,
        origin_device: origin.as_deref(),
    };
    q::insert_custody(conn, &row, stamp).await?;
    let broken = flags.contains(&custody::Flag::SealBroken);
    q::set_sample_state(
        conn,
        &sample.id,
        SampleState::of(new.kind).as_str(),
        broken,
        now,
        seq,
    )
    .await?;
    if matches!(new.kind, CustodyKind::Received | CustodyKind::Reported) {
        recompute_deadlines(conn, zone, &sample.id).await?;
    }
    let view = custody_view(&row)?;
    let event = Event::new(Action::CustodyRecorded, RecordKind::Sample, &sample.id)
        .change("state", &sample.state, SampleState::of(new.kind))
        .set("custody_event", &view)
        .change(
            "seal_broken",
            sample.seal_broken != 0,
            sample.seal_broken != 0 || broken,
        );
    store::audit::append(conn, ctx, &[event]).await?;
    Ok((view, true))
}
