//! SQL of review decisions: the inspection as a decision needs it, the conditional update that
//! lets exactly one of two concurrent reviewers win, the history rows (`reviews`, never
//! updated) and the task's move back to the team.

use sqlx::{AnyConnection, FromRow};

use crate::plan::TaskState;

/// An inspection with what a review decision looks at.
#[derive(Debug, Clone, FromRow)]
pub struct ReviewTarget {
    pub id: String,
    pub task_id: String,
    pub establishment_id: String,
    pub submitted: i64,
    pub review_state: Option<String>,
    pub review_round: i64,
    pub computed_result: Option<String>,
    pub override_result: Option<String>,
    pub override_reason: Option<String>,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<i64>,
    pub task_state: String,
    pub template_id: String,
    pub template_version: i64,
}

pub async fn target(
    conn: &mut AnyConnection,
    inspection_id: &str,
) -> Result<Option<ReviewTarget>, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.id, i.task_id, i.establishment_id, i.submitted, i.review_state, i.review_round, \
         i.computed_result, i.override_result, i.override_reason, i.reviewed_by, i.reviewed_at, \
         t.state AS task_state, t.template_id, t.template_version \
         FROM inspections i JOIN tasks t ON t.id = i.task_id WHERE i.id = $1",
    )
    .bind(inspection_id)
    .fetch_optional(conn)
    .await
}

/// The inspection's side of a decision.
pub struct DecisionUpdate<'a> {
    pub inspection_id: &'a str,
    /// The round the reviewer saw: the update applies only if it is still the stored one.
    pub expected_round: i64,
    pub round: i64,
    pub review_state: &'a str,
    /// 1 stays locked; 0 (a return) unlocks it on the team's devices.
    pub submitted: i64,
    pub override_result: Option<&'a str>,
    pub override_reason: Option<&'a str>,
    pub reviewed_by: &'a str,
    pub reviewed_at: i64,
    pub seq: i64,
}

/// Records the decision on the inspection if it is still submitted in the expected round.
/// Returns false when another decision (or a resubmission) got there first: the caller
/// refuses with 409 and rolls back. The condition is the arbiter between concurrent
/// reviewers: on PostgreSQL the second UPDATE waits for the first's row lock and then finds
/// the row no longer matching; on SQLite writers are serialised.
pub async fn apply_decision(
    conn: &mut AnyConnection,
    u: &DecisionUpdate<'_>,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE inspections SET review_state = $1, review_round = $2, submitted = $3, \
         override_result = $4, override_reason = $5, reviewed_by = $6, reviewed_at = $7, \
         seq = $8, updated_at = $7 \
         WHERE id = $9 AND submitted = 1 AND (review_state = 'submitted' OR review_state IS NULL) \
         AND review_round = $10",
    )
    .bind(u.review_state)
    .bind(u.round)
    .bind(u.submitted)
    .bind(u.override_result)
    .bind(u.override_reason)
    .bind(u.reviewed_by)
    .bind(u.reviewed_at)
    .bind(u.seq)
    .bind(u.inspection_id)
    .bind(u.expected_round)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// A `reviews` row to insert.
pub struct NewReview<'a> {
    pub id: &'a str,
    pub inspection_id: &'a str,
    pub round: i64,
    pub decision: &'a str,
    pub comment: Option<&'a str>,
    /// JSON array `[{item_code, comment}]`.
    pub item_comments: &'a str,
    pub override_result: Option<&'a str>,
    pub override_reason: Option<&'a str>,
    pub internal_note: Option<&'a str>,
    pub reviewer_id: &'a str,
    pub decided_at: i64,
    pub seq: i64,
}

pub async fn insert_review(conn: &mut AnyConnection, r: &NewReview<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO reviews (id, inspection_id, round, decision, comment, item_comments, override_result, \
         override_reason, internal_note, reviewer_id, decided_at, created_seq, seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
    )
    .bind(r.id)
    .bind(r.inspection_id)
    .bind(r.round)
    .bind(r.decision)
    .bind(r.comment)
    .bind(r.item_comments)
    .bind(r.override_result)
    .bind(r.override_reason)
    .bind(r.internal_note)
    .bind(r.reviewer_id)
    .bind(r.decided_at)
    .bind(r.seq)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves a task `from` → `to` (a return or rejection sends it back to the team), stamping
/// `seq` so the team's devices pull it. Returns false if it was not in `from`.
pub async fn move_task(
    conn: &mut AnyConnection,
    task_id: &str,
    from: TaskState,
    to: TaskState,
    seq: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE tasks SET state = $1, seq = $2, updated_at = $3, submitted_at = NULL \
         WHERE id = $4 AND state = $5",
    )
    .bind(to.as_str())
    .bind(seq)
    .bind(now)
    .bind(task_id)
    .bind(from.as_str())
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// A `reviews` row with the reviewer's name.
#[derive(Debug, Clone, FromRow)]
pub struct ReviewRow {
    pub id: String,
    pub inspection_id: String,
    pub round: i64,
    pub decision: String,
    pub comment: Option<String>,
    pub item_comments: String,
    pub override_result: Option<String>,
    pub override_reason: Option<String>,
    pub internal_note: Option<String>,
    pub reviewer_id: String,
    pub reviewer_name: String,
    pub decided_at: i64,
}

const REVIEW_COLUMNS: &str = "r.id, r.inspection_id, r.round, r.decision, r.comment, r.item_comments, \
    r.override_result, r.override_reason, r.internal_note, r.reviewer_id, u.name AS reviewer_name, r.decided_at";

/// One decision by id.
pub async fn review(conn: &mut AnyConnection, id: &str) -> Result<Option<ReviewRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REVIEW_COLUMNS} FROM reviews r JOIN users u ON u.id = r.reviewer_id WHERE r.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Every decision on an inspection, oldest first: the history of its rounds.
pub async fn history(
    conn: &mut AnyConnection,
    inspection_id: &str,
) -> Result<Vec<ReviewRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REVIEW_COLUMNS} FROM reviews r JOIN users u ON u.id = r.reviewer_id \
         WHERE r.inspection_id = $1 ORDER BY r.round, r.decided_at, r.id"
    ))
    .bind(inspection_id)
    .fetch_all(conn)
    .await
}
