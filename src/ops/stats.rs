//! Campaign statistics and the 3·15 活动统计表: figures counted from the records over a range
//! (read-only), campaigns and reporting units (admin), each unit's form for a campaign (admin,
//! reviewer), its prefill from the records and the total across units. Every write is one
//! transaction with its audit event.

use std::collections::BTreeMap;

use sqlx::AnyConnection;

use super::{access, Ctx, Error, Result};
use crate::audit::{Action, Event, RecordKind};
use crate::auth::Role;
use crate::clock::BureauZone;
use crate::establishment::FieldError;
use crate::stats::{self as rules, Count, DayRange, PrefillFacts, Stats, UnitKind, Values};
use crate::store::{self, stats as q, Db};

const OFFICE: &[Role] = &[Role::Admin, Role::Reviewer];

fn internal(e: impl Into<anyhow::Error>) -> Error {
    Error::Internal(e.into())
}

/// The range of `from`..`to` (`YYYY-MM-DD`, both included), or 422 `validation_failed`:
/// not a date, `to` before `from`, more than [`rules::MAX_RANGE_DAYS`] days.
pub fn range(from: &str, to: &str) -> Result<DayRange> {
    rules::decide_range(from, to, rules::MAX_RANGE_DAYS).map_err(Error::validation_failed)
}

fn sorted(mut counts: Vec<(String, i64)>) -> Vec<Count> {
    counts.sort();
    counts
        .into_iter()
        .map(|(key, count)| Count { key, count })
        .collect()
}

/// The statistics of `range` (admin, reviewer), counted from the records in one snapshot.
/// Days are the bureau's (`zone`). Sampling counts are not among them: sampling does not
/// exist yet.
pub async fn stats(db: &Db, ctx: &Ctx, zone: &BureauZone, range: DayRange) -> Result<Stats> {
    access::require(ctx, OFFICE)?;
    let (start, end) = range.bounds_ms(zone);
    let mut tx = db.begin_snapshot().await?;
    let conn: &mut AnyConnection = &mut tx;
    let mut s = Stats {
        from: range.from.format("%Y-%m-%d").to_string(),
        to: range.to.format("%Y-%m-%d").to_string(),
        ..Stats::default()
    };
    for (state, result, n) in q::inspections_by_state(conn, start, end).await? {
        s.inspections.submitted += n;
        let by = &mut s.inspections.by_review_state;
        match state.as_str() {
            "approved" => {
                by.approved += n;
                let r = &mut s.inspections.approved_by_result;
                match result.as_deref() {
                    Some("compliant") => r.compliant += n,
                    Some("basically_compliant") => r.basically_compliant += n,
                    Some("non_compliant") => r.non_compliant += n,
                    _ => {}
                }
            }
            "returned" => by.returned += n,
            "rejected" => by.rejected += n,
            _ => by.submitted += n,
        }
    }
    s.coverage.establishments = q::establishments_covered(conn, start, end).await?;
    s.coverage.by_town = sorted(q::covered_by(conn, q::CoverageKey::Town, start, end).await?);
    s.coverage.by_risk_grade =
        sorted(q::covered_by(conn, q::CoverageKey::RiskGrade, start, end).await?);
    for (list_type, n) in q::list_entries_by_type(conn, start, end).await? {
        match list_type.as_str() {
            "red" => s.list_entries.red = n,
            "black" => s.list_entries.black = n,
            _ => {}
        }
    }
    let f = q::followups(conn, start, end, rules::zone_offset_ms(zone)).await?;
    s.rectifications = rules::RectificationStats {
        opened: f.opened,
        closed: f.closed,
        closed_on_time: f.closed_on_time,
        escalated: f.escalated,
    };
    let (created, done) = q::rechecks(conn, start, end).await?;
    s.rechecks = rules::RecheckStats { created, done };
    tx.commit().await?;
    Ok(s)
}

// ---- campaigns and units ----

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub period_start: String,
    pub period_end: String,
    pub created_by: String,
    pub created_at: i64,
}

impl From<q::CampaignRow> for Campaign {
    fn from(r: q::CampaignRow) -> Self {
        Campaign {
            id: r.id,
            name: r.name,
            period_start: r.period_start,
            period_end: r.period_end,
            created_by: r.created_by,
            created_at: r.created_at,
        }
    }
}

/// A reporting unit as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unit {
    pub id: String,
    pub name: String,
    pub kind: UnitKind,
    pub created_by: String,
    pub created_at: i64,
}

fn unit_of(r: q::UnitRow) -> Result<Unit> {
    Ok(Unit {
        kind: UnitKind::parse(&r.kind)
            .ok_or_else(|| internal(anyhow::anyhow!("unit kind {:?}", r.kind)))?,
        id: r.id,
        name: r.name,
        created_by: r.created_by,
        created_at: r.created_at,
    })
}

/// A trimmed, non-empty text of at most `max` characters, else a field problem.
fn text_field(field: &str, s: &str, max: usize, problems: &mut Vec<FieldError>) -> String {
    let t = s.trim();
    if t.is_empty() {
        problems.push(FieldError::new(field, "required", "must not be empty"));
    } else if t.chars().count() > max {
        problems.push(FieldError::new(
            field,
            "too_long",
            format!("at most {max} characters"),
        ));
    }
    t.to_string()
}

/// Creates a campaign (admin). 422 `validation_failed`: an empty or over-long name (200), a
/// period whose dates are not `YYYY-MM-DD`, reversed, or longer than 400 days; 409 `duplicate`
/// for a name already used.
pub async fn create_campaign(
    db: &Db,
    ctx: &Ctx,
    name: &str,
    period_start: &str,
    period_end: &str,
) -> Result<Campaign> {
    access::require(ctx, &[Role::Admin])?;
    let mut problems = Vec::new();
    let name = text_field("name", name, 200, &mut problems);
    let period =
        rules::decide_range(period_start, period_end, rules::MAX_RANGE_DAYS).map_err(|es| {
            es.into_iter().map(|mut e| {
                e.field = if e.field == "from" {
                    "period_start"
                } else {
                    "period_end"
                }
                .into();
                e
            })
        });
    let period = match period {
        Ok(p) => Some(p),
        Err(es) => {
            problems.extend(es);
            None
        }
    };
    let Some(period) = period.filter(|_| problems.is_empty()) else {
        return Err(Error::validation_failed(problems));
    };
    let row = q::CampaignRow {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        period_start: period.from.format("%Y-%m-%d").to_string(),
        period_end: period.to.format("%Y-%m-%d").to_string(),
        created_by: access::author(ctx).to_string(),
        created_at: store::now_ms(),
    };
    let campaign = Campaign::from(row.clone());
    let mut tx = db.begin_write().await?;
    q::insert_campaign(tx.conn(), &row).await?;
    let event =
        Event::new(Action::CampaignCreated, RecordKind::Campaign, &campaign.id).created(&campaign);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(campaign)
}

/// Campaigns, newest period first (admin, reviewer).
pub async fn campaigns(db: &Db, ctx: &Ctx) -> Result<Vec<Campaign>> {
    access::require(ctx, OFFICE)?;
    let mut conn = db.acquire().await?;
    Ok(q::campaigns(&mut conn)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// Creates a reporting unit (admin). 422 `validation_failed` for an empty or over-long name
/// (100); 409 `duplicate` for a name already used, or `conflict` when there are already
/// [`q::LIST_LIMIT`] units.
pub async fn create_unit(db: &Db, ctx: &Ctx, name: &str, kind: UnitKind) -> Result<Unit> {
    access::require(ctx, &[Role::Admin])?;
    let mut problems = Vec::new();
    let name = text_field("name", name, 100, &mut problems);
    if !problems.is_empty() {
        return Err(Error::validation_failed(problems));
    }
    let row = q::UnitRow {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        kind: kind.as_str().to_string(),
        created_by: access::author(ctx).to_string(),
        created_at: store::now_ms(),
    };
    let unit = unit_of(row.clone())?;
    let mut tx = db.begin_write().await?;
    // The total sums at most LIST_LIMIT reports per campaign: one per unit.
    if q::units(tx.conn()).await?.len() as i64 >= q::LIST_LIMIT {
        return Err(Error::conflict(
            "conflict",
            format!("there are already {} reporting units", q::LIST_LIMIT),
        ));
    }
    q::insert_unit(tx.conn(), &row).await?;
    let event = Event::new(
        Action::ReportingUnitCreated,
        RecordKind::ReportingUnit,
        &unit.id,
    )
    .created(&unit);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(unit)
}

/// Reporting units by name (admin, reviewer).
pub async fn units(db: &Db, ctx: &Ctx) -> Result<Vec<Unit>> {
    access::require(ctx, OFFICE)?;
    let mut conn = db.acquire().await?;
    q::units(&mut conn)
        .await?
        .into_iter()
        .map(unit_of)
        .collect()
}

// ---- reports ----

/// A unit's 3·15 form for a campaign. `contact_name` and `contact_phone` are internal personal
/// data: never public.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub campaign: Campaign,
    pub unit: Unit,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    /// Every row code of the form; 0 for a row not filled.
    pub values: Values,
    /// `None` until the unit first saves its form.
    pub updated_by: Option<String>,
    pub updated_at: Option<i64>,
}

async fn campaign_and_unit(
    conn: &mut AnyConnection,
    campaign_id: &str,
    unit_id: &str,
) -> Result<(Campaign, Unit)> {
    let campaign = q::campaign(conn, campaign_id)
        .await?
        .ok_or_else(|| Error::not_found("no such campaign"))?;
    let unit = q::unit(conn, unit_id)
        .await?
        .ok_or_else(|| Error::not_found("no such reporting unit"))?;
    Ok((campaign.into(), unit_of(unit)?))
}

fn values_of(json: &str) -> Result<Values> {
    let stored: Values = serde_json::from_str(json).map_err(internal)?;
    Ok(rules::total([&stored]))
}

/// A unit's form for a campaign (admin, reviewer): as saved, or empty (every row 0, no
/// contact) when the unit has not reported yet. 404 for an unknown campaign or unit.
pub async fn report(db: &Db, ctx: &Ctx, campaign_id: &str, unit_id: &str) -> Result<Report> {
    access::require(ctx, OFFICE)?;
    let mut conn = db.acquire().await?;
    let (campaign, unit) = campaign_and_unit(&mut conn, campaign_id, unit_id).await?;
    let row = q::report(&mut conn, campaign_id, unit_id).await?;
    Ok(match row {
        Some(r) => Report {
            campaign,
            unit,
            contact_name: r.contact_name,
            contact_phone: r.contact_phone,
            values: values_of(&r.row_values)?,
            updated_by: Some(r.updated_by),
            updated_at: Some(r.updated_at),
        },
        None => Report {
            campaign,
            unit,
            contact_name: None,
            contact_phone: None,
            values: rules::zero_values(),
            updated_by: None,
            updated_at: None,
        },
    })
}

/// What the records tell for a campaign's period (admin, reviewer), by row code:
/// `business_participants` (经营者或企业参与数) = distinct establishments with a submitted, not
/// rejected, routine inspection in the period; `typical_cases` (发布典型案例) = black-list
/// entries of the current revisions of list issues published in the period. Bureau-wide
/// figures (the records do not say which unit did the work): the unit adjusts them before
/// saving. 404 for an unknown campaign or unit.
pub async fn prefill(
    db: &Db,
    ctx: &Ctx,
    zone: &BureauZone,
    campaign_id: &str,
    unit_id: &str,
) -> Result<BTreeMap<String, i64>> {
    access::require(ctx, OFFICE)?;
    let mut tx = db.begin_snapshot().await?;
    let (campaign, _) = campaign_and_unit(&mut tx, campaign_id, unit_id).await?;
    let period = rules::decide_range(&campaign.period_start, &campaign.period_end, i64::MAX)
        .map_err(|_| internal(anyhow::anyhow!("campaign {campaign_id} has a bad period")))?;
    let (start, end) = period.bounds_ms(zone);
    let facts = PrefillFacts {
        establishments_inspected: q::establishments_covered(&mut tx, start, end).await?,
        black_entries_published: q::black_entries_published(&mut tx, start, end).await?,
    };
    tx.commit().await?;
    Ok(rules::prefill(facts))
}

/// What a unit sends for its form.
#[derive(Debug, Clone, Default)]
pub struct ReportInput {
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub values: serde_json::Map<String, serde_json::Value>,
}

fn optional_text(
    field: &str,
    s: Option<&str>,
    max: usize,
    problems: &mut Vec<FieldError>,
) -> Option<String> {
    let t = s.map(str::trim).filter(|t| !t.is_empty())?;
    if t.chars().count() > max {
        problems.push(FieldError::new(
            field,
            "too_long",
            format!("at most {max} characters"),
        ));
    }
    Some(t.to_string())
}

/// Saves (adds or replaces) a unit's form for a campaign (admin, reviewer). 422
/// `validation_failed` listing every problem: `unknown_row`, `invalid_value` (not an integer
/// from 0 to 10¹²), `sub_row_exceeds_parent`, a contact name over 50 characters, a phone that
/// is not 3–30 digits, spaces, `+` or `-`. 404 for an unknown campaign or unit. Nothing is
/// written on refusal.
pub async fn put_report(
    db: &Db,
    ctx: &Ctx,
    campaign_id: &str,
    unit_id: &str,
    input: &ReportInput,
) -> Result<Report> {
    access::require(ctx, OFFICE)?;
    let mut problems = Vec::new();
    let contact_name = optional_text(
        "contact_name",
        input.contact_name.as_deref(),
        50,
        &mut problems,
    );
    let contact_phone = optional_text(
        "contact_phone",
        input.contact_phone.as_deref(),
        30,
        &mut problems,
    );
    if let Some(p) = &contact_phone {
        let ok = p.chars().count() >= 3
            && p.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-'))
            && p.chars().any(|c| c.is_ascii_digit());
        if !ok {
            problems.push(FieldError::new(
                "contact_phone",
                "invalid_phone",
                "expected digits, spaces, + or -",
            ));
        }
    }
    let values = match rules::decide_values(&input.values) {
        Ok(v) => Some(v),
        Err(es) => {
            problems.extend(es);
            None
        }
    };
    let Some(values) = values.filter(|_| problems.is_empty()) else {
        return Err(Error::validation_failed(problems));
    };
    let mut tx = db.begin_write().await?;
    let (campaign, unit) = campaign_and_unit(tx.conn(), campaign_id, unit_id).await?;
    let before = q::report(tx.conn(), campaign_id, unit_id).await?;
    let row = q::ReportRow {
        campaign_id: campaign.id.clone(),
        unit_id: unit.id.clone(),
        contact_name: contact_name.clone(),
        contact_phone: contact_phone.clone(),
        row_values: serde_json::to_string(&values).map_err(internal)?,
        updated_by: access::author(ctx).to_string(),
        updated_at: store::now_ms(),
    };
    q::put_report(tx.conn(), &row).await?;
    let before_values = before
        .as_ref()
        .map(|b| values_of(&b.row_values))
        .transpose()?;
    let event = Event::new(
        Action::CampaignReportSaved,
        RecordKind::CampaignReport,
        format!("{}/{}", campaign.id, unit.id),
    )
    .change(
        "contact_name",
        before.as_ref().and_then(|b| b.contact_name.clone()),
        &contact_name,
    )
    .change(
        "contact_phone",
        before.as_ref().and_then(|b| b.contact_phone.clone()),
        &contact_phone,
    )
    .change("values", before_values, &values);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(Report {
        campaign,
        unit,
        contact_name,
        contact_phone,
        values,
        updated_by: Some(row.updated_by),
        updated_at: Some(row.updated_at),
    })
}

/// The sum across units of a campaign's forms (admin, reviewer), and how many units reported.
/// 404 for an unknown campaign.
pub async fn total(db: &Db, ctx: &Ctx, campaign_id: &str) -> Result<(Campaign, Values, i64)> {
    access::require(ctx, OFFICE)?;
    let mut conn = db.acquire().await?;
    let campaign: Campaign = q::campaign(&mut conn, campaign_id)
        .await?
        .ok_or_else(|| Error::not_found("no such campaign"))?
        .into();
    let stored = q::report_values(&mut conn, campaign_id).await?;
    let values = stored
        .iter()
        .map(|s| values_of(s))
        .collect::<Result<Vec<_>>>()?;
    Ok((campaign, rules::total(&values), values.len() as i64))
}
