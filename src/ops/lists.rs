//! The red/black list (红黑榜) use cases (admin, reviewer): compose a draft issue from approved
//! inspections, publish it (after an audit checkpoint), correct it by a revision, and keep its
//! entries' lifecycle: a black entry rectified after a passed recheck, a red entry revoked by
//! hand or by a later failing approval ([`on_approval`], inside the review's transaction).
//! Each write is one transaction with its audit events; the rules are in `crate::lists`.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::templates::{failed_codes, Templates};
use super::{access, Ctx, Error, Result};
use crate::audit::checkpoint::NoteSigner;
use crate::audit::{Action, Event, RecordKind};
use crate::auth::Role;
use crate::checklist::rule::ResultCode;
use crate::clock::BureauZone;
use crate::establishment::FieldError;
use crate::lists::{
    self, Approval, Candidate, Criteria, EstablishmentFacts, FailedItem, FollowupFacts,
    InspectionFact, IssueState, ListType, ListedEntry, Period, RectifyRefusal, RectifyingFollowup,
    SampleFact, UpdateKind,
};
use crate::store::lists::{self as q, EntryRow, InspectionRow, IssueRow, ListedRow, UpdateRow};
use crate::store::{self, Db};

const OFFICE: &[Role] = &[Role::Reviewer, Role::Admin];
/// At most this many entries in one issue (keeps an issue's reads and copies bounded).
pub const MAX_ENTRIES: i64 = 1000;

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("{e}"))
}

fn day(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(internal)
}

/// The first instant (Unix ms) of bureau day `d`. The zone is a fixed offset within ±15 h of
/// UTC, so a search over that window finds the exact second the day starts.
pub fn day_start_ms(zone: BureauZone, d: NaiveDate) -> i64 {
    let midnight = d
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .timestamp();
    let (mut lo, mut hi) = (midnight - 15 * 3600, midnight + 15 * 3600);
    let on = |t: i64| zone.date_at(DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if on(mid) >= d {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo * 1000
}

fn date_of(zone: BureauZone, ms: i64) -> NaiveDate {
    zone.date_at(DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default())
}

/// `[from, to)` in Unix ms for the inclusive bureau days `start..=end`.
fn bounds(zone: BureauZone, start: NaiveDate, end: NaiveDate) -> (i64, i64) {
    (
        day_start_ms(zone, start),
        day_start_ms(zone, end + chrono::Days::new(1)),
    )
}

// ---- Views -------------------------------------------------------------------------------

/// A lifecycle update on an entry (public).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntryUpdate {
    pub id: String,
    pub kind: UpdateKind,
    /// `YYYY-MM-DD`: the recheck's day (rectified) or the failing inspection's / decision's day
    /// (revoked).
    pub occurred_on: String,
    /// Public text: 整改后信息, or the reason of the revocation.
    pub text: String,
    pub inspection_id: Option<String>,
    pub followup_id: Option<String>,
    /// A user id, or `system` for automatic revocations (internal).
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
}

/// An entry (the internal view).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Entry {
    pub id: String,
    pub issue_id: String,
    pub list_type: ListType,
    /// 1, 2, ... within its list.
    pub position: i64,
    pub establishment_id: String,
    /// The basis inspection (`null` when the basis is a sample).
    pub inspection_id: Option<String>,
    /// The basis 不合格 sample (食品安全抽检; black entries only), `null` for an inspection basis.
    pub sample_id: Option<String>,
    /// `YYYY-MM-DD`: the bureau-zone day of the basis's `submitted_at` (a sample: its lab
    /// report's).
    pub inspected_on: Option<String>,
    /// The basis's effective result (override if any, else computed); `null` for a sample.
    pub result: Option<ResultCode>,
    /// 牌匾名称, as listed.
    pub sign_name: String,
    /// 营业执照名称.
    pub licensed_name: String,
    pub license_no: Option<String>,
    /// 经营地址.
    pub address: String,
    pub town: String,
    pub category: String,
    /// WGS-84.
    pub lng: Option<f64>,
    pub lat: Option<f64>,
    /// 上榜理由.
    pub reason: String,
    /// 处理措施 (black only).
    pub measures: Option<String>,
    /// Photos made public with the entry, in order.
    pub photo_ids: Vec<String>,
    pub updates: Vec<EntryUpdate>,
}

/// An issue (期) of the list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Issue {
    pub id: String,
    /// 期号.
    pub issue_no: String,
    pub revision: i64,
    /// The published issue this revision corrects.
    pub revises_id: Option<String>,
    /// Public note: what the correction changed.
    pub revision_note: Option<String>,
    pub title: String,
    pub theme: String,
    pub district: String,
    pub period_start: String,
    pub period_end: String,
    pub criteria: Criteria,
    pub state: IssueState,
    /// Unix ms.
    pub published_at: Option<i64>,
    pub published_by: Option<String>,
    /// The signed audit checkpoint taken before publication.
    pub checkpoint: Option<String>,
    /// The later revision that replaced this one.
    pub superseded_by: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn issue_of(r: IssueRow) -> Result<Issue> {
    Ok(Issue {
        criteria: serde_json::from_str(&r.criteria).map_err(internal)?,
        state: IssueState::parse(&r.state).ok_or_else(|| internal(&r.state))?,
        id: r.id,
        issue_no: r.issue_no,
        revision: r.revision,
        revises_id: r.revises_id,
        revision_note: r.revision_note,
        title: r.title,
        theme: r.theme,
        district: r.district,
        period_start: r.period_start,
        period_end: r.period_end,
        published_at: r.published_at,
        published_by: r.published_by,
        checkpoint: r.checkpoint,
        superseded_by: r.superseded_by,
        created_by: r.created_by,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

fn update_of(u: UpdateRow) -> Result<EntryUpdate> {
    Ok(EntryUpdate {
        kind: UpdateKind::parse(&u.kind).ok_or_else(|| internal(&u.kind))?,
        id: u.id,
        occurred_on: u.occurred_on,
        text: u.text,
        inspection_id: u.inspection_id,
        followup_id: u.followup_id,
        created_by: u.created_by,
        created_at: u.created_at,
    })
}

fn entry_of(e: EntryRow, photo_ids: Vec<String>, updates: Vec<EntryUpdate>) -> Result<Entry> {
    Ok(Entry {
        list_type: ListType::parse(&e.list_type).ok_or_else(|| internal(&e.list_type))?,
        result: e.result.as_deref().and_then(store::followup::parse_result),
        id: e.id,
        issue_id: e.issue_id,
        position: e.position,
        establishment_id: e.establishment_id,
        inspection_id: e.inspection_id,
        sample_id: e.sample_id,
        inspected_on: e.inspected_on,
        sign_name: e.sign_name,
        licensed_name: e.licensed_name,
        license_no: e.license_no,
        address: e.address,
        town: e.town,
        category: e.category,
        lng: e.lng,
        lat: e.lat,
        reason: e.reason,
        measures: e.measures,
        photo_ids,
        updates,
    })
}

/// An issue with its entries, photos and lifecycle updates.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssueDetail {
    #[serde(flatten)]
    pub issue: Issue,
    pub entries: Vec<Entry>,
}

// ---- Inputs ------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIssue {
    /// 期号, e.g. `2026年第11期` (1–100 characters).
    pub issue_no: String,
    /// 1–200 characters.
    pub title: String,
    /// 1–200 characters.
    pub theme: String,
    /// 1–100 characters.
    pub district: String,
    /// `YYYY-MM-DD`.
    pub period_start: String,
    /// `YYYY-MM-DD`, not before `period_start`, at most 366 days after it.
    pub period_end: String,
    /// Default: `Criteria` defaults.
    pub criteria: Option<Criteria>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEntry {
    pub establishment_id: String,
    pub list_type: ListType,
    /// The basis: an approved inspection of the establishment submitted in the period. Exactly
    /// one of `inspection_id` and `sample_id`.
    pub inspection_id: Option<String>,
    /// The basis of a black entry: a sample of the establishment whose lab result is 不合格,
    /// reported in the period (its public 上榜理由 names the failed items; no photos).
    pub sample_id: Option<String>,
    /// 上榜理由 (1–500 characters).
    pub reason: String,
    /// 处理措施 (1–500; required for black, refused for red).
    pub measures: Option<String>,
    /// Processed photos of the basis inspection to make public (at most 6).
    #[serde(default)]
    pub photo_ids: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryPatch {
    pub reason: Option<String>,
    /// `null` leaves it; a red entry refuses any.
    pub measures: Option<String>,
    /// Replaces the photos when given.
    pub photo_ids: Option<Vec<String>>,
}

pub(super) fn field_errors(p: Vec<lists::Problem>) -> Error {
    Error::validation_failed(
        p.into_iter()
            .map(|(f, c, m)| FieldError::new(f, c, m))
            .collect(),
    )
}

// ---- Facts -------------------------------------------------------------------------------

fn effective(r: &InspectionRow) -> Option<ResultCode> {
    r.override_result
        .as_deref()
        .or(r.computed_result.as_deref())
        .and_then(store::followup::parse_result)
}

async fn fact_of(
    conn: &mut AnyConnection,
    t: &mut Templates,
    zone: BureauZone,
    r: &InspectionRow,
) -> Result<Option<InspectionFact>> {
    let (Some(result), Some(at)) = (effective(r), r.submitted_at) else {
        return Ok(None);
    };
    let failed = failed_codes(r.evaluation.as_deref());
    let content = t.get(conn, &r.template_id, r.template_version).await?;
    let failed_key_items = failed
        .iter()
        .filter_map(|c| content.item(c))
        .filter(|i| i.key)
        .map(|i| FailedItem {
            code: i.code.clone(),
            text: i.text.clone(),
        })
        .collect();
    let followup = r.followup_state.as_ref().map(|s| FollowupFacts {
        stop_operating: r.stop_operating.unwrap_or(0) != 0,
        case_opened: r.case_opened.unwrap_or(0) != 0,
        period_working_days: r.period_working_days.unwrap_or(0) as u32,
        unclosed: s != "closed",
    });
    Ok(Some(InspectionFact {
        inspection_id: r.id.clone(),
        submitted_at: at,
        inspected_on: date_of(zone, at),
        result,
        failed_key_items,
        followup,
    }))
}

async fn sample_fact(
    conn: &mut AnyConnection,
    zone: BureauZone,
    r: q::UnqualifiedSampleRow,
) -> Result<SampleFact> {
    Ok(SampleFact {
        failed_items: q::failed_item_names(conn, &r.id).await?,
        reported_on: date_of(zone, r.reported_at),
        reported_at: r.reported_at,
        sample_id: r.id,
        sample_name: r.sample_name,
    })
}

async fn establishment_facts(
    conn: &mut AnyConnection,
    t: &mut Templates,
    zone: BureauZone,
    c: &Criteria,
    p: &Period,
    establishment_id: &str,
) -> Result<EstablishmentFacts> {
    let (from, to) = bounds(zone, p.facts_start(c), p.end);
    let rows = q::approved_at(conn, establishment_id, from, to).await?;
    let mut inspections = Vec::with_capacity(rows.len());
    for r in &rows {
        inspections.extend(fact_of(conn, t, zone, r).await?);
    }
    let mut samples = Vec::new();
    for r in q::unqualified_samples(conn, establishment_id, from, to).await? {
        samples.push(sample_fact(conn, zone, r).await?);
    }
    let window = day_start_ms(zone, p.look_back_start(c));
    Ok(EstablishmentFacts {
        establishment_id: establishment_id.to_string(),
        inspections,
        samples,
        unclosed_followup: q::has_unclosed_followup(conn, establishment_id, window).await?,
    })
}

struct Loaded {
    issue: Issue,
    criteria: Criteria,
    period: Period,
}

async fn load(conn: &mut AnyConnection, id: &str) -> Result<Loaded> {
    let row = q::issue(conn, id)
        .await?
        .ok_or_else(|| Error::not_found("no such list issue"))?;
    let issue = issue_of(row)?;
    Ok(Loaded {
        criteria: issue.criteria.clone(),
        period: Period {
            start: day(&issue.period_start)?,
            end: day(&issue.period_end)?,
        },
        issue,
    })
}

fn require_draft(i: &Issue) -> Result<()> {
    if i.state != IssueState::Draft {
        return Err(Error::conflict(
            "issue_published",
            "the issue is published and cannot change; create a revision",
        ));
    }
    Ok(())
}

// ---- Issues ------------------------------------------------------------------------------

fn check_issue(n: &NewIssue) -> Result<(Period, Criteria)> {
    let mut p: Vec<lists::Problem> = Vec::new();
    for (f, v, max) in [
        ("issue_no", &n.issue_no, 100),
        ("title", &n.title, 200),
        ("theme", &n.theme, 200),
        ("district", &n.district, 100),
    ] {
        p.extend(lists::check_text(f, v, max));
    }
    let start = NaiveDate::parse_from_str(&n.period_start, "%Y-%m-%d");
    let end = NaiveDate::parse_from_str(&n.period_end, "%Y-%m-%d");
    if start.is_err() {
        p.push(("period_start", "invalid_date", "expected YYYY-MM-DD".into()));
    }
    if end.is_err() {
        p.push(("period_end", "invalid_date", "expected YYYY-MM-DD".into()));
    }
    let criteria = n.criteria.clone().unwrap_or_default();
    for m in criteria.problems() {
        p.push(("criteria", "invalid_criteria", m.into()));
    }
    if let (Ok(s), Ok(e)) = (start, end) {
        if e < s || (e - s).num_days() > 366 {
            p.push((
                "period_end",
                "invalid_period",
                "the period ends before it starts or spans more than 366 days".into(),
            ));
        }
    }
    if !p.is_empty() {
        return Err(field_errors(p));
    }
    Ok((
        Period {
            start: start.map_err(internal)?,
            end: end.map_err(internal)?,
        },
        criteria,
    ))
}

/// Creates a draft issue (revision 1). 409 `duplicate` when the 期号 is taken.
pub async fn create(db: &Db, ctx: &Ctx, n: &NewIssue) -> Result<Issue> {
    access::require(ctx, OFFICE)?;
    let (period, criteria) = check_issue(n)?;
    let now = store::now_ms();
    let row = IssueRow {
        id: uuid::Uuid::new_v4().to_string(),
        issue_no: n.issue_no.trim().to_string(),
        revision: 1,
        revises_id: None,
        revision_note: None,
        title: n.title.trim().to_string(),
        theme: n.theme.trim().to_string(),
        district: n.district.trim().to_string(),
        period_start: period.start.to_string(),
        period_end: period.end.to_string(),
        criteria: serde_json::to_string(&criteria).map_err(internal)?,
        state: IssueState::Draft.as_str().into(),
        published_at: None,
        published_by: None,
        checkpoint: None,
        superseded_by: None,
        created_by: access::author(ctx).to_string(),
        created_at: now,
        updated_at: now,
    };
    let mut tx = db.begin_write().await?;
    q::insert_issue(tx.conn(), &row).await.map_err(|e| {
        if store::is_unique_violation(&e) {
            Error::conflict("duplicate", "an issue with this 期号 already exists")
        } else {
            e.into()
        }
    })?;
    let issue = issue_of(row)?;
    let event =
        Event::new(Action::ListIssueCreated, RecordKind::ListIssue, &issue.id).created(&issue);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(issue)
}

/// A page of issues, newest first.
pub async fn list(
    db: &Db,
    ctx: &Ctx,
    state: Option<IssueState>,
    page: u32,
    page_size: u32,
) -> Result<(Vec<Issue>, i64)> {
    access::require(ctx, OFFICE)?;
    let mut conn = db.acquire().await?;
    let (rows, total) = q::issues(&mut conn, state.map(|s| s.as_str()), page, page_size).await?;
    Ok((
        rows.into_iter().map(issue_of).collect::<Result<_>>()?,
        total,
    ))
}

async fn detail_in(conn: &mut AnyConnection, id: &str) -> Result<IssueDetail> {
    let l = load(conn, id).await?;
    let rows = q::entries(conn, id).await?;
    let mut photos: HashMap<String, Vec<String>> = HashMap::new();
    for (e, p) in q::photos_of_issue(conn, id).await? {
        photos.entry(e).or_default().push(p);
    }
    let mut updates: HashMap<String, Vec<EntryUpdate>> = HashMap::new();
    for u in q::updates_of_issue(conn, id).await? {
        updates
            .entry(u.entry_id.clone())
            .or_default()
            .push(update_of(u)?);
    }
    let entries = rows
        .into_iter()
        .map(|e| {
            let p = photos.remove(&e.id).unwrap_or_default();
            let u = updates.remove(&e.id).unwrap_or_default();
            entry_of(e, p, u)
        })
        .collect::<Result<_>>()?;
    Ok(IssueDetail {
        issue: l.issue,
        entries,
    })
}

/// An issue with its entries (the internal view).
pub async fn get(db: &Db, ctx: &Ctx, id: &str) -> Result<IssueDetail> {
    access::require(ctx, OFFICE)?;
    let mut conn = db.acquire().await?;
    detail_in(&mut conn, id).await
}

/// A page of candidates: establishments with an approved inspection in the period and no
/// entry yet, by id; those qualifying for neither list are left out of the page (so a page
/// may hold fewer than `page_size`). Returns the candidates and the number of establishments
/// considered in all.
pub async fn candidates(
    db: &Db,
    ctx: &Ctx,
    zone: BureauZone,
    id: &str,
    page: u32,
    page_size: u32,
) -> Result<(Vec<Candidate>, i64)> {
    access::require(ctx, OFFICE)?;
    let mut conn = db.acquire().await?;
    let l = load(&mut conn, id).await?;
    let (from, to) = bounds(zone, l.period.start, l.period.end);
    let (ids, total) =
        q::candidate_establishments(&mut conn, id, from, to, page, page_size).await?;
    let mut t = Templates::default();
    let mut facts = Vec::with_capacity(ids.len());
    for e in &ids {
        facts.push(establishment_facts(&mut conn, &mut t, zone, &l.criteria, &l.period, e).await?);
    }
    Ok((lists::propose(&l.criteria, &l.period, &facts), total))
}

// ---- Entries -----------------------------------------------------------------------------

async fn check_photos(conn: &mut AnyConnection, inspection_id: &str, ids: &[String]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    if ids.iter().any(|p| !seen.insert(p)) {
        return Err(Error::invalid("invalid_photo", "a photo is named twice"));
    }
    let ok = q::processed_photos_of(conn, inspection_id, ids).await?;
    if ok.len() != ids.len() {
        return Err(Error::invalid(
            "invalid_photo",
            "every photo must be a processed photo of the basis inspection",
        ));
    }
    if !q::taken_down_of(conn, ids).await?.is_empty() {
        return Err(Error::invalid(
            "invalid_photo",
            "a photo taken down from the public side cannot be made public again",
        ));
    }
    Ok(())
}

/// The basis of a new entry, checked.
struct Basis {
    inspection_id: Option<String>,
    sample_id: Option<String>,
    on: NaiveDate,
    result: Option<ResultCode>,
}

/// An approved inspection of the establishment in the period that qualifies for the list.
async fn inspection_basis(
    conn: &mut AnyConnection,
    zone: BureauZone,
    l: &Loaded,
    n: &NewEntry,
    inspection_id: &str,
) -> Result<Basis> {
    let basis = q::inspection(conn, inspection_id)
        .await?
        .filter(|b| b.establishment_id == n.establishment_id)
        .ok_or_else(|| {
            Error::invalid(
                "basis_not_found",
                "no such inspection of this establishment",
            )
        })?;
    if basis.review_state.as_deref() != Some("approved") {
        return Err(Error::invalid(
            "basis_not_approved",
            "the basis inspection is not approved",
        ));
    }
    let mut t = Templates::default();
    let fact = fact_of(conn, &mut t, zone, &basis)
        .await?
        .ok_or_else(|| Error::invalid("basis_not_approved", "the basis has no result"))?;
    if !l.period.contains(fact.inspected_on) {
        return Err(Error::invalid(
            "basis_not_in_period",
            "the basis inspection was not submitted in the issue's period",
        ));
    }
    let facts = establishment_facts(
        conn,
        &mut t,
        zone,
        &l.criteria,
        &l.period,
        &n.establishment_id,
    )
    .await?;
    lists::qualifies(&l.criteria, &l.period, &facts, &fact, n.list_type)
        .map_err(|d| Error::invalid("basis_does_not_qualify", d.message()))?;
    check_photos(conn, &basis.id, &n.photo_ids).await?;
    Ok(Basis {
        inspection_id: Some(basis.id),
        sample_id: None,
        on: fact.inspected_on,
        result: Some(fact.result),
    })
}

/// A 不合格 sample of the establishment reported in the period, for a black entry (no photos).
async fn sample_basis(
    conn: &mut AnyConnection,
    zone: BureauZone,
    l: &Loaded,
    n: &NewEntry,
    sample_id: &str,
) -> Result<Basis> {
    let (row, establishment) = q::unqualified_sample(conn, sample_id)
        .await?
        .filter(|(_, e)| *e == n.establishment_id)
        .ok_or_else(|| {
            Error::invalid(
                "basis_not_found",
                "no sample of this establishment with a 不合格 result",
            )
        })?;
    debug_assert_eq!(establishment, n.establishment_id);
    let fact = sample_fact(conn, zone, row).await?;
    if !l.period.contains(fact.reported_on) {
        return Err(Error::invalid(
            "basis_not_in_period",
            "the sample's 不合格 result was not reported in the issue's period",
        ));
    }
    lists::qualifies_sample(&l.period, &fact, n.list_type)
        .map_err(|d| Error::invalid("basis_does_not_qualify", d.message()))?;
    if !n.photo_ids.is_empty() {
        return Err(Error::invalid(
            "invalid_photo",
            "an entry resting on a sample makes no photo public",
        ));
    }
    Ok(Basis {
        inspection_id: None,
        sample_id: Some(fact.sample_id),
        on: fact.reported_on,
        result: None,
    })
}

/// Adds an entry to a draft issue (its basis: an approved inspection, or for a black entry a
/// 不合格 sample).
pub async fn add_entry(
    db: &Db,
    ctx: &Ctx,
    zone: BureauZone,
    issue_id: &str,
    n: &NewEntry,
) -> Result<Entry> {
    access::require(ctx, OFFICE)?;
    let p = lists::validate_entry(
        n.list_type,
        &n.reason,
        n.measures.as_deref(),
        n.photo_ids.len(),
    );
    if !p.is_empty() {
        return Err(field_errors(p));
    }
    let mut tx = db.begin_write().await?;
    let conn = tx.conn();
    q::lock(conn, issue_id).await?;
    let l = load(conn, issue_id).await?;
    require_draft(&l.issue)?;
    let est = store::establishments::get(conn, &n.establishment_id)
        .await?
        .ok_or_else(|| Error::invalid("unknown_establishment", "no such establishment"))?;
    if q::has_entry_for(conn, issue_id, &n.establishment_id).await? {
        return Err(Error::conflict(
            "duplicate",
            "the establishment already has an entry in this issue",
        ));
    }
    if q::entry_count(conn, issue_id).await? >= MAX_ENTRIES {
        return Err(Error::invalid(
            "too_many_entries",
            format!("an issue holds at most {MAX_ENTRIES} entries"),
        ));
    }
    let basis = match (&n.inspection_id, &n.sample_id) {
        (Some(inspection_id), None) => inspection_basis(conn, zone, &l, n, inspection_id).await?,
        (None, Some(sample_id)) => sample_basis(conn, zone, &l, n, sample_id).await?,
        _ => {
            return Err(Error::invalid(
                "basis_required",
                "name exactly one basis: inspection_id or sample_id",
            ))
        }
    };
    let now = store::now_ms();
    let (lng, lat) = match &est.location {
        Some(l) => (Some(l.wgs84_lng), Some(l.wgs84_lat)),
        None => (None, None),
    };
    let row = EntryRow {
        id: uuid::Uuid::new_v4().to_string(),
        issue_id: issue_id.to_string(),
        list_type: n.list_type.as_str().into(),
        position: q::next_position(conn, issue_id, n.list_type.as_str()).await?,
        establishment_id: est.id.clone(),
        inspection_id: basis.inspection_id,
        sample_id: basis.sample_id,
        inspected_on: Some(basis.on.to_string()),
        result: basis.result.map(|r| store::followup::result_str(r).into()),
        sign_name: est.sign_name.clone(),
        licensed_name: est.licensed_name.clone(),
        license_no: est.license_no.clone(),
        address: est.address.clone(),
        town: est.town.clone(),
        category: est.category.code().into(),
        lng,
        lat,
        reason: n.reason.trim().to_string(),
        measures: n.measures.as_ref().map(|m| m.trim().to_string()),
        created_by: access::author(ctx).to_string(),
        created_at: now,
        updated_at: now,
    };
    q::insert_entry(conn, &row).await?;
    q::set_photos(conn, &row.id, &n.photo_ids).await?;
    let entry = entry_of(row, n.photo_ids.clone(), Vec::new())?;
    let event =
        Event::new(Action::ListEntryAdded, RecordKind::ListEntry, &entry.id).created(&entry);
    store::audit::append(conn, ctx, &[event]).await?;
    tx.commit().await?;
    Ok(entry)
}

async fn draft_entry(conn: &mut AnyConnection, issue_id: &str, entry_id: &str) -> Result<EntryRow> {
    q::lock(conn, issue_id).await?;
    let l = load(conn, issue_id).await?;
    let e = q::entry(conn, entry_id)
        .await?
        .filter(|e| e.issue_id == issue_id)
        .ok_or_else(|| Error::not_found("no such entry in this issue"))?;
    require_draft(&l.issue)?;
    Ok(e)
}

/// Changes a draft entry's texts or photos.
pub async fn update_entry(
    db: &Db,
    ctx: &Ctx,
    issue_id: &str,
    entry_id: &str,
    patch: &EntryPatch,
) -> Result<Entry> {
    access::require(ctx, OFFICE)?;
    let mut tx = db.begin_write().await?;
    let conn = tx.conn();
    let e = draft_entry(conn, issue_id, entry_id).await?;
    let photos = q::photos_of_entry(conn, entry_id).await?;
    let before = entry_of(e.clone(), photos.clone(), Vec::new())?;
    let reason = patch.reason.clone().unwrap_or_else(|| e.reason.clone());
    let measures = patch.measures.clone().or_else(|| e.measures.clone());
    let new_photos = patch.photo_ids.clone().unwrap_or(photos);
    let p = lists::validate_entry(
        before.list_type,
        &reason,
        measures.as_deref(),
        new_photos.len(),
    );
    if !p.is_empty() {
        return Err(field_errors(p));
    }
    if patch.photo_ids.is_some() {
        let basis = e.inspection_id.clone().unwrap_or_default();
        check_photos(conn, &basis, &new_photos).await?;
        q::set_photos(conn, entry_id, &new_photos).await?;
    }
    let now = store::now_ms();
    let reason = reason.trim().to_string();
    let measures = measures.map(|m| m.trim().to_string());
    q::update_entry(conn, entry_id, &reason, measures.as_deref(), now).await?;
    let after = Entry {
        reason,
        measures,
        photo_ids: new_photos,
        ..before.clone()
    };
    let event =
        Event::new(Action::ListEntryUpdated, RecordKind::ListEntry, entry_id).diff(&before, &after);
    store::audit::append(conn, ctx, &[event]).await?;
    tx.commit().await?;
    Ok(after)
}

/// Removes an entry from a draft issue.
pub async fn remove_entry(db: &Db, ctx: &Ctx, issue_id: &str, entry_id: &str) -> Result<()> {
    access::require(ctx, OFFICE)?;
    let mut tx = db.begin_write().await?;
    let conn = tx.conn();
    let e = draft_entry(conn, issue_id, entry_id).await?;
    let photos = q::photos_of_entry(conn, entry_id).await?;
    let before = entry_of(e, photos, Vec::new())?;
    q::delete_entry(conn, entry_id).await?;
    let event = Event::new(Action::ListEntryRemoved, RecordKind::ListEntry, entry_id)
        .diff(&before, &serde_json::Value::Null);
    store::audit::append(conn, ctx, &[event]).await?;
    tx.commit().await?;
    Ok(())
}

// ---- Publication and revisions ---------------------------------------------------------

/// Publishes a draft: the audit log is integrated and a checkpoint signed first, and that
/// note is stored on the issue; the publication event follows it in the log. A revision
/// supersedes the issue it revises and takes over the lifecycle updates that issue's entries
/// received meanwhile. Of two concurrent publishes one wins; the other gets 409.
pub async fn publish(db: &Db, ctx: &Ctx, signer: &NoteSigner, id: &str) -> Result<IssueDetail> {
    access::require(ctx, OFFICE)?;
    {
        let mut conn = db.acquire().await?;
        let l = load(&mut conn, id).await?;
        require_draft(&l.issue)?;
        if q::entry_count(&mut conn, id).await? == 0 {
            return Err(Error::invalid(
                "empty_issue",
                "an issue needs at least one entry",
            ));
        }
    }
    let publication = crate::ops::audit::before_publication(db, ctx, signer).await?;
    let (by, now, note) = (&publication.by, publication.at, &publication.note);
    let mut tx = db.begin_write().await?;
    let conn = tx.conn();
    q::lock(conn, id).await?;
    let l = load(conn, id).await?;
    require_draft(&l.issue)?;
    if !q::publish(conn, id, by, note.as_deref(), now).await? {
        return Err(Error::conflict(
            "issue_published",
            "the issue was published meanwhile",
        ));
    }
    let mut events = vec![publication.event(
        Action::ListIssuePublished,
        RecordKind::ListIssue,
        id,
        IssueState::Draft,
        IssueState::Published,
    )];
    if let Some(old) = &l.issue.revises_id {
        if !q::supersede(conn, old, id, now).await? {
            return Err(Error::conflict(
                "issue_superseded",
                "the revised issue was superseded meanwhile",
            ));
        }
        events.push(
            Event::new(Action::ListIssueSuperseded, RecordKind::ListIssue, old)
                .set("superseded_by", id),
        );
        carry_updates(conn, old, id, &mut events).await?;
    }
    store::audit::append(conn, ctx, &events).await?;
    let detail = detail_in(conn, id).await?;
    tx.commit().await?;
    Ok(detail)
}

/// Copies lifecycle updates of the old issue's entries that the new one's entries (same
/// establishment) lack, e.g. a revocation made while the revision was a draft.
async fn carry_updates(
    conn: &mut AnyConnection,
    old: &str,
    new: &str,
    events: &mut Vec<Event>,
) -> Result<()> {
    let new_entries: HashMap<String, EntryRow> = q::entries(conn, new)
        .await?
        .into_iter()
        .map(|e| (e.establishment_id.clone(), e))
        .collect();
    let old_entries: HashMap<String, String> = q::entries(conn, old)
        .await?
        .into_iter()
        .map(|e| (e.id, e.establishment_id))
        .collect();
    for u in q::updates_of_issue(conn, old).await? {
        let Some(target) = old_entries
            .get(&u.entry_id)
            .and_then(|est| new_entries.get(est))
        else {
            continue;
        };
        let have = q::update_kinds(conn, &target.id).await?;
        if have.contains(&u.kind) {
            continue;
        }
        let copy = UpdateRow {
            id: uuid::Uuid::new_v4().to_string(),
            entry_id: target.id.clone(),
            ..u
        };
        q::insert_update(conn, &copy).await?;
        events.push(
            Event::new(
                lifecycle_action(&copy.kind),
                RecordKind::ListEntry,
                &target.id,
            )
            .set("kind", &copy.kind)
            .set("occurred_on", &copy.occurred_on)
            .set("text", &copy.text)
            .set("carried_from", &u.entry_id),
        );
    }
    Ok(())
}

fn lifecycle_action(kind: &str) -> Action {
    if kind == UpdateKind::Rectified.as_str() {
        Action::ListEntryRectified
    } else {
        Action::ListEntryRevoked
    }
}

/// Starts a correction of a published issue: a new draft (revision + 1) with the entries and
/// their photos copied and a public note.
pub async fn revise(db: &Db, ctx: &Ctx, id: &str, note: &str) -> Result<IssueDetail> {
    access::require(ctx, OFFICE)?;
    if let Some(p) = lists::check_text("note", note, lists::MAX_TEXT_CHARS) {
        return Err(field_errors(vec![p]));
    }
    let mut tx = db.begin_write().await?;
    let conn = tx.conn();
    let l = load(conn, id).await?;
    if l.issue.state != IssueState::Published {
        return Err(Error::conflict(
            "issue_not_published",
            "only a published issue is revised",
        ));
    }
    if l.issue.superseded_by.is_some() {
        return Err(Error::conflict(
            "issue_superseded",
            "a later revision replaced this issue; revise that one",
        ));
    }
    if q::draft_revision_of(conn, id).await?.is_some() {
        return Err(Error::conflict(
            "revision_exists",
            "this issue already has a draft revision",
        ));
    }
    let now = store::now_ms();
    let by = access::author(ctx).to_string();
    let new_id = uuid::Uuid::new_v4().to_string();
    let i = &l.issue;
    let row = IssueRow {
        id: new_id.clone(),
        issue_no: i.issue_no.clone(),
        revision: i.revision + 1,
        revises_id: Some(i.id.clone()),
        revision_note: Some(note.trim().to_string()),
        title: i.title.clone(),
        theme: i.theme.clone(),
        district: i.district.clone(),
        period_start: i.period_start.clone(),
        period_end: i.period_end.clone(),
        criteria: serde_json::to_string(&i.criteria).map_err(internal)?,
        state: IssueState::Draft.as_str().into(),
        published_at: None,
        published_by: None,
        checkpoint: None,
        superseded_by: None,
        created_by: by.clone(),
        created_at: now,
        updated_at: now,
    };
    q::insert_issue(conn, &row).await?;
    let mut photos: HashMap<String, Vec<String>> = HashMap::new();
    for (e, p) in q::photos_of_issue(conn, id).await? {
        photos.entry(e).or_default().push(p);
    }
    for e in q::entries(conn, id).await? {
        let old_id = e.id.clone();
        let copy = EntryRow {
            id: uuid::Uuid::new_v4().to_string(),
            issue_id: new_id.clone(),
            created_by: by.clone(),
            created_at: now,
            updated_at: now,
            ..e
        };
        q::insert_entry(conn, &copy).await?;
        q::set_photos(conn, &copy.id, &photos.remove(&old_id).unwrap_or_default()).await?;
    }
    // Updates the published entries already have carry over too.
    let mut events = vec![
        Event::new(Action::ListRevisionCreated, RecordKind::ListIssue, &new_id)
            .set("revises_id", id)
            .set("revision", row.revision)
            .set("revision_note", &row.revision_note),
    ];
    carry_updates(conn, id, &new_id, &mut events).await?;
    store::audit::append(conn, ctx, &events).await?;
    let detail = detail_in(conn, &new_id).await?;
    tx.commit().await?;
    Ok(detail)
}

// ---- Lifecycle ---------------------------------------------------------------------------

fn listed_of(r: &ListedRow, updates: &[String]) -> Result<ListedEntry> {
    Ok(ListedEntry {
        entry_id: r.id.clone(),
        list_type: ListType::parse(&r.list_type).ok_or_else(|| internal(&r.list_type))?,
        issue_state: IssueState::parse(&r.state).ok_or_else(|| internal(&r.state))?,
        superseded: r.superseded_by.is_some(),
        basis_submitted_at: r.basis_submitted_at.unwrap_or(i64::MIN),
        updates: updates
            .iter()
            .filter_map(|u| UpdateKind::parse(u))
            .collect(),
    })
}

async fn entry_view(conn: &mut AnyConnection, entry_id: &str) -> Result<Entry> {
    let e = q::entry(conn, entry_id)
        .await?
        .ok_or_else(|| Error::not_found("no such entry"))?;
    let detail = detail_in(conn, &e.issue_id).await?;
    detail
        .entries
        .into_iter()
        .find(|x| x.id == entry_id)
        .ok_or_else(|| internal("entry vanished"))
}

/// Publishes a black entry's rectification (整改后信息) from a closed follow-up whose recheck
/// was approved.
pub async fn rectify(
    db: &Db,
    ctx: &Ctx,
    zone: BureauZone,
    entry_id: &str,
    followup_id: &str,
    text: Option<&str>,
) -> Result<Entry> {
    access::require(ctx, OFFICE)?;
    if let Some(t) = text {
        if let Some(p) = lists::check_text("text", t, lists::MAX_TEXT_CHARS) {
            return Err(field_errors(vec![p]));
        }
    }
    let mut tx = db.begin_write().await?;
    let conn = tx.conn();
    let row = q::listed(conn, entry_id)
        .await?
        .ok_or_else(|| Error::not_found("no such entry"))?;
    let kinds = q::update_kinds(conn, entry_id).await?;
    let e = listed_of(&row, &kinds)?;
    let f = q::rectifying(conn, followup_id)
        .await?
        .ok_or_else(|| Error::invalid("unknown_followup", "no such follow-up"))?;
    let facts = RectifyingFollowup {
        establishment_matches: f.establishment_id == row.establishment_id,
        closed: f.state == "closed",
        recheck_approved: f.recheck_review_state.as_deref() == Some("approved"),
        recheck_submitted_at: f.recheck_submitted_at,
    };
    lists::may_rectify(&e, &facts).map_err(|r| match r {
        RectifyRefusal::NotBlack => Error::conflict("not_black", "only a black entry is rectified"),
        RectifyRefusal::NotPublished => {
            Error::conflict("issue_not_published", "the entry's issue is not published")
        }
        RectifyRefusal::Superseded => Error::conflict(
            "issue_superseded",
            "a later revision replaced this issue; use its entry",
        ),
        RectifyRefusal::AlreadyRectified => {
            Error::conflict("already_rectified", "the entry is already rectified")
        }
        RectifyRefusal::OtherEstablishment => Error::invalid(
            "followup_not_of_establishment",
            "the follow-up is at another establishment",
        ),
        RectifyRefusal::RecheckNotPassed => Error::invalid(
            "recheck_not_passed",
            "the follow-up is not closed by an approved recheck after the listing",
        ),
    })?;
    let on = date_of(zone, f.recheck_submitted_at.unwrap_or_default());
    let text = text
        .map(|t| t.trim().to_string())
        .unwrap_or_else(|| lists::rectification_text(on));
    let u = UpdateRow {
        id: uuid::Uuid::new_v4().to_string(),
        entry_id: entry_id.to_string(),
        kind: UpdateKind::Rectified.as_str().into(),
        occurred_on: on.to_string(),
        text,
        inspection_id: f.recheck_inspection_id.clone(),
        followup_id: Some(f.id.clone()),
        created_by: access::author(ctx).to_string(),
        created_at: store::now_ms(),
    };
    q::insert_update(conn, &u).await.map_err(|e| {
        if store::is_unique_violation(&e) {
            Error::conflict("already_rectified", "the entry is already rectified")
        } else {
            e.into()
        }
    })?;
    let event = Event::new(Action::ListEntryRectified, RecordKind::ListEntry, entry_id)
        .set("occurred_on", &u.occurred_on)
        .set("text", &u.text)
        .set("followup_id", &u.followup_id)
        .set("inspection_id", &u.inspection_id);
    store::audit::append(conn, ctx, &[event]).await?;
    let view = entry_view(conn, entry_id).await?;
    tx.commit().await?;
    Ok(view)
}

/// Revokes a red entry of a published, current issue by the section's decision, with a
/// public reason.
pub async fn revoke(
    db: &Db,
    ctx: &Ctx,
    zone: BureauZone,
    entry_id: &str,
    reason: &str,
) -> Result<Entry> {
    access::require(ctx, OFFICE)?;
    if let Some(p) = lists::check_text("reason", reason, lists::MAX_TEXT_CHARS) {
        return Err(field_errors(vec![p]));
    }
    let mut tx = db.begin_write().await?;
    let conn = tx.conn();
    let row = q::listed(conn, entry_id)
        .await?
        .ok_or_else(|| Error::not_found("no such entry"))?;
    let kinds = q::update_kinds(conn, entry_id).await?;
    let e = listed_of(&row, &kinds)?;
    if e.list_type != ListType::Red {
        return Err(Error::conflict("not_red", "only a red entry is revoked"));
    }
    if e.issue_state != IssueState::Published {
        return Err(Error::conflict(
            "issue_not_published",
            "the entry's issue is not published; remove the entry instead",
        ));
    }
    if e.superseded {
        return Err(Error::conflict(
            "issue_superseded",
            "a later revision replaced this issue; use its entry",
        ));
    }
    if e.updates.contains(&UpdateKind::Revoked) {
        return Err(Error::conflict(
            "already_revoked",
            "the entry is already revoked",
        ));
    }
    let now = store::now_ms();
    let u = UpdateRow {
        id: uuid::Uuid::new_v4().to_string(),
        entry_id: entry_id.to_string(),
        kind: UpdateKind::Revoked.as_str().into(),
        occurred_on: date_of(zone, now).to_string(),
        text: reason.trim().to_string(),
        inspection_id: None,
        followup_id: None,
        created_by: access::author(ctx).to_string(),
        created_at: now,
    };
    q::insert_update(conn, &u).await.map_err(|e| {
        if store::is_unique_violation(&e) {
            Error::conflict("already_revoked", "the entry is already revoked")
        } else {
            e.into()
        }
    })?;
    let event = Event::new(Action::ListEntryRevoked, RecordKind::ListEntry, entry_id)
        .set("occurred_on", &u.occurred_on)
        .set("text", &u.text);
    store::audit::append(conn, ctx, &[event]).await?;
    let view = entry_view(conn, entry_id).await?;
    tx.commit().await?;
    Ok(view)
}

/// Called by `ops::review::decide` inside its transaction when an inspection is approved with
/// its effective result: a failing approval (不符合 or a failed key item) revokes every red
/// entry at the establishment in published, current issues whose basis is older, with a
/// generated public reason (date and result only). Returns the revoked entry ids.
pub async fn on_approval(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    inspection_id: &str,
    effective_result: ResultCode,
    zone: BureauZone,
) -> Result<Vec<String>> {
    let Some(mut row) = q::inspection(conn, inspection_id).await? else {
        return Ok(Vec::new());
    };
    // The decision is written but the row may still carry the pre-decision override.
    row.override_result = Some(store::followup::result_str(effective_result).into());
    let mut t = Templates::default();
    let Some(fact) = fact_of(conn, &mut t, zone, &row).await? else {
        return Ok(Vec::new());
    };
    if !lists::is_failing(fact.result, fact.failed_key_items.len()) {
        return Ok(Vec::new());
    }
    let rows = q::current_red_at(conn, &row.establishment_id).await?;
    let mut listed = Vec::with_capacity(rows.len());
    for r in &rows {
        let kinds = q::update_kinds(conn, &r.id).await?;
        listed.push(listed_of(r, &kinds)?);
    }
    let approval = Approval {
        inspection_id: fact.inspection_id.clone(),
        submitted_at: fact.submitted_at,
        inspected_on: fact.inspected_on,
        result: fact.result,
        failed_key_items: fact.failed_key_items.len(),
    };
    let text = lists::revocation_text(&approval);
    let now = store::now_ms();
    let mut events = Vec::new();
    let mut out = Vec::new();
    for e in lists::revoked_by(&approval, &listed) {
        let u = UpdateRow {
            id: uuid::Uuid::new_v4().to_string(),
            entry_id: e.entry_id.clone(),
            kind: UpdateKind::Revoked.as_str().into(),
            occurred_on: approval.inspected_on.to_string(),
            text: text.clone(),
            inspection_id: Some(approval.inspection_id.clone()),
            followup_id: None,
            created_by: "system".into(),
            created_at: now,
        };
        q::insert_update(conn, &u).await?;
        events.push(
            Event::new(Action::ListEntryRevoked, RecordKind::ListEntry, &e.entry_id)
                .set("occurred_on", &u.occurred_on)
                .set("text", &u.text)
                .set("inspection_id", &u.inspection_id)
                .set("automatic", true),
        );
        out.push(e.entry_id.clone());
    }
    if !events.is_empty() {
        store::audit::append(conn, ctx, &events).await?;
    }
    Ok(out)
}

/// Records that a plan's results are published (一公开): from then on the public side shows
/// its approved inspections' results. 409 `already_published`.
pub async fn publish_plan_results(db: &Db, ctx: &Ctx, plan_id: &str) -> Result<i64> {
    access::require(ctx, OFFICE)?;
    let mut tx = db.begin_write().await?;
    let conn = tx.conn();
    match q::plan_results_published_at(conn, plan_id).await? {
        None => return Err(Error::not_found("no such plan")),
        Some(Some(_)) => {
            return Err(Error::conflict(
                "already_published",
                "the plan's results are already published",
            ))
        }
        Some(None) => {}
    }
    let now = store::now_ms();
    let by = access::author(ctx).to_string();
    if !q::publish_plan_results(conn, plan_id, &by, now).await? {
        return Err(Error::conflict(
            "already_published",
            "the plan's results are already published",
        ));
    }
    let event = Event::new(Action::PlanResultsPublished, RecordKind::Plan, plan_id)
        .set("results_published_at", now)
        .set("results_published_by", &by);
    store::audit::append(conn, ctx, &[event]).await?;
    tx.commit().await?;
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_start_is_bureau_midnight() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let ms = day_start_ms(BureauZone::SHANGHAI, d);
        // 2026-03-01 00:00 +08:00 = 2026-02-28 16:00 UTC.
        assert_eq!(ms, 1_772_294_400_000);
        assert_eq!(date_of(BureauZone::SHANGHAI, ms), d);
        assert!(date_of(BureauZone::SHANGHAI, ms - 1) < d);
    }
}
