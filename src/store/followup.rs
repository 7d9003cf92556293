//! 整改 → 复查: follow-ups (`followups`) and their recheck tasks (`tasks.kind = 'recheck'`).

use chrono::NaiveDate;
use sqlx::{AnyConnection, FromRow};

use super::{backend_of, now_ms, placeholders};
use crate::checklist::rule::ResultCode;
use crate::followup::{Followup, FollowupState};

fn decode_err(what: &str, e: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("followups.{what}: {e}").into())
}

/// A stored result code (`compliant`, `basically_compliant`, `non_compliant`).
pub fn parse_result(s: &str) -> Option<ResultCode> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

pub fn result_str(r: ResultCode) -> &'static str {
    match r {
        ResultCode::Compliant => "compliant",
        ResultCode::BasicallyCompliant => "basically_compliant",
        ResultCode::NonCompliant => "non_compliant",
    }
}

#[derive(Debug, Clone, FromRow)]
struct FollowupRow {
    id: String,
    inspection_id: Option<String>,
    sample_id: Option<String>,
    establishment_id: String,
    plan_id: Option<String>,
    origin_result: String,
    state: String,
    order_text: Option<String>,
    ordered_on: String,
    period_working_days: Option<i64>,
    period_calendar_days: Option<i64>,
    deadline: String,
    failed_items: String,
    stop_operating: i64,
    case_opened: i64,
    recheck_team: String,
    recheck_task_id: Option<String>,
    recheck_inspection_id: Option<String>,
    outcome_result: Option<String>,
    closed_at: Option<i64>,
    created_by: String,
    created_at: i64,
    updated_at: i64,
}

const COLUMNS: &str = "id, inspection_id, sample_id, establishment_id, plan_id, origin_result, state, order_text, ordered_on, \
    period_working_days, period_calendar_days, deadline, failed_items, stop_operating, case_opened, recheck_team, recheck_task_id, \
    recheck_inspection_id, outcome_result, closed_at, created_by, created_at, updated_at";

impl TryFrom<FollowupRow> for Followup {
    type Error = sqlx::Error;
    fn try_from(r: FollowupRow) -> Result<Followup, sqlx::Error> {
        let date = |what: &str, v: &str| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|e| decode_err(what, e))
        };
        let result = |what: &str, v: &str| {
            parse_result(v).ok_or_else(|| decode_err(what, format!("unknown result {v:?}")))
        };
        let days = |what: &str, v: Option<i64>| {
            v.map(|n| u32::try_from(n).map_err(|e| decode_err(what, e)))
                .transpose()
        };
        Ok(Followup {
            // A sample's follow-up stores `unqualified` (不合格), not an inspection result.
            origin_result: if r.sample_id.is_some() {
                None
            } else {
                Some(result("origin_result", &r.origin_result)?)
            },
            state: FollowupState::parse(&r.state)
                .ok_or_else(|| decode_err("state", format!("unknown state {:?}", r.state)))?,
            ordered_on: date("ordered_on", &r.ordered_on)?,
            deadline: date("deadline", &r.deadline)?,
            period_working_days: days("period_working_days", r.period_working_days)?,
            period_calendar_days: days("period_calendar_days", r.period_calendar_days)?,
            failed_items: serde_json::from_str(&r.failed_items)
                .map_err(|e| decode_err("failed_items", e))?,
            recheck_team: serde_json::from_str(&r.recheck_team)
                .map_err(|e| decode_err("recheck_team", e))?,
            outcome_result: r
                .outcome_result
                .as_deref()
                .map(|v| result("outcome_result", v))
                .transpose()?,
            stop_operating: r.stop_operating != 0,
            case_opened: r.case_opened != 0,
            id: r.id,
            inspection_id: r.inspection_id,
            sample_id: r.sample_id,
            establishment_id: r.establishment_id,
            plan_id: r.plan_id,
            order_text: r.order_text,
            recheck_task_id: r.recheck_task_id,
            recheck_inspection_id: r.recheck_inspection_id,
            closed_at: r.closed_at,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Inserts a follow-up in state `open` (an inspection's or a sample's).
pub async fn insert(conn: &mut AnyConnection, f: &Followup) -> Result<(), sqlx::Error> {
    let json = |v: &Vec<String>| serde_json::to_string(v).map_err(|e| decode_err("json", e));
    sqlx::query(&format!(
        "INSERT INTO followups ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23)"
    ))
    .bind(&f.id)
    .bind(&f.inspection_id)
    .bind(&f.sample_id)
    .bind(&f.establishment_id)
    .bind(&f.plan_id)
    .bind(f.origin_result.map_or("unqualified", result_str))
    .bind(f.state.as_str())
    .bind(f.order_text.as_deref())
    .bind(f.ordered_on.to_string())
    .bind(f.period_working_days.map(i64::from))
    .bind(f.period_calendar_days.map(i64::from))
    .bind(f.deadline.to_string())
    .bind(json(&f.failed_items)?)
    .bind(i64::from(f.stop_operating))
    .bind(i64::from(f.case_opened))
    .bind(json(&f.recheck_team)?)
    .bind(f.recheck_task_id.as_deref())
    .bind(f.recheck_inspection_id.as_deref())
    .bind(f.outcome_result.map(result_str))
    .bind(f.closed_at)
    .bind(&f.created_by)
    .bind(f.created_at)
    .bind(f.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<Followup>, sqlx::Error> {
    let row: Option<FollowupRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM followups WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?;
    row.map(Followup::try_from).transpose()
}

/// The follow-up opened from an inspection, if any.
pub async fn of_inspection(
    conn: &mut AnyConnection,
    inspection_id: &str,
) -> Result<Option<Followup>, sqlx::Error> {
    let row: Option<FollowupRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM followups WHERE inspection_id = $1"
    ))
    .bind(inspection_id)
    .fetch_optional(conn)
    .await?;
    row.map(Followup::try_from).transpose()
}

/// Ids of `open` inspection follow-ups whose deadline is `today` or earlier, oldest deadline
/// first (`followups_state_deadline`); a sample's 核查处置 has no recheck.
pub async fn due_ids(
    conn: &mut AnyConnection,
    today: NaiveDate,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM followups WHERE state = 'open' AND deadline <= $1 AND inspection_id IS NOT NULL \
         ORDER BY deadline, id LIMIT $2",
    )
    .bind(today.to_string())
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// What opening a follow-up needs to know about the approved inspection.
#[derive(Debug, Clone, FromRow)]
pub struct InspectionFacts {
    pub id: String,
    pub task_id: String,
    pub establishment_id: String,
    pub submitted: i64,
    /// JSON `Evaluation` at submission.
    pub evaluation: Option<String>,
    pub plan_id: String,
    pub template_id: String,
    pub template_version: i64,
}

pub async fn inspection_facts(
    conn: &mut AnyConnection,
    inspection_id: &str,
) -> Result<Option<InspectionFacts>, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.id, i.task_id, i.establishment_id, i.submitted, i.evaluation, t.plan_id, t.template_id, \
         t.template_version FROM inspections i JOIN tasks t ON t.id = i.task_id WHERE i.id = $1",
    )
    .bind(inspection_id)
    .fetch_optional(conn)
    .await
}

/// Member ids of a task's team, in order.
pub async fn team_of_task(
    conn: &mut AnyConnection,
    task_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT inspector_id FROM task_members WHERE task_id = $1 ORDER BY position, inspector_id",
    )
    .bind(task_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Of `inspector_ids`, those with a declared conflict (回避) at the establishment.
pub async fn conflicted_at(
    conn: &mut AnyConnection,
    establishment_id: &str,
    inspector_ids: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    if inspector_ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = (0..inspector_ids.len())
        .map(|i| format!("${}", i + 2))
        .collect::<Vec<_>>()
        .join(",");
    let sql = format!(
        "SELECT DISTINCT inspector_id FROM inspector_conflicts WHERE establishment_id = $1 AND inspector_id IN ({list})"
    );
    let mut q = sqlx::query_as::<_, (String,)>(&sql).bind(establishment_id);
    for id in inspector_ids {
        q = q.bind(id.as_str());
    }
    let rows = q.fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// A recheck task to create.
pub struct NewRecheckTask<'a> {
    pub id: &'a str,
    pub followup: &'a Followup,
    pub template_id: &'a str,
    pub template_version: i64,
    pub due_date: NaiveDate,
    pub team: &'a [String],
}

/// Moves an `open` follow-up to `recheck_assigned` with its task, and creates the task (kind
/// `recheck`, stamped with `seq` so the team's devices pull it) and its team rows. Returns
/// false, writing nothing, when the follow-up is no longer open (another sweep got there).
pub async fn assign_recheck(
    conn: &mut AnyConnection,
    t: &NewRecheckTask<'_>,
    seq: i64,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let team_json = serde_json::to_string(t.team).map_err(|e| decode_err("recheck_team", e))?;
    // The conditional update first: a concurrent sweep waits on the row and then finds it
    // taken (no unique violation, which would abort a PostgreSQL transaction).
    let claimed = sqlx::query(
        "UPDATE followups SET state = 'recheck_assigned', recheck_task_id = $1, recheck_team = $2, updated_at = $3 \
         WHERE id = $4 AND state = 'open'",
    )
    .bind(t.id)
    .bind(&team_json)
    .bind(now)
    .bind(&t.followup.id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if claimed != 1 {
        return Ok(false);
    }
    let must_check = serde_json::to_string(&t.followup.failed_items)
        .map_err(|e| decode_err("failed_items", e))?;
    sqlx::query(
        "INSERT INTO tasks (id, kind, plan_id, draw_id, followup_id, establishment_id, template_id, template_version, \
         due_date, state, must_check_items, draw_order, created_at, updated_at, seq, created_seq) \
         VALUES ($1, 'recheck', $2, NULL, $3, $4, $5, $6, $7, 'assigned', $8, 0, $9, $9, $10, $10)",
    )
    .bind(t.id)
    .bind(&t.followup.plan_id)
    .bind(&t.followup.id)
    .bind(&t.followup.establishment_id)
    .bind(t.template_id)
    .bind(t.template_version)
    .bind(t.due_date.to_string())
    .bind(&must_check)
    .bind(now)
    .bind(seq)
    .execute(&mut *conn)
    .await?;
    for (i, member) in t.team.iter().enumerate() {
        sqlx::query(
            "INSERT INTO task_members (task_id, inspector_id, position, added_seq) VALUES ($1, $2, $3, $4)",
        )
        .bind(t.id)
        .bind(member.as_str())
        .bind(i as i64)
        .bind(seq)
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

/// A submitted inspection of a recheck task whose follow-up waits for it.
#[derive(Debug, Clone, FromRow)]
pub struct RecheckSubmission {
    pub inspection_id: String,
    pub computed_result: Option<String>,
    pub followup_id: String,
}

/// Of `inspection_ids`, the submitted inspections of recheck tasks whose follow-up is
/// `recheck_assigned`.
pub async fn submitted_rechecks(
    conn: &mut AnyConnection,
    inspection_ids: &[String],
) -> Result<Vec<RecheckSubmission>, sqlx::Error> {
    let mut out = Vec::new();
    let backend = backend_of(conn);
    for chunk in inspection_ids.chunks(500) {
        let sql = format!(
            "SELECT i.id AS inspection_id, i.computed_result, f.id AS followup_id FROM inspections i \
             JOIN tasks t ON t.id = i.task_id JOIN followups f ON f.id = t.followup_id \
             WHERE t.kind = 'recheck' AND i.submitted = 1 AND f.state = 'recheck_assigned' AND i.id IN {}",
            placeholders(backend, 1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, RecheckSubmission>(&sql);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// Closes or escalates a `recheck_assigned` follow-up; false when it is no longer waiting.
pub async fn finish(
    conn: &mut AnyConnection,
    followup_id: &str,
    state: FollowupState,
    recheck_inspection_id: &str,
    outcome: Option<ResultCode>,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let n = sqlx::query(
        "UPDATE followups SET state = $1, recheck_inspection_id = $2, outcome_result = $3, closed_at = $4, \
         updated_at = $4 WHERE id = $5 AND state = 'recheck_assigned'",
    )
    .bind(state.as_str())
    .bind(recheck_inspection_id)
    .bind(outcome.map(result_str))
    .bind(now)
    .bind(followup_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records the recheck task's new team on its follow-up (the task was reassigned).
pub async fn set_recheck_team(
    conn: &mut AnyConnection,
    followup_id: &str,
    team: &[String],
) -> Result<(), sqlx::Error> {
    let team = serde_json::to_string(team).map_err(|e| decode_err("recheck_team", e))?;
    sqlx::query("UPDATE followups SET recheck_team = $1, updated_at = $2 WHERE id = $3")
        .bind(team)
        .bind(now_ms())
        .bind(followup_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Puts a follow-up that `recheck_inspection_id` closed or escalated back to waiting for its
/// recheck (the reviewer returned or rejected that inspection). False when it was not that
/// inspection's to reopen.
pub async fn reopen(
    conn: &mut AnyConnection,
    followup_id: &str,
    recheck_inspection_id: &str,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE followups SET state = 'recheck_assigned', recheck_inspection_id = NULL, outcome_result = NULL, \
         closed_at = NULL, updated_at = $1 \
         WHERE id = $2 AND recheck_inspection_id = $3 AND state IN ('closed', 'escalated')",
    )
    .bind(now_ms())
    .bind(followup_id)
    .bind(recheck_inspection_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Whether the user is on the follow-up's origin team or its recheck team (for a sample's
/// follow-up: one of the sample's samplers).
pub async fn on_team(
    conn: &mut AnyConnection,
    f: &Followup,
    user_id: &str,
) -> Result<bool, sqlx::Error> {
    if let Some(sample_id) = &f.sample_id {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM sample_samplers WHERE sample_id = $1 AND user_id = $2")
                .bind(sample_id)
                .bind(user_id)
                .fetch_optional(conn)
                .await?;
        return Ok(row.is_some());
    }
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM task_members tm WHERE tm.inspector_id = $1 AND \
         (tm.task_id = (SELECT task_id FROM inspections WHERE id = $2) OR tm.task_id = $3)",
    )
    .bind(user_id)
    .bind(f.inspection_id.as_deref().unwrap_or(""))
    .bind(f.recheck_task_id.as_deref().unwrap_or(""))
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// The 核查处置 follow-up of a sample, if any.
pub async fn of_sample(
    conn: &mut AnyConnection,
    sample_id: &str,
) -> Result<Option<Followup>, sqlx::Error> {
    let row: Option<FollowupRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM followups WHERE sample_id = $1"
    ))
    .bind(sample_id)
    .fetch_optional(conn)
    .await?;
    row.map(Followup::try_from).transpose()
}

/// Closes a sample's open follow-up; false when it is not open.
pub async fn close_sample_followup(
    conn: &mut AnyConnection,
    id: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE followups SET state = 'closed', closed_at = $1, updated_at = $1 \
         WHERE id = $2 AND state = 'open' AND sample_id IS NOT NULL",
    )
    .bind(at)
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}
