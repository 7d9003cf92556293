//! Campaign statistics: counts grouped in the database over a date range (each bounded by an
//! index on its date column: `inspections_submitted_at`, `followups_created_at`,
//! `tasks_kind_created_at`, `list_issues_published`), and the campaigns, reporting units and
//! 3·15 form reports (0021).

use sqlx::{AnyConnection, FromRow};

use super::{backend_of, Backend};

/// Routine inspections (tasks of kind `inspection`) submitted in `[start, end)` (Unix ms).
const ROUTINE_IN_RANGE: &str = "FROM inspections i JOIN tasks t ON t.id = i.task_id \
     WHERE i.submitted_at >= $1 AND i.submitted_at < $2 AND t.kind = 'inspection'";

/// (review state, effective result, count) of routine inspections submitted in the range; an
/// inspection submitted before review states were recorded counts as `submitted`.
pub async fn inspections_by_state(
    conn: &mut AnyConnection,
    start: i64,
    end: i64,
) -> Result<Vec<(String, Option<String>, i64)>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT COALESCE(i.review_state, 'submitted'), COALESCE(i.override_result, i.computed_result), COUNT(*) \
         {ROUTINE_IN_RANGE} \
         GROUP BY COALESCE(i.review_state, 'submitted'), COALESCE(i.override_result, i.computed_result)"
    ))
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await
}

/// What "covered" means: a submitted routine inspection in the range that was not rejected.
const COVERED: &str = "AND COALESCE(i.review_state, 'submitted') <> 'rejected'";

/// Distinct establishments covered in the range.
pub async fn establishments_covered(
    conn: &mut AnyConnection,
    start: i64,
    end: i64,
) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(DISTINCT i.establishment_id) {ROUTINE_IN_RANGE} {COVERED}"
    ))
    .bind(start)
    .bind(end)
    .fetch_one(conn)
    .await?;
    Ok(n)
}

/// Which registry column [`covered_by`] groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoverageKey {
    Town,
    RiskGrade,
}

/// (town or risk grade, distinct establishments covered), unordered (the caller sorts: the
/// two backends collate Chinese differently).
pub async fn covered_by(
    conn: &mut AnyConnection,
    key: CoverageKey,
    start: i64,
    end: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let column = match key {
        CoverageKey::Town => "e.town",
        CoverageKey::RiskGrade => "e.risk_grade",
    };
    sqlx::query_as(&format!(
        "SELECT {column}, COUNT(DISTINCT i.establishment_id) \
         FROM inspections i JOIN tasks t ON t.id = i.task_id JOIN establishments e ON e.id = i.establishment_id \
         WHERE i.submitted_at >= $1 AND i.submitted_at < $2 AND t.kind = 'inspection' {COVERED} \
         GROUP BY {column}"
    ))
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await
}

/// (list type, entries) of the current revision of each list issue published in the range (a
/// revision supersedes its original, whose entries it repeats, corrected).
pub async fn list_entries_by_type(
    conn: &mut AnyConnection,
    start: i64,
    end: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT e.list_type, COUNT(*) FROM list_issues s JOIN list_entries e ON e.issue_id = s.id \
         WHERE s.state = 'published' AND s.published_at >= $1 AND s.published_at < $2 \
         AND s.superseded_by IS NULL GROUP BY e.list_type",
    )
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone, Copy, Default, FromRow)]
pub struct FollowupCounts {
    pub opened: i64,
    pub closed: i64,
    pub closed_on_time: i64,
    pub escalated: i64,
}

/// Follow-ups opened in the range and what became of them. On time: the recheck inspection
/// was submitted before the end of the deadline day in the bureau's zone (`offset_ms` east of
/// UTC): UTC midnight after the deadline minus the offset. Inspection follow-ups (整改) only: a
/// sample's 核查处置 is not a rectification order.
pub async fn followups(
    conn: &mut AnyConnection,
    start: i64,
    end: i64,
    offset_ms: i64,
) -> Result<FollowupCounts, sqlx::Error> {
    let deadline_seconds = match backend_of(conn) {
        Backend::Sqlite => "CAST(strftime('%s', f.deadline) AS INTEGER)",
        Backend::Postgres => "CAST(EXTRACT(EPOCH FROM CAST(f.deadline AS DATE)) AS BIGINT)",
    };
    sqlx::query_as(&format!(
        "SELECT COUNT(*) AS opened, \
         COALESCE(SUM(CASE WHEN f.state = 'closed' THEN 1 ELSE 0 END), 0) AS closed, \
         COALESCE(SUM(CASE WHEN f.state = 'closed' AND r.submitted_at < ({deadline_seconds} + 86400) * 1000 - $3 \
             THEN 1 ELSE 0 END), 0) AS closed_on_time, \
         COALESCE(SUM(CASE WHEN f.state = 'escalated' THEN 1 ELSE 0 END), 0) AS escalated \
         FROM followups f LEFT JOIN inspections r ON r.id = f.recheck_inspection_id \
         WHERE f.created_at >= $1 AND f.created_at < $2 AND f.inspection_id IS NOT NULL"
    ))
    .bind(start)
    .bind(end)
    .bind(offset_ms)
    .fetch_one(conn)
    .await
}

/// (created, submitted) recheck tasks created in the range.
pub async fn rechecks(
    conn: &mut AnyConnection,
    start: i64,
    end: i64,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 'submitted' THEN 1 ELSE 0 END), 0) \
         FROM tasks WHERE kind = 'recheck' AND created_at >= $1 AND created_at < $2",
    )
    .bind(start)
    .bind(end)
    .fetch_one(conn)
    .await
}

/// Black-list entries of the current revisions of issues published in the range.
pub async fn black_entries_published(
    conn: &mut AnyConnection,
    start: i64,
    end: i64,
) -> Result<i64, sqlx::Error> {
    Ok(list_entries_by_type(conn, start, end)
        .await?
        .into_iter()
        .find(|(t, _)| t == "black")
        .map_or(0, |(_, n)| n))
}

// ---- campaigns, reporting units, reports ----

/// Most campaigns or units one list returns (they are made by hand, a few a year).
pub const LIST_LIMIT: i64 = 1000;

#[derive(Debug, Clone, FromRow)]
pub struct CampaignRow {
    pub id: String,
    pub name: String,
    pub period_start: String,
    pub period_end: String,
    pub created_by: String,
    pub created_at: i64,
}

const CAMPAIGN_COLUMNS: &str = "id, name, period_start, period_end, created_by, created_at";

pub async fn insert_campaign(conn: &mut AnyConnection, c: &CampaignRow) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO campaigns ({CAMPAIGN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
    ))
    .bind(&c.id)
    .bind(&c.name)
    .bind(&c.period_start)
    .bind(&c.period_end)
    .bind(&c.created_by)
    .bind(c.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn campaign(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<CampaignRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The newest campaigns first, at most [`LIST_LIMIT`].
pub async fn campaigns(conn: &mut AnyConnection) -> Result<Vec<CampaignRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CAMPAIGN_COLUMNS} FROM campaigns ORDER BY period_start DESC, id LIMIT $1"
    ))
    .bind(LIST_LIMIT)
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct UnitRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub created_by: String,
    pub created_at: i64,
}

const UNIT_COLUMNS: &str = "id, name, kind, created_by, created_at";

pub async fn insert_unit(conn: &mut AnyConnection, u: &UnitRow) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO reporting_units ({UNIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
    ))
    .bind(&u.id)
    .bind(&u.name)
    .bind(&u.kind)
    .bind(&u.created_by)
    .bind(u.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn unit(conn: &mut AnyConnection, id: &str) -> Result<Option<UnitRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {UNIT_COLUMNS} FROM reporting_units WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Units by name, at most [`LIST_LIMIT`].
pub async fn units(conn: &mut AnyConnection) -> Result<Vec<UnitRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {UNIT_COLUMNS} FROM reporting_units ORDER BY name, id LIMIT $1"
    ))
    .bind(LIST_LIMIT)
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct ReportRow {
    pub campaign_id: String,
    pub unit_id: String,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    /// JSON {row code: integer}.
    pub row_values: String,
    pub updated_by: String,
    pub updated_at: i64,
}

const REPORT_COLUMNS: &str =
    "campaign_id, unit_id, contact_name, contact_phone, row_values, updated_by, updated_at";

pub async fn report(
    conn: &mut AnyConnection,
    campaign_id: &str,
    unit_id: &str,
) -> Result<Option<ReportRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REPORT_COLUMNS} FROM campaign_reports WHERE campaign_id = $1 AND unit_id = $2"
    ))
    .bind(campaign_id)
    .bind(unit_id)
    .fetch_optional(conn)
    .await
}

/// Adds or replaces a unit's report.
pub async fn put_report(conn: &mut AnyConnection, r: &ReportRow) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO campaign_reports ({REPORT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (campaign_id, unit_id) DO UPDATE SET contact_name = excluded.contact_name, \
         contact_phone = excluded.contact_phone, row_values = excluded.row_values, \
         updated_by = excluded.updated_by, updated_at = excluded.updated_at"
    ))
    .bind(&r.campaign_id)
    .bind(&r.unit_id)
    .bind(&r.contact_name)
    .bind(&r.contact_phone)
    .bind(&r.row_values)
    .bind(&r.updated_by)
    .bind(r.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// (reports, the row values of each) of a campaign: one per unit that reported, at most
/// [`LIST_LIMIT`] (the units themselves are capped by hand-made creation).
pub async fn report_values(
    conn: &mut AnyConnection,
    campaign_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT row_values FROM campaign_reports WHERE campaign_id = $1 ORDER BY unit_id LIMIT $2",
    )
    .bind(campaign_id)
    .bind(LIST_LIMIT)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(v,)| v).collect())
}
