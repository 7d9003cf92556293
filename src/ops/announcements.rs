//! The public sampling announcement (抽检信息公告) use cases (admin, reviewer): create a draft
//! for a period, see the samples it proposes (every sample with a lab result reported in the
//! period, within its stage and category), exclude one with an internal reason or include it
//! again, and publish: the public facts of every sample left in are copied into the
//! announcement's rows (frozen by triggers, migration 0030) after an audit checkpoint. Each
//! write is one transaction with its audit events; the rules are in
//! `crate::sampling::announcement`.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::{access, Ctx, Error, Result};
use crate::audit::checkpoint::NoteSigner;
use crate::audit::{Action, Event, RecordKind};
use crate::auth::Role;
use crate::clock::{rfc3339, BureauZone};
use crate::establishment::FieldError;
use crate::public::announcement::PublicSample;
use crate::sampling::announcement::{self as rules, ItemFact, SampleFacts, Scope};
use crate::sampling::form::{Form, Stage};
use crate::sampling::results::Verdict;
use crate::store::announcements::{self as q, AnnouncementRow, ExclusionRow};
use crate::store::{self, Db};

const OFFICE: &[Role] = &[Role::Reviewer, Role::Admin];
/// Longest exclusion reason, characters.
pub const MAX_REASON_CHARS: usize = 500;

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("{e}"))
}

/// A draft or published announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnnouncementState {
    Draft,
    Published,
}

impl AnnouncementState {
    pub fn as_str(self) -> &'static str {
        match self {
            AnnouncementState::Draft => "draft",
            AnnouncementState::Published => "published",
        }
    }
    pub fn parse(s: &str) -> Option<AnnouncementState> {
        match s {
            "draft" => Some(AnnouncementState::Draft),
            "published" => Some(AnnouncementState::Published),
            _ => None,
        }
    }
}

/// An announcement (internal view).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Announcement {
    pub id: String,
    /// 期号.
    pub announcement_no: String,
    pub title: String,
    /// `YYYY-MM-DD`: results reported from this bureau day…
    pub period_start: String,
    /// …to this one, inclusive.
    pub period_end: String,
    /// 抽样环节 filter; null: every stage.
    pub stage: Option<Stage>,
    /// Food category filter (the category and everything under it); null: every category.
    pub category_code: Option<String>,
    pub state: AnnouncementState,
    /// Rows of the 合格 table (published announcements; 0 for drafts).
    pub qualified_count: i64,
    /// Rows of the 不合格 table (published announcements; 0 for drafts).
    pub unqualified_count: i64,
    /// RFC 3339.
    pub published_at: Option<String>,
    pub published_by: Option<String>,
    /// The signed audit checkpoint note taken at publication.
    pub checkpoint: Option<String>,
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
}

fn announcement_of(r: AnnouncementRow) -> Result<Announcement> {
    Ok(Announcement {
        stage: r
            .stage
            .as_deref()
            .map(|s| Stage::parse(s).ok_or_else(|| internal(format!("stage {s:?}"))))
            .transpose()?,
        state: AnnouncementState::parse(&r.state)
            .ok_or_else(|| internal(format!("state {:?}", r.state)))?,
        published_at: r.published_at.map(rfc3339),
        created_at: rfc3339(r.created_at),
        id: r.id,
        announcement_no: r.announcement_no,
        title: r.title,
        period_start: r.period_start,
        period_end: r.period_end,
        category_code: r.category_code,
        qualified_count: r.qualified_count,
        unqualified_count: r.unqualified_count,
        published_by: r.published_by,
        checkpoint: r.checkpoint,
        created_by: r.created_by,
    })
}

/// A sample in one of the announcement's tables, with its id (internal view).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AnnouncedSample {
    pub sample_id: String,
    #[serde(flatten)]
    pub row: PublicSample,
}

/// A sample left out of the announcement, with the internal reason.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Exclusion {
    pub sample_id: String,
    /// The sample's 抽样单编号, when the draft still proposes it.
    pub sample_no: Option<String>,
    /// Internal: never published.
    pub reason: String,
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
}

/// An announcement with its tables: for a draft, what publishing now would copy (the samples
/// proposed, less those excluded); for a published one, what was copied.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AnnouncementDetail {
    #[serde(flatten)]
    pub announcement: Announcement,
    /// 合格 table.
    pub qualified: Vec<AnnouncedSample>,
    /// 不合格 table, each with its failed items.
    pub unqualified: Vec<AnnouncedSample>,
    /// Samples left out.
    pub excluded: Vec<Exclusion>,
}

/// A new draft.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAnnouncement {
    /// 期号, unique (1–100 characters).
    pub announcement_no: String,
    /// 1–200 characters.
    pub title: String,
    /// `YYYY-MM-DD`.
    pub period_start: String,
    /// `YYYY-MM-DD`, on or after `period_start`, at most 366 days later.
    pub period_end: String,
    /// 抽样环节 (`production`, `circulation`, `catering` or 生产/流通/餐饮); absent: every stage.
    pub stage: Option<String>,
    /// A food category code of the tree; absent: every category.
    pub category_code: Option<String>,
}

/// An exclusion to record.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewExclusion {
    /// A sample the draft proposes.
    pub sample_id: String,
    /// Internal reason, 1–500 characters (never published).
    pub reason: String,
}

fn check_text(p: &mut Vec<FieldError>, field: &'static str, s: &str, max: usize) {
    if let Some((f, c, m)) = crate::lists::check_text(field, s, max) {
        p.push(FieldError::new(f, c, m));
    }
}

fn day(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(internal)
}

/// `[from, to)` in Unix ms for the inclusive bureau days `start..=end`.
fn bounds(zone: BureauZone, start: &str, end: &str) -> Result<(i64, i64)> {
    let (s, e) = (day(start)?, day(end)?);
    Ok((
        super::lists::day_start_ms(zone, s),
        super::lists::day_start_ms(zone, e + chrono::Days::new(1)),
    ))
}

/// Creates a draft. 409 `duplicate` when the 期号 is taken.
pub async fn create(db: &Db, ctx: &Ctx, n: &NewAnnouncement) -> Result<Announcement> {
    access::require(ctx, OFFICE)?;
    let mut p = Vec::new();
    check_text(&mut p, "announcement_no", &n.announcement_no, 100);
    check_text(&mut p, "title", &n.title, 200);
    let start = NaiveDate::parse_from_str(&n.period_start, "%Y-%m-%d");
    let end = NaiveDate::parse_from_str(&n.period_end, "%Y-%m-%d");
    if start.is_err() {
        p.push(FieldError::new(
            "period_start",
            "invalid_date",
            "expected YYYY-MM-DD",
        ));
    }
    if end.is_err() {
        p.push(FieldError::new(
            "period_end",
            "invalid_date",
            "expected YYYY-MM-DD",
        ));
    }
    if let (Ok(s), Ok(e)) = (start, end) {
        if e < s || (e - s).num_days() > 366 {
            p.push(FieldError::new(
                "period_end",
                "invalid_period",
                "the period ends before it starts or spans more than 366 days",
            ));
        }
    }
    let stage = match n.stage.as_deref() {
        None => None,
        Some(s) => match Stage::parse(s) {
            Some(st) => Some(st),
            None => {
                p.push(FieldError::new(
                    "stage",
                    "invalid_stage",
                    "stage is production, circulation or catering (生产/流通/餐饮)",
                ));
                None
            }
        },
    };
    let mut conn = db.acquire().await?;
    let category = n.category_code.as_deref().map(str::trim);
    if let Some(c) = category {
        if q::category_name(&mut conn, c).await?.is_none() {
            p.push(FieldError::new(
                "category_code",
                "unknown_category",
                "no such food category",
            ));
        }
    }
    drop(conn);
    if !p.is_empty() {
        return Err(Error::validation_failed(p));
    }
    let now = store::now_ms();
    let row = AnnouncementRow {
        id: uuid::Uuid::new_v4().to_string(),
        announcement_no: n.announcement_no.trim().to_string(),
        title: n.title.trim().to_string(),
        period_start: start.map_err(internal)?.to_string(),
        period_end: end.map_err(internal)?.to_string(),
        stage: stage.map(|s| s.code().to_string()),
        category_code: category.map(String::from),
        state: AnnouncementState::Draft.as_str().into(),
        qualified_count: 0,
        unqualified_count: 0,
        published_at: None,
        published_by: None,
        checkpoint: None,
        created_by: access::author(ctx).to_string(),
        created_at: now,
        updated_at: now,
    };
    let mut tx = db.begin_write().await?;
    q::insert(tx.conn(), &row).await.map_err(|e| {
        if store::is_unique_violation(&e) {
            Error::conflict("duplicate", "an announcement with this 期号 already exists")
        } else {
            e.into()
        }
    })?;
    let a = announcement_of(row)?;
    let event =
        Event::new(Action::AnnouncementCreated, RecordKind::Announcement, &a.id).created(&a);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(a)
}

/// A page of announcements, newest first.
pub async fn list(
    db: &Db,
    ctx: &Ctx,
    state: Option<AnnouncementState>,
    page: u32,
    page_size: u32,
) -> Result<(Vec<Announcement>, i64)> {
    access::require(ctx, OFFICE)?;
    let mut conn = db.acquire().await?;
    let (rows, total) = q::page(&mut conn, state.map(|s| s.as_str()), page, page_size).await?;
    Ok((
        rows.into_iter()
            .map(announcement_of)
            .collect::<Result<_>>()?,
        total,
    ))
}

async fn load(conn: &mut AnyConnection, id: &str) -> Result<Announcement> {
    announcement_of(
        q::get(conn, id)
            .await?
            .ok_or_else(|| Error::not_found("no such announcement"))?,
    )
}

/// Every sample the announcement proposes now (a result reported in its period, within its
/// stage and category), with its public facts and items.
async fn proposal(
    conn: &mut AnyConnection,
    zone: BureauZone,
    a: &Announcement,
) -> Result<Vec<SampleFacts>> {
    let (from, to) = bounds(zone, &a.period_start, &a.period_end)?;
    let scope = Scope {
        stage: a.stage,
        categories: match &a.category_code {
            Some(c) => Some(rules::subtree(&q::category_tree(conn).await?, c)),
            None => None,
        },
    };
    let rows = q::candidates(conn, from, to, a.stage.map(|s| s.code())).await?;
    let mut facts = Vec::with_capacity(rows.len());
    for r in rows {
        let stage =
            Stage::parse(&r.stage).ok_or_else(|| internal(format!("stage {:?}", r.stage)))?;
        if !scope.admits(stage, &r.category_code) {
            continue;
        }
        let verdict = Verdict::parse(&r.overall)
            .ok_or_else(|| internal(format!("verdict {:?}", r.overall)))?;
        let form: Form = serde_json::from_str(&r.form).map_err(internal)?;
        let (brand, specification, production_date_or_batch, producer_name, producer_address) =
            rules::product_facts(&form);
        facts.push(SampleFacts {
            sample_id: r.sample_id,
            items: Vec::new(),
            row: PublicSample {
                position: 0,
                verdict,
                sample_no: r.sample_no,
                premises_name: r.premises_name,
                premises_licensed_name: r.premises_licensed_name,
                premises_address: r.premises_address,
                town: r.town,
                sample_name: r.sample_name,
                brand,
                specification,
                production_date_or_batch,
                producer_name,
                producer_address,
                category_code: r.category_code,
                category_name: r.category_name,
                stage,
                lab_name: r.lab_name,
                report_no: r.report_no,
                failed_items: Vec::new(),
            },
        });
    }
    // Items only of the unqualified samples: qualified rows publish none.
    let unqualified: Vec<String> = facts
        .iter()
        .filter(|f| f.row.verdict == Verdict::Unqualified)
        .map(|f| f.sample_id.clone())
        .collect();
    let mut items: HashMap<String, Vec<ItemFact>> = HashMap::new();
    for (sample, _, verdict, item) in q::result_items(conn, &unqualified).await? {
        items
            .entry(sample)
            .or_default()
            .push(ItemFact { verdict, item });
    }
    for f in &mut facts {
        f.items = items.remove(&f.sample_id).unwrap_or_default();
    }
    Ok(facts)
}

fn announced(rows: Vec<(String, PublicSample)>) -> Vec<AnnouncedSample> {
    rows.into_iter()
        .map(|(sample_id, row)| AnnouncedSample { sample_id, row })
        .collect()
}

fn exclusion_of(r: ExclusionRow, numbers: &HashMap<&str, &str>) -> Exclusion {
    Exclusion {
        sample_no: numbers.get(r.sample_id.as_str()).map(|s| s.to_string()),
        sample_id: r.sample_id,
        reason: r.reason,
        created_by: r.created_by,
        created_at: rfc3339(r.created_at),
    }
}

async fn detail_in(
    conn: &mut AnyConnection,
    zone: BureauZone,
    id: &str,
) -> Result<AnnouncementDetail> {
    let a = load(conn, id).await?;
    let exclusions = q::exclusions(conn, id).await?;
    match a.state {
        AnnouncementState::Draft => {
            let facts = proposal(conn, zone, &a).await?;
            let numbers: HashMap<String, String> = facts
                .iter()
                .map(|f| (f.sample_id.clone(), f.row.sample_no.clone()))
                .collect();
            let refs: HashMap<&str, &str> = numbers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let excluded: HashSet<String> =
                exclusions.iter().map(|e| e.sample_id.clone()).collect();
            let c = rules::compose(facts, &excluded);
            Ok(AnnouncementDetail {
                announcement: a,
                qualified: announced(c.qualified),
                unqualified: announced(c.unqualified),
                excluded: exclusions
                    .into_iter()
                    .map(|e| exclusion_of(e, &refs))
                    .collect(),
            })
        }
        AnnouncementState::Published => {
            let (qualified, unqualified) = q::published_rows(conn, id).await?;
            Ok(AnnouncementDetail {
                announcement: a,
                qualified: announced(qualified),
                unqualified: announced(unqualified),
                excluded: exclusions
                    .into_iter()
                    .map(|e| exclusion_of(e, &HashMap::new()))
                    .collect(),
            })
        }
    }
}

/// An announcement with its tables and exclusions.
pub async fn get(db: &Db, ctx: &Ctx, zone: BureauZone, id: &str) -> Result<AnnouncementDetail> {
    access::require(ctx, OFFICE)?;
    let mut conn = db.acquire().await?;
    detail_in(&mut conn, zone, id).await
}

fn published_conflict() -> Error {
    Error::conflict(
        "announcement_published",
        "the announcement is published and cannot change",
    )
}

/// Locks the draft for this transaction: 404 when unknown, 409 when published.
async fn lock_draft(conn: &mut AnyConnection, id: &str) -> Result<Announcement> {
    let a = load(conn, id).await?;
    if a.state != AnnouncementState::Draft || !q::lock_draft(conn, id).await? {
        return Err(published_conflict());
    }
    Ok(a)
}

/// Leaves a proposed sample out of a draft, with an internal reason.
pub async fn exclude(
    db: &Db,
    ctx: &Ctx,
    zone: BureauZone,
    id: &str,
    n: &NewExclusion,
) -> Result<Exclusion> {
    access::require(ctx, OFFICE)?;
    let mut p = Vec::new();
    check_text(&mut p, "reason", &n.reason, MAX_REASON_CHARS);
    if !p.is_empty() {
        return Err(Error::validation_failed(p));
    }
    let mut tx = db.begin_write().await?;
    let conn = tx.conn();
    let a = lock_draft(conn, id).await?;
    let facts = proposal(conn, zone, &a).await?;
    let Some(f) = facts.iter().find(|f| f.sample_id == n.sample_id) else {
        return Err(Error::invalid(
            "not_proposed",
            "the announcement does not propose this sample (no result reported in its period, stage and category)",
        ));
    };
    let row = ExclusionRow {
        announcement_id: id.to_string(),
        sample_id: n.sample_id.clone(),
        reason: n.reason.trim().to_string(),
        created_by: access::author(ctx).to_string(),
        created_at: store::now_ms(),
    };
    q::insert_exclusion(conn, &row).await.map_err(|e| {
        if store::is_unique_violation(&e) {
            Error::conflict("duplicate", "the sample is already excluded")
        } else {
            e.into()
        }
    })?;
    let event = Event::new(
        Action::AnnouncementSampleExcluded,
        RecordKind::Announcement,
        id,
    )
    .set("sample_id", &row.sample_id)
    .set("reason", &row.reason);
    store::audit::append(conn, ctx, &[event]).await?;
    let numbers: HashMap<&str, &str> =
        HashMap::from([(f.sample_id.as_str(), f.row.sample_no.as_str())]);
    let out = exclusion_of(row, &numbers);
    tx.commit().await?;
    Ok(out)
}

/// Takes a sample back into a draft. 404 when it is not excluded.
pub async fn include(db: &Db, ctx: &Ctx, id: &str, sample_id: &str) -> Result<()> {
    access::require(ctx, OFFICE)?;
    let mut tx = db.begin_write().await?;
    let conn = tx.conn();
    lock_draft(conn, id).await?;
    let reason = q::delete_exclusion(conn, id, sample_id)
        .await?
        .ok_or_else(|| Error::not_found("the sample is not excluded from this announcement"))?;
    let event = Event::new(
        Action::AnnouncementSampleIncluded,
        RecordKind::Announcement,
        id,
    )
    .set("sample_id", sample_id)
    .change("reason", &reason, serde_json::Value::Null);
    store::audit::append(conn, ctx, &[event]).await?;
    tx.commit().await?;
    Ok(())
}

/// Publishes a draft: the audit log is integrated and a checkpoint signed first (its note is
/// stored on the announcement), then, in one transaction, the tables are composed from the
/// samples as they are now and copied into the announcement's rows, and the state changes.
/// 422 `empty_announcement` when no sample would be published; of two concurrent publishes one
/// wins, the other gets 409.
pub async fn publish(
    db: &Db,
    ctx: &Ctx,
    zone: BureauZone,
    signer: &NoteSigner,
    id: &str,
) -> Result<AnnouncementDetail> {
    access::require(ctx, OFFICE)?;
    {
        let mut conn = db.acquire().await?;
        let a = load(&mut conn, id).await?;
        if a.state != AnnouncementState::Draft {
            return Err(published_conflict());
        }
    }
    let publication = crate::ops::audit::before_publication(db, ctx, signer).await?;
    let (by, now, note) = (&publication.by, publication.at, &publication.note);
    let mut tx = db.begin_write().await?;
    let conn = tx.conn();
    let a = lock_draft(conn, id).await?;
    let facts = proposal(conn, zone, &a).await?;
    let excluded: HashSet<String> = q::exclusions(conn, id)
        .await?
        .into_iter()
        .map(|e| e.sample_id)
        .collect();
    let c = rules::compose(facts, &excluded);
    if c.qualified.is_empty() && c.unqualified.is_empty() {
        return Err(Error::invalid(
            "empty_announcement",
            "no sample would be published: none has a result reported in the period, or all are excluded",
        ));
    }
    q::insert_rows(conn, id, &c.qualified).await?;
    q::insert_rows(conn, id, &c.unqualified).await?;
    let counts = (c.qualified.len() as i64, c.unqualified.len() as i64);
    if !q::publish(conn, id, by, note.as_deref(), counts, now).await? {
        return Err(published_conflict());
    }
    let event = publication
        .event(
            Action::AnnouncementPublished,
            RecordKind::Announcement,
            id,
            AnnouncementState::Draft,
            AnnouncementState::Published,
        )
        .set("qualified_count", counts.0)
        .set("unqualified_count", counts.1)
        .set(
            "sample_ids",
            c.qualified
                .iter()
                .chain(&c.unqualified)
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>(),
        );
    store::audit::append(conn, ctx, &[event]).await?;
    let detail = detail_in(conn, zone, id).await?;
    tx.commit().await?;
    Ok(detail)
}
