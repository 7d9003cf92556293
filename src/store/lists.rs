//! SQL of the red/black list (红黑榜): issues, entries, their public photos and lifecycle
//! updates (tables of migration 0019), the candidate facts, and a plan's results publication.

use sqlx::{AnyConnection, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct IssueRow {
    pub id: String,
    pub issue_no: String,
    pub revision: i64,
    pub revises_id: Option<String>,
    pub revision_note: Option<String>,
    pub title: String,
    pub theme: String,
    pub district: String,
    pub period_start: String,
    pub period_end: String,
    pub criteria: String,
    pub state: String,
    pub published_at: Option<i64>,
    pub published_by: Option<String>,
    pub checkpoint: Option<String>,
    pub superseded_by: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const ISSUE_COLUMNS: &str = "id, issue_no, revision, revises_id, revision_note, title, theme, district, \
    period_start, period_end, criteria, state, published_at, published_by, checkpoint, superseded_by, \
    created_by, created_at, updated_at";

pub async fn insert_issue(conn: &mut AnyConnection, r: &IssueRow) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO list_issues ({ISSUE_COLUMNS}) VALUES \
         ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)"
    ))
    .bind(&r.id)
    .bind(&r.issue_no)
    .bind(r.revision)
    .bind(&r.revises_id)
    .bind(&r.revision_note)
    .bind(&r.title)
    .bind(&r.theme)
    .bind(&r.district)
    .bind(&r.period_start)
    .bind(&r.period_end)
    .bind(&r.criteria)
    .bind(&r.state)
    .bind(r.published_at)
    .bind(&r.published_by)
    .bind(&r.checkpoint)
    .bind(&r.superseded_by)
    .bind(&r.created_by)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn issue(conn: &mut AnyConnection, id: &str) -> Result<Option<IssueRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ISSUE_COLUMNS} FROM list_issues WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A page of issues, newest first, and the total.
pub async fn issues(
    conn: &mut AnyConnection,
    state: Option<&str>,
    page: u32,
    page_size: u32,
) -> Result<(Vec<IssueRow>, i64), sqlx::Error> {
    super::newest_in_state(conn, "list_issues", ISSUE_COLUMNS, state, page, page_size).await
}

/// Publishes a draft; false when it is not (or no longer) a draft.
pub async fn publish(
    conn: &mut AnyConnection,
    id: &str,
    by: &str,
    checkpoint: Option<&str>,
    at: i64,
) -> Result<bool, sqlx::Error> {
    // The counts are taken here, after the caller locked the draft ([`lock`]): no entry can
    // be added or removed between them and the state change.
    let r = sqlx::query(
        "UPDATE list_issues SET state = 'published', published_at = $1, published_by = $2, \
         checkpoint = $3, updated_at = $1, \
         red_count = (SELECT COUNT(*) FROM list_entries e WHERE e.issue_id = list_issues.id AND e.list_type = 'red'), \
         black_count = (SELECT COUNT(*) FROM list_entries e WHERE e.issue_id = list_issues.id AND e.list_type = 'black') \
         WHERE id = $4 AND state = 'draft'",
    )
    .bind(at)
    .bind(by)
    .bind(checkpoint)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Takes the issue's row lock for the rest of the write transaction. Every write to a draft's
/// entries and the publication take it first, so on PostgreSQL (READ COMMITTED) an entry
/// added, changed or removed in a transaction that commits after a concurrent publication
/// cannot slip into the published issue or past its stored counts; SQLite's write lock
/// already serialises them. A no-op update that even a published row's triggers allow.
pub async fn lock(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE list_issues SET updated_at = updated_at WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a published issue superseded by a later revision; false when it already was.
pub async fn supersede(
    conn: &mut AnyConnection,
    id: &str,
    by: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE list_issues SET superseded_by = $1, updated_at = $2 \
         WHERE id = $3 AND superseded_by IS NULL",
    )
    .bind(by)
    .bind(at)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The draft revision of an issue, if one exists.
pub async fn draft_revision_of(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let r: Option<(String,)> =
        sqlx::query_as("SELECT id FROM list_issues WHERE revises_id = $1 AND state = 'draft'")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(r.map(|r| r.0))
}

#[derive(Debug, Clone, FromRow)]
pub struct EntryRow {
    pub id: String,
    pub issue_id: String,
    pub list_type: String,
    pub position: i64,
    pub establishment_id: String,
    pub inspection_id: Option<String>,
    /// The basis 不合格 sample (black entries resting on a sampling result).
    pub sample_id: Option<String>,
    pub inspected_on: Option<String>,
    pub result: Option<String>,
    pub sign_name: String,
    pub licensed_name: String,
    pub license_no: Option<String>,
    pub address: String,
    pub town: String,
    pub category: String,
    pub lng: Option<f64>,
    pub lat: Option<f64>,
    pub reason: String,
    pub measures: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const ENTRY_COLUMNS: &str = "id, issue_id, list_type, position, establishment_id, inspection_id, inspected_on, \
    result, sign_name, licensed_name, license_no, address, town, category, lng, lat, reason, measures, \
    created_by, created_at, updated_at, sample_id";

pub async fn insert_entry(conn: &mut AnyConnection, e: &EntryRow) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO list_entries ({ENTRY_COLUMNS}) VALUES \
         ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22)"
    ))
    .bind(&e.id)
    .bind(&e.issue_id)
    .bind(&e.list_type)
    .bind(e.position)
    .bind(&e.establishment_id)
    .bind(&e.inspection_id)
    .bind(&e.inspected_on)
    .bind(&e.result)
    .bind(&e.sign_name)
    .bind(&e.licensed_name)
    .bind(&e.license_no)
    .bind(&e.address)
    .bind(&e.town)
    .bind(&e.category)
    .bind(super::OptF64(e.lng))
    .bind(super::OptF64(e.lat))
    .bind(&e.reason)
    .bind(&e.measures)
    .bind(&e.created_by)
    .bind(e.created_at)
    .bind(e.updated_at)
    .bind(&e.sample_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn entry(conn: &mut AnyConnection, id: &str) -> Result<Option<EntryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENTRY_COLUMNS} FROM list_entries WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// An issue's entries, red first, by position (bounded by the per-issue entry limit).
pub async fn entries(
    conn: &mut AnyConnection,
    issue_id: &str,
) -> Result<Vec<EntryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENTRY_COLUMNS} FROM list_entries WHERE issue_id = $1 \
         ORDER BY CASE list_type WHEN 'red' THEN 0 ELSE 1 END, position, id"
    ))
    .bind(issue_id)
    .fetch_all(conn)
    .await
}

pub async fn entry_count(conn: &mut AnyConnection, issue_id: &str) -> Result<i64, sqlx::Error> {
    let r: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM list_entries WHERE issue_id = $1")
        .bind(issue_id)
        .fetch_one(conn)
        .await?;
    Ok(r.0)
}

/// The next position in an issue's list of that type.
pub async fn next_position(
    conn: &mut AnyConnection,
    issue_id: &str,
    list_type: &str,
) -> Result<i64, sqlx::Error> {
    let r: (Option<i64>,) = sqlx::query_as(
        "SELECT MAX(position) FROM list_entries WHERE issue_id = $1 AND list_type = $2",
    )
    .bind(issue_id)
    .bind(list_type)
    .fetch_one(conn)
    .await?;
    Ok(r.0.unwrap_or(0) + 1)
}

/// Whether the establishment already has an entry in the issue.
pub async fn has_entry_for(
    conn: &mut AnyConnection,
    issue_id: &str,
    establishment_id: &str,
) -> Result<bool, sqlx::Error> {
    let r: Option<(String,)> =
        sqlx::query_as("SELECT id FROM list_entries WHERE issue_id = $1 AND establishment_id = $2")
            .bind(issue_id)
            .bind(establishment_id)
            .fetch_optional(conn)
            .await?;
    Ok(r.is_some())
}

pub async fn update_entry(
    conn: &mut AnyConnection,
    id: &str,
    reason: &str,
    measures: Option<&str>,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE list_entries SET reason = $1, measures = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(reason)
    .bind(measures)
    .bind(at)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_entry(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM list_entry_photos WHERE entry_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM list_entries WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces an entry's photos with `photo_ids`, in order.
pub async fn set_photos(
    conn: &mut AnyConnection,
    entry_id: &str,
    photo_ids: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM list_entry_photos WHERE entry_id = $1")
        .bind(entry_id)
        .execute(&mut *conn)
        .await?;
    for (k, p) in photo_ids.iter().enumerate() {
        sqlx::query(
            "INSERT INTO list_entry_photos (entry_id, photo_id, position) VALUES ($1, $2, $3)",
        )
        .bind(entry_id)
        .bind(p)
        .bind(k as i64 + 1)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// (entry id, photo id) of an issue's entries, in position order.
pub async fn photos_of_issue(
    conn: &mut AnyConnection,
    issue_id: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.entry_id, p.photo_id FROM list_entry_photos p \
         JOIN list_entries e ON e.id = p.entry_id WHERE e.issue_id = $1 ORDER BY p.entry_id, p.position",
    )
    .bind(issue_id)
    .fetch_all(conn)
    .await
}

pub async fn photos_of_entry(
    conn: &mut AnyConnection,
    entry_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let r: Vec<(String,)> = sqlx::query_as(
        "SELECT photo_id FROM list_entry_photos WHERE entry_id = $1 ORDER BY position",
    )
    .bind(entry_id)
    .fetch_all(conn)
    .await?;
    Ok(r.into_iter().map(|r| r.0).collect())
}

/// Of `ids`, the photos of `inspection_id` that are processed (the only ones that may go
/// public).
pub async fn processed_photos_of(
    conn: &mut AnyConnection,
    inspection_id: &str,
    ids: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    let mut out = Vec::new();
    for id in ids {
        let r: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM photos WHERE id = $1 AND inspection_id = $2 AND processing_status = 'processed'",
        )
        .bind(id)
        .bind(inspection_id)
        .fetch_optional(&mut *conn)
        .await?;
        out.extend(r.map(|r| r.0));
    }
    Ok(out)
}

#[derive(Debug, Clone, FromRow)]
pub struct UpdateRow {
    pub id: String,
    pub entry_id: String,
    pub kind: String,
    pub occurred_on: String,
    pub text: String,
    pub inspection_id: Option<String>,
    pub followup_id: Option<String>,
    pub created_by: String,
    pub created_at: i64,
}

const UPDATE_COLUMNS: &str =
    "id, entry_id, kind, occurred_on, text, inspection_id, followup_id, created_by, created_at";

pub async fn insert_update(conn: &mut AnyConnection, u: &UpdateRow) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO list_entry_updates ({UPDATE_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)"
    ))
    .bind(&u.id)
    .bind(&u.entry_id)
    .bind(&u.kind)
    .bind(&u.occurred_on)
    .bind(&u.text)
    .bind(&u.inspection_id)
    .bind(&u.followup_id)
    .bind(&u.created_by)
    .bind(u.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The lifecycle updates of an issue's entries, oldest first.
pub async fn updates_of_issue(
    conn: &mut AnyConnection,
    issue_id: &str,
) -> Result<Vec<UpdateRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {} FROM list_entry_updates u JOIN list_entries e ON e.id = u.entry_id \
         WHERE e.issue_id = $1 ORDER BY u.created_at, u.id",
        UPDATE_COLUMNS
            .split(", ")
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(issue_id)
    .fetch_all(conn)
    .await
}

pub async fn update_kinds(
    conn: &mut AnyConnection,
    entry_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let r: Vec<(String,)> =
        sqlx::query_as("SELECT kind FROM list_entry_updates WHERE entry_id = $1")
            .bind(entry_id)
            .fetch_all(conn)
            .await?;
    Ok(r.into_iter().map(|r| r.0).collect())
}

/// An entry with its issue's state and its basis's submission time (the lifecycle's facts).
#[derive(Debug, Clone, FromRow)]
pub struct ListedRow {
    pub id: String,
    pub issue_id: String,
    pub list_type: String,
    pub establishment_id: String,
    pub state: String,
    pub superseded_by: Option<String>,
    pub basis_submitted_at: Option<i64>,
}

const LISTED: &str = "SELECT e.id, e.issue_id, e.list_type, e.establishment_id, i.state, i.superseded_by, \
    b.submitted_at AS basis_submitted_at FROM list_entries e JOIN list_issues i ON i.id = e.issue_id \
    LEFT JOIN inspections b ON b.id = e.inspection_id";

pub async fn listed(
    conn: &mut AnyConnection,
    entry_id: &str,
) -> Result<Option<ListedRow>, sqlx::Error> {
    sqlx::query_as(&format!("{LISTED} WHERE e.id = $1"))
        .bind(entry_id)
        .fetch_optional(conn)
        .await
}

/// Red entries at an establishment in published, current issues not yet revoked (what a
/// failing approval may revoke; the `list_entries_establishment` index).
pub async fn current_red_at(
    conn: &mut AnyConnection,
    establishment_id: &str,
) -> Result<Vec<ListedRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{LISTED} WHERE e.establishment_id = $1 AND e.list_type = 'red' AND i.state = 'published' \
         AND i.superseded_by IS NULL AND NOT EXISTS (SELECT 1 FROM list_entry_updates u \
         WHERE u.entry_id = e.id AND u.kind = 'revoked') ORDER BY e.id"
    ))
    .bind(establishment_id)
    .fetch_all(conn)
    .await
}

/// An approved (or any) inspection as a basis or an approval needs it.
#[derive(Debug, Clone, FromRow)]
pub struct InspectionRow {
    pub id: String,
    pub establishment_id: String,
    pub review_state: Option<String>,
    pub submitted_at: Option<i64>,
    pub computed_result: Option<String>,
    pub override_result: Option<String>,
    pub evaluation: Option<String>,
    pub template_id: String,
    pub template_version: i64,
    pub stop_operating: Option<i64>,
    pub case_opened: Option<i64>,
    pub period_working_days: Option<i64>,
    pub followup_state: Option<String>,
}

const INSPECTION: &str = "SELECT i.id, i.establishment_id, i.review_state, i.submitted_at, i.computed_result, \
    i.override_result, i.evaluation, t.template_id, t.template_version, f.stop_operating, f.case_opened, \
    f.period_working_days, f.state AS followup_state FROM inspections i JOIN tasks t ON t.id = i.task_id \
    LEFT JOIN followups f ON f.inspection_id = i.id";

pub async fn inspection(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<InspectionRow>, sqlx::Error> {
    sqlx::query_as(&format!("{INSPECTION} WHERE i.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Approved inspections of one establishment submitted in `[from_ms, to_ms)`.
pub async fn approved_at(
    conn: &mut AnyConnection,
    establishment_id: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<InspectionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{INSPECTION} WHERE i.establishment_id = $1 AND i.review_state = 'approved' \
         AND i.submitted_at >= $2 AND i.submitted_at < $3 ORDER BY i.submitted_at, i.id"
    ))
    .bind(establishment_id)
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(conn)
    .await
}

/// A page of establishments with an approved inspection submitted in `[from_ms, to_ms)` and no
/// entry in the issue yet, by id, and their total.
pub async fn candidate_establishments(
    conn: &mut AnyConnection,
    issue_id: &str,
    from_ms: i64,
    to_ms: i64,
    page: u32,
    page_size: u32,
) -> Result<(Vec<String>, i64), sqlx::Error> {
    // Approved inspections, and 不合格 lab results (食品安全抽检) by their report's time, in
    // the range.
    let from = format!(
        "FROM (SELECT i.establishment_id FROM inspections i \
        WHERE i.review_state = 'approved' AND i.submitted_at >= $1 AND i.submitted_at < $2 \
        UNION SELECT s.establishment_id FROM samples s JOIN lab_results r ON r.sample_id = s.id \
        WHERE r.overall = 'unqualified' AND {SAMPLE_REPORTED_AT} >= $1 AND {SAMPLE_REPORTED_AT} < $2) i \
        WHERE NOT EXISTS (SELECT 1 FROM list_entries e WHERE e.issue_id = $3 \
        AND e.establishment_id = i.establishment_id)"
    );
    let from = from.as_str();
    let total: (i64,) =
        sqlx::query_as(&format!("SELECT COUNT(DISTINCT i.establishment_id) {from}"))
            .bind(from_ms)
            .bind(to_ms)
            .bind(issue_id)
            .fetch_one(&mut *conn)
            .await?;
    let offset = i64::from(page.saturating_sub(1)) * i64::from(page_size);
    let ids: Vec<(String,)> = sqlx::query_as(&format!(
        "SELECT DISTINCT i.establishment_id {from} ORDER BY i.establishment_id LIMIT $4 OFFSET $5"
    ))
    .bind(from_ms)
    .bind(to_ms)
    .bind(issue_id)
    .bind(i64::from(page_size))
    .bind(offset)
    .fetch_all(conn)
    .await?;
    Ok((ids.into_iter().map(|r| r.0).collect(), total.0))
}

/// A 不合格 lab result at an establishment: (sample id, reported_at, sample name).
#[derive(Debug, Clone, FromRow)]
pub struct UnqualifiedSampleRow {
    pub id: String,
    pub reported_at: i64,
    pub sample_name: String,
}

/// When a sample's result was reported: its custody `reported` event (the lab's report), else
/// when the result was stored. `s` is the sample, `r` its lab result.
const SAMPLE_REPORTED_AT: &str = "COALESCE((SELECT c.occurred_at FROM custody_events c \
    WHERE c.sample_id = s.id AND c.kind = 'reported'), r.reported_at)";

/// The establishment's samples with a 不合格 result reported in `[from_ms, to_ms)`.
pub async fn unqualified_samples(
    conn: &mut AnyConnection,
    establishment_id: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<UnqualifiedSampleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT s.id, {SAMPLE_REPORTED_AT} AS reported_at, s.sample_name FROM samples s \
         JOIN lab_results r ON r.sample_id = s.id \
         WHERE s.establishment_id = $1 AND r.overall = 'unqualified' AND {SAMPLE_REPORTED_AT} >= $2 \
         AND {SAMPLE_REPORTED_AT} < $3 ORDER BY 2, s.id"
    ))
    .bind(establishment_id)
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(conn)
    .await
}

/// One sample with a 不合格 result, whatever its date.
pub async fn unqualified_sample(
    conn: &mut AnyConnection,
    sample_id: &str,
) -> Result<Option<(UnqualifiedSampleRow, String)>, sqlx::Error> {
    let row: Option<(String, i64, String, String)> = sqlx::query_as(&format!(
        "SELECT s.id, {SAMPLE_REPORTED_AT} AS reported_at, s.sample_name, s.establishment_id FROM samples s \
         JOIN lab_results r ON r.sample_id = s.id WHERE s.id = $1 AND r.overall = 'unqualified'"
    ))
    .bind(sample_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(id, reported_at, sample_name, est)| {
        (
            UnqualifiedSampleRow {
                id,
                reported_at,
                sample_name,
            },
            est,
        )
    }))
}

/// The names of a sample's 不合格 items, in report order.
pub async fn failed_item_names(
    conn: &mut AnyConnection,
    sample_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM lab_result_items WHERE sample_id = $1 AND verdict = 'unqualified' ORDER BY position",
    )
    .bind(sample_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Whether a follow-up at the establishment created since `from_ms` is not closed.
pub async fn has_unclosed_followup(
    conn: &mut AnyConnection,
    establishment_id: &str,
    from_ms: i64,
) -> Result<bool, sqlx::Error> {
    let r: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM followups WHERE establishment_id = $1 AND created_at >= $2 \
         AND state <> 'closed' LIMIT 1",
    )
    .bind(establishment_id)
    .bind(from_ms)
    .fetch_optional(conn)
    .await?;
    Ok(r.is_some())
}

/// The follow-up offered for a rectification, with its recheck inspection's review.
#[derive(Debug, Clone, FromRow)]
pub struct RectifyingRow {
    pub id: String,
    pub establishment_id: String,
    pub state: String,
    pub recheck_inspection_id: Option<String>,
    pub recheck_review_state: Option<String>,
    pub recheck_submitted_at: Option<i64>,
}

pub async fn rectifying(
    conn: &mut AnyConnection,
    followup_id: &str,
) -> Result<Option<RectifyingRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT f.id, f.establishment_id, f.state, f.recheck_inspection_id, \
         r.review_state AS recheck_review_state, r.submitted_at AS recheck_submitted_at \
         FROM followups f LEFT JOIN inspections r ON r.id = f.recheck_inspection_id WHERE f.id = $1",
    )
    .bind(followup_id)
    .fetch_optional(conn)
    .await
}

/// Records a plan's results as published; false when they already were (or no such plan).
pub async fn publish_plan_results(
    conn: &mut AnyConnection,
    plan_id: &str,
    by: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE plans SET results_published_at = $1, results_published_by = $2 \
         WHERE id = $3 AND results_published_at IS NULL",
    )
    .bind(at)
    .bind(by)
    .bind(plan_id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn plan_results_published_at(
    conn: &mut AnyConnection,
    plan_id: &str,
) -> Result<Option<Option<i64>>, sqlx::Error> {
    let r: Option<(Option<i64>,)> =
        // Only inspection rounds publish results this way (a sampling plan is not one).
        sqlx::query_as("SELECT results_published_at FROM plans WHERE id = $1 AND kind = 'inspection'")
            .bind(plan_id)
            .fetch_optional(conn)
            .await?;
    Ok(r.map(|r| r.0))
}

/// A public photo's takedown (migration 0028).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TakedownRow {
    pub photo_id: String,
    pub reason: String,
    pub taken_down_by: String,
    pub taken_down_at: i64,
}

/// Whether the photo is attached to an entry of a published issue (public unless taken down).
pub async fn photo_is_published(
    conn: &mut AnyConnection,
    photo_id: &str,
) -> Result<bool, sqlx::Error> {
    let r: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM list_entry_photos lp JOIN list_entries e ON e.id = lp.entry_id \
         JOIN list_issues i ON i.id = e.issue_id WHERE lp.photo_id = $1 AND i.state = 'published' LIMIT 1",
    )
    .bind(photo_id)
    .fetch_optional(conn)
    .await?;
    Ok(r.is_some())
}

pub async fn takedown(
    conn: &mut AnyConnection,
    photo_id: &str,
) -> Result<Option<TakedownRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT photo_id, reason, taken_down_by, taken_down_at FROM public_photo_takedowns WHERE photo_id = $1",
    )
    .bind(photo_id)
    .fetch_optional(conn)
    .await
}

pub async fn insert_takedown(conn: &mut AnyConnection, r: &TakedownRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO public_photo_takedowns (photo_id, reason, taken_down_by, taken_down_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&r.photo_id)
    .bind(&r.reason)
    .bind(&r.taken_down_by)
    .bind(r.taken_down_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Of `ids` (at most a few: an entry holds 6 photos), those taken down.
pub async fn taken_down_of(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    let mut out = Vec::new();
    for id in ids {
        if takedown(&mut *conn, id).await?.is_some() {
            out.push(id.clone());
        }
    }
    Ok(out)
}
