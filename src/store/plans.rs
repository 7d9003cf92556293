//! Plans, draws, tasks with their teams, and conflicts of interest.

use std::collections::HashMap;

use sqlx::{AnyConnection, FromRow};

use super::{backend_of, now_ms, placeholders, Filter};
use crate::plan::draw::DrawRecord;
use crate::plan::{Plan, PlanKind, PlanStatus, TaskState};

/// A plan as stored; decoded into [`Plan`] before it leaves the store.
#[derive(Debug, Clone, FromRow)]
struct PlanRow {
    pub id: String,
    pub name: String,
    pub round_title: String,
    pub theme: String,
    pub period_start: String,
    pub period_end: String,
    pub due_date: String,
    pub template_id: String,
    pub template_version: i64,
    pub pool_filter: String,
    pub quotas: String,
    pub exclude_inspected_within_days: Option<i64>,
    pub inspector_ids: String,
    pub team_size: i64,
    pub status: String,
    pub current_draw_id: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn decode_err(what: &str, e: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("plans.{what}: {e}").into())
}

impl TryFrom<PlanRow> for Plan {
    type Error = sqlx::Error;
    fn try_from(p: PlanRow) -> Result<Plan, sqlx::Error> {
        let date = |what: &str, v: &str| {
            chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|e| decode_err(what, e))
        };
        Ok(Plan {
            period_start: date("period_start", &p.period_start)?,
            period_end: date("period_end", &p.period_end)?,
            due_date: date("due_date", &p.due_date)?,
            filter: serde_json::from_str(&p.pool_filter)
                .map_err(|e| decode_err("pool_filter", e))?,
            quotas: serde_json::from_str(&p.quotas).map_err(|e| decode_err("quotas", e))?,
            inspector_ids: serde_json::from_str(&p.inspector_ids)
                .map_err(|e| decode_err("inspector_ids", e))?,
            status: PlanStatus::parse(&p.status)
                .ok_or_else(|| decode_err("status", format!("unknown status {:?}", p.status)))?,
            id: p.id,
            name: p.name,
            round_title: p.round_title,
            theme: p.theme,
            template_id: p.template_id,
            template_version: p.template_version,
            exclude_inspected_within_days: p.exclude_inspected_within_days,
            team_size: p.team_size,
            current_draw_id: p.current_draw_id,
            created_by: p.created_by,
            created_at: p.created_at,
            updated_at: p.updated_at,
        })
    }
}

const PLAN_COLUMNS: &str = "id, name, round_title, theme, period_start, period_end, due_date, template_id, \
    template_version, pool_filter, quotas, exclude_inspected_within_days, inspector_ids, team_size, status, \
    current_draw_id, created_by, created_at, updated_at";

pub struct NewPlan<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub round_title: &'a str,
    pub theme: &'a str,
    pub period_start: &'a str,
    pub period_end: &'a str,
    pub due_date: &'a str,
    pub template_id: &'a str,
    pub template_version: i64,
    pub pool_filter: &'a str,
    pub quotas: &'a str,
    pub exclude_inspected_within_days: Option<i64>,
    pub inspector_ids: &'a str,
    pub team_size: i64,
    pub created_by: &'a str,
}

pub async fn insert_plan(conn: &mut AnyConnection, p: &NewPlan<'_>) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO plans (id, name, round_title, theme, period_start, period_end, due_date, template_id, \
         template_version, pool_filter, quotas, exclude_inspected_within_days, inspector_ids, team_size, status, \
         current_draw_id, created_by, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,'draft',NULL,$15,$16,$16)",
    )
    .bind(p.id)
    .bind(p.name)
    .bind(p.round_title)
    .bind(p.theme)
    .bind(p.period_start)
    .bind(p.period_end)
    .bind(p.due_date)
    .bind(p.template_id)
    .bind(p.template_version)
    .bind(p.pool_filter)
    .bind(p.quotas)
    .bind(p.exclude_inspected_within_days)
    .bind(p.inspector_ids)
    .bind(p.team_size)
    .bind(p.created_by)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// What every kind of plan has, for the draw paths shared by inspection and sampling plans
/// (verify, records, the public draw and its page).
#[derive(Debug, Clone, FromRow)]
pub struct PlanHead {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub kind: PlanKind,
    /// The 期 title of an inspection round, the title of a sampling plan.
    pub round_title: String,
    pub theme: String,
    /// `YYYY-MM-DD`.
    pub period_start: String,
    pub period_end: String,
    pub current_draw_id: Option<String>,
}

/// A plan of any kind.
pub async fn plan_head(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<PlanHead>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, kind, round_title, theme, period_start, period_end, current_draw_id FROM plans WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// An inspection plan (a sampling plan is not one: `None`).
pub async fn get_plan(conn: &mut AnyConnection, id: &str) -> Result<Option<Plan>, sqlx::Error> {
    let row: Option<PlanRow> = sqlx::query_as(&format!(
        "SELECT {PLAN_COLUMNS} FROM plans WHERE id = $1 AND kind = 'inspection'"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Plan::try_from).transpose()
}

pub async fn list_plans(
    conn: &mut AnyConnection,
    page: u32,
    page_size: u32,
) -> Result<(Vec<Plan>, i64), sqlx::Error> {
    let offset = i64::from(page.max(1) - 1) * i64::from(page_size);
    let rows: Vec<PlanRow> = sqlx::query_as(&format!(
        "SELECT {PLAN_COLUMNS} FROM plans WHERE kind = 'inspection' ORDER BY created_at DESC, id LIMIT {page_size} OFFSET {offset}"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM plans WHERE kind = 'inspection'")
        .fetch_one(&mut *conn)
        .await?;
    let plans = rows
        .into_iter()
        .map(Plan::try_from)
        .collect::<Result<_, _>>()?;
    Ok((plans, total))
}

/// Task counts of a plan's current draw.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub assigned: i64,
    pub in_progress: i64,
    pub submitted: i64,
    pub cancelled: i64,
    /// Not submitted or cancelled, and past the due date.
    pub overdue: i64,
}

/// Progress of each plan's current draw, for up to a page of plans at once.
pub async fn progress(
    conn: &mut AnyConnection,
    plan_ids: &[String],
    today: &str,
) -> Result<HashMap<String, Progress>, sqlx::Error> {
    let mut out: HashMap<String, Progress> = HashMap::new();
    if plan_ids.is_empty() {
        return Ok(out);
    }
    let list = (0..plan_ids.len())
        .map(|i| format!("${}", i + 2))
        .collect::<Vec<_>>()
        .join(",");
    let sql = format!(
        "SELECT t.plan_id, t.state, COUNT(*) AS n, \
         SUM(CASE WHEN t.state IN ('assigned', 'in_progress') AND t.due_date < $1 THEN 1 ELSE 0 END) AS overdue \
         FROM tasks t JOIN plans p ON p.id = t.plan_id AND p.current_draw_id = t.draw_id \
         WHERE t.plan_id IN ({list}) GROUP BY t.plan_id, t.state"
    );
    let mut q = sqlx::query_as::<_, (String, String, i64, i64)>(&sql).bind(today);
    for id in plan_ids {
        q = q.bind(id.as_str());
    }
    for (plan, state, n, overdue) in q.fetch_all(&mut *conn).await? {
        let p = out.entry(plan).or_default();
        match TaskState::try_from(state).map_err(|e| decode_err("tasks.state", e))? {
            TaskState::Assigned => p.assigned = n,
            TaskState::InProgress => p.in_progress = n,
            TaskState::Submitted => p.submitted = n,
            TaskState::Cancelled => p.cancelled = n,
        }
        p.overdue += overdue;
    }
    Ok(out)
}

/// Candidate filter for [`candidate_pool`].
pub struct PoolQuery<'a> {
    pub plan_id: &'a str,
    pub categories: Vec<String>,
    pub towns: Vec<String>,
    pub risk_grades: Vec<String>,
    /// Leave out establishments with a task submitted at or after this instant (ms), or with
    /// an open task in another plan.
    pub exclude_since_ms: Option<i64>,
}

/// The open establishments matching the filter, as (id, risk grade), ordered by id.
pub async fn candidate_pool(
    conn: &mut AnyConnection,
    q: &PoolQuery<'_>,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let mut clauses = vec!["e.status = 'open'".to_string()];
    let mut params: Vec<String> = Vec::new();
    let list = |params: &mut Vec<String>, values: &[String]| {
        let start = params.len();
        params.extend(values.iter().cloned());
        (start + 1..=params.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    if !q.categories.is_empty() {
        clauses.push(format!(
            "e.category IN ({})",
            list(&mut params, &q.categories)
        ));
    }
    if !q.towns.is_empty() {
        clauses.push(format!("e.town IN ({})", list(&mut params, &q.towns)));
    }
    if !q.risk_grades.is_empty() {
        clauses.push(format!(
            "e.risk_grade IN ({})",
            list(&mut params, &q.risk_grades)
        ));
    }
    let mut since = None;
    if let Some(s) = q.exclude_since_ms {
        params.push(q.plan_id.to_string());
        let plan = params.len();
        clauses.push(format!(
            "NOT EXISTS (SELECT 1 FROM tasks t WHERE t.establishment_id = e.id AND \
             ((t.state = 'submitted' AND t.submitted_at >= ${}) OR \
              (t.state IN ('assigned', 'in_progress') AND t.plan_id <> ${plan})))",
            plan + 1
        ));
        since = Some(s);
    }
    let sql = format!(
        // No ORDER BY: the draw sorts the pool canonically itself.
        "SELECT e.id, e.risk_grade FROM establishments e WHERE {}",
        clauses.join(" AND ")
    );
    let mut query = sqlx::query_as::<_, (String, String)>(&sql);
    for p in &params {
        query = query.bind(p.as_str());
    }
    if let Some(s) = since {
        query = query.bind(s);
    }
    query.fetch_all(conn).await
}

/// (id, name, badge_no) of the given users that are active inspectors.
pub async fn active_inspectors(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<Vec<(String, String, Option<String>)>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = placeholders(backend_of(conn), 1, ids.len());
    let sql = format!("SELECT id, name, badge_no FROM users WHERE role = 'inspector' AND disabled = 0 AND id IN {list} ORDER BY id");
    let mut q = sqlx::query_as(&sql);
    for id in ids {
        q = q.bind(id.as_str());
    }
    q.fetch_all(conn).await
}

/// Declared conflicts (inspector, establishment) of the given inspectors.
pub async fn conflicts_of(
    conn: &mut AnyConnection,
    inspector_ids: &[String],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    if inspector_ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = placeholders(backend_of(conn), 1, inspector_ids.len());
    let sql = format!("SELECT inspector_id, establishment_id FROM inspector_conflicts WHERE inspector_id IN {list}");
    let mut q = sqlx::query_as(&sql);
    for id in inspector_ids {
        q = q.bind(id.as_str());
    }
    q.fetch_all(conn).await
}

/// Must-check items (JSON arrays) of the given establishments, where recorded.
pub async fn followups(
    conn: &mut AnyConnection,
    establishment_ids: &[String],
) -> Result<HashMap<String, String>, sqlx::Error> {
    let mut out = HashMap::new();
    let backend = backend_of(conn);
    for chunk in establishment_ids.chunks(500) {
        let list = placeholders(backend, 1, chunk.len());
        let sql = format!("SELECT establishment_id, failed_items FROM establishment_followups WHERE establishment_id IN {list}");
        let mut q = sqlx::query_as::<_, (String, String)>(&sql);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// Records the items failed at an establishment's latest inspection.
pub async fn set_followup(
    conn: &mut AnyConnection,
    establishment_id: &str,
    failed_items_json: &str,
    source_task_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO establishment_followups (establishment_id, failed_items, source_task_id, updated_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (establishment_id) DO UPDATE SET \
         failed_items = excluded.failed_items, source_task_id = excluded.source_task_id, updated_at = excluded.updated_at",
    )
    .bind(establishment_id)
    .bind(failed_items_json)
    .bind(source_task_id)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct DrawRow {
    pub id: String,
    pub plan_id: String,
    pub seq: i64,
    pub seed: String,
    pub algorithm: String,
    pub pool_hash: String,
    pub pool_size: i64,
    pub drawn_count: i64,
    pub reason: Option<String>,
    pub drawn_by: String,
    pub drawn_at: i64,
    pub superseded_at: Option<i64>,
}

const DRAW_COLUMNS: &str = "id, plan_id, seq, seed, algorithm, pool_hash, pool_size, drawn_count, reason, drawn_by, drawn_at, superseded_at";

pub async fn draws_of(
    conn: &mut AnyConnection,
    plan_id: &str,
) -> Result<Vec<DrawRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DRAW_COLUMNS} FROM draws WHERE plan_id = $1 ORDER BY seq"
    ))
    .bind(plan_id)
    .fetch_all(&mut *conn)
    .await
}

pub async fn get_draw(conn: &mut AnyConnection, id: &str) -> Result<Option<DrawRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {DRAW_COLUMNS} FROM draws WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The stored JSON record of a draw.
pub async fn draw_record(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT record FROM draws WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.0))
}

/// Ids of a draw's open tasks (assigned or in progress) with their state: what a redraw
/// cancels.
pub async fn open_tasks_of_draw(
    conn: &mut AnyConnection,
    draw_id: &str,
) -> Result<Vec<(String, TaskState)>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, state FROM tasks WHERE draw_id = $1 AND state IN ('assigned', 'in_progress') \
         ORDER BY draw_order, id",
    )
    .bind(draw_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(id, s)| {
            let state = TaskState::try_from(s).map_err(|e| decode_err("tasks.state", e))?;
            Ok((id, state))
        })
        .collect()
}

/// Tasks of a draw that are no longer just assigned (a redraw would discard field work).
pub async fn progressed_tasks(conn: &mut AnyConnection, draw_id: &str) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM tasks WHERE draw_id = $1 AND state IN ('in_progress', 'submitted')",
    )
    .bind(draw_id)
    .fetch_one(conn)
    .await?;
    Ok(n)
}

pub struct NewDraw<'a> {
    pub id: &'a str,
    pub plan_id: &'a str,
    pub seed: &'a str,
    pub algorithm: &'a str,
    pub pool_hash: &'a str,
    pub pool_size: i64,
    pub drawn_count: i64,
    pub record: &'a str,
    pub reason: Option<&'a str>,
    pub drawn_by: &'a str,
}

impl<'a> NewDraw<'a> {
    /// The row of a draw made as `record` (seed, algorithm, pool hash and counts from it),
    /// stored as `record_json`; both kinds of plan store their draws so.
    pub fn of_record(
        id: &'a str,
        plan_id: &'a str,
        record: &'a DrawRecord,
        record_json: &'a str,
        reason: Option<&'a str>,
        drawn_by: &'a str,
    ) -> Self {
        NewDraw {
            id,
            plan_id,
            seed: &record.input.seed,
            algorithm: &record.outcome.algorithm,
            pool_hash: &record.outcome.pool_hash,
            pool_size: record.input.pool.len() as i64,
            drawn_count: record.outcome.drawn.len() as i64,
            record: record_json,
            reason,
            drawn_by,
        }
    }
}

/// The cancel reason of the open tasks a redraw replaces.
pub const REDRAW_CANCEL_REASON: &str = "superseded by a redraw";

pub struct NewTask {
    pub id: String,
    pub establishment_id: String,
    pub must_check_items: String,
    pub draw_order: i64,
    pub members: Vec<String>,
}

/// Makes `draw` the plan's current draw, superseding `previous` (its open tasks are cancelled),
/// and creates the tasks with their teams. Returns false when the plan's current draw is no
/// longer `previous` (someone else drew concurrently).
pub async fn record_draw(
    conn: &mut AnyConnection,
    draw: &NewDraw<'_>,
    previous: Option<&str>,
    plan: &Plan,
    tasks: &[NewTask],
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let seq = super::sync::next_seq(conn).await?;
    if !claim_draw(conn, draw, previous, now).await? {
        return Ok(false);
    }
    if let Some(prev) = previous {
        // In the one order every writer locks tasks in (PostgreSQL).
        super::sync::lock_tasks_of_draw(conn, "tasks", prev).await?;
        sqlx::query(
            "UPDATE tasks SET state = 'cancelled', cancel_reason = $4, updated_at = $1, seq = $3 \
             WHERE draw_id = $2 AND state IN ('assigned', 'in_progress')",
        )
        .bind(now)
        .bind(prev)
        .bind(seq)
        .bind(REDRAW_CANCEL_REASON)
        .execute(&mut *conn)
        .await?;
    }
    insert_tasks(conn, draw, plan, tasks, now, seq).await?;
    Ok(true)
}

/// Makes `draw` its plan's current draw (of any kind of plan) if the plan's current draw is
/// still `previous`, marks `previous` superseded and stores the draw with the next number of
/// the plan. Returns false when someone else drew concurrently.
pub async fn claim_draw(
    conn: &mut AnyConnection,
    draw: &NewDraw<'_>,
    previous: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let claimed = match previous {
        None => sqlx::query(
            "UPDATE plans SET status = 'drawn', current_draw_id = $1, updated_at = $2 \
             WHERE id = $3 AND current_draw_id IS NULL",
        )
        .bind(draw.id)
        .bind(now)
        .bind(draw.plan_id)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        Some(prev) => sqlx::query(
            "UPDATE plans SET status = 'drawn', current_draw_id = $1, updated_at = $2 \
             WHERE id = $3 AND current_draw_id = $4",
        )
        .bind(draw.id)
        .bind(now)
        .bind(draw.plan_id)
        .bind(prev)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
    };
    if claimed != 1 {
        return Ok(false);
    }
    if let Some(prev) = previous {
        sqlx::query("UPDATE draws SET superseded_at = $1 WHERE id = $2")
            .bind(now)
            .bind(prev)
            .execute(&mut *conn)
            .await?;
    }
    let (draw_seq,): (i64,) =
        sqlx::query_as("SELECT COALESCE(MAX(seq), 0) + 1 FROM draws WHERE plan_id = $1")
            .bind(draw.plan_id)
            .fetch_one(&mut *conn)
            .await?;
    sqlx::query(
        "INSERT INTO draws (id, plan_id, seq, seed, algorithm, pool_hash, pool_size, drawn_count, record, reason, drawn_by, drawn_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
    )
    .bind(draw.id)
    .bind(draw.plan_id)
    .bind(draw_seq)
    .bind(draw.seed)
    .bind(draw.algorithm)
    .bind(draw.pool_hash)
    .bind(draw.pool_size)
    .bind(draw.drawn_count)
    .bind(draw.record)
    .bind(draw.reason)
    .bind(draw.drawn_by)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

async fn insert_tasks(
    conn: &mut AnyConnection,
    draw: &NewDraw<'_>,
    plan: &Plan,
    tasks: &[NewTask],
    now: i64,
    seq: i64,
) -> Result<(), sqlx::Error> {
    let backend = backend_of(conn);
    let due_date = plan.due_date.to_string();
    for chunk in tasks.chunks(500) {
        let sql = format!(
            "INSERT INTO tasks (id, plan_id, draw_id, establishment_id, template_id, template_version, due_date, \
             state, must_check_items, draw_order, created_at, updated_at, seq, created_seq) VALUES {}",
            placeholders(backend, chunk.len(), 14)
        );
        let mut q = sqlx::query(&sql);
        for t in chunk {
            q = q
                .bind(t.id.as_str())
                .bind(draw.plan_id)
                .bind(draw.id)
                .bind(t.establishment_id.as_str())
                .bind(plan.template_id.as_str())
                .bind(plan.template_version)
                .bind(due_date.as_str())
                .bind("assigned")
                .bind(t.must_check_items.as_str())
                .bind(t.draw_order)
                .bind(now)
                .bind(now)
                .bind(seq)
                .bind(seq);
        }
        q.execute(&mut *conn).await?;
    }
    let members: Vec<(&str, &str, i64)> = tasks
        .iter()
        .flat_map(|t| {
            t.members
                .iter()
                .enumerate()
                .map(move |(i, m)| (t.id.as_str(), m.as_str(), i as i64))
        })
        .collect();
    for chunk in members.chunks(1000) {
        let sql = format!(
            "INSERT INTO task_members (task_id, inspector_id, position, added_seq) VALUES {}",
            placeholders(backend, chunk.len(), 4)
        );
        let mut q = sqlx::query(&sql);
        for (task, inspector, pos) in chunk {
            q = q.bind(*task).bind(*inspector).bind(*pos).bind(seq);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct TaskRow {
    pub id: String,
    pub plan_id: String,
    /// None for a recheck task (复查, from a follow-up, not drawn).
    pub draw_id: Option<String>,
    pub establishment_id: String,
    pub template_id: String,
    pub template_version: i64,
    pub due_date: String,
    #[sqlx(try_from = "String")]
    pub state: TaskState,
    pub cancel_reason: Option<String>,
    pub must_check_items: String,
    pub draw_order: i64,
    pub submitted_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub round_title: String,
    pub sign_name: String,
    pub licensed_name: String,
    pub address: String,
    pub town: String,
    pub category: String,
    pub risk_grade: String,
    pub raw_lng: Option<f64>,
    pub raw_lat: Option<f64>,
    pub crs: Option<String>,
}

const TASK_SELECT: &str = "SELECT t.id, t.plan_id, t.draw_id, t.establishment_id, t.template_id, t.template_version, \
    t.due_date, t.state, t.cancel_reason, t.must_check_items, t.draw_order, t.submitted_at, t.created_at, t.updated_at, \
    p.round_title, e.sign_name, e.licensed_name, e.address, e.town, e.category, e.risk_grade, e.raw_lng, e.raw_lat, e.crs \
    FROM tasks t JOIN plans p ON p.id = t.plan_id JOIN establishments e ON e.id = t.establishment_id";

#[derive(Debug, Default)]
pub struct TaskFilter {
    pub plan_id: Option<String>,
    pub state: Option<TaskState>,
    /// Only tasks whose team includes this inspector.
    pub member: Option<String>,
    /// Only tasks of plans' current draws (superseded draws' tasks are history).
    pub current_only: bool,
    pub page: u32,
    pub page_size: u32,
}

pub async fn list_tasks(
    conn: &mut AnyConnection,
    f: &TaskFilter,
) -> Result<(Vec<TaskRow>, i64), sqlx::Error> {
    let mut filter = Filter::default();
    if let Some(p) = &f.plan_id {
        filter.bind("t.plan_id = {}", p);
    }
    if let Some(s) = &f.state {
        filter.bind("t.state = {}", s.as_str());
    }
    if let Some(m) = &f.member {
        filter.bind(
            "EXISTS (SELECT 1 FROM task_members tm WHERE tm.task_id = t.id AND tm.inspector_id = {})",
            m,
        );
    }
    if f.current_only {
        // Recheck tasks have no draw and are never superseded.
        filter.raw("(t.draw_id IS NULL OR t.draw_id = p.current_draw_id)");
    }
    filter
        .page(
            conn,
            TASK_SELECT,
            "tasks t JOIN plans p ON p.id = t.plan_id",
            "t.due_date, t.draw_order, t.id",
            f.page,
            f.page_size,
        )
        .await
}

pub async fn get_task(conn: &mut AnyConnection, id: &str) -> Result<Option<TaskRow>, sqlx::Error> {
    sqlx::query_as(&format!("{TASK_SELECT} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// A team member: (task id, inspector id, name, badge number, position).
pub type Member = (String, String, String, Option<String>, i64);

pub async fn members_of(
    conn: &mut AnyConnection,
    task_ids: &[String],
) -> Result<Vec<Member>, sqlx::Error> {
    team_members(conn, "task_members", "inspector_id", task_ids).await
}

/// The members of the given tasks in team order, read from a team table (`table`, whose
/// member column is `member_col`): inspection and sampling teams are stored alike.
pub(super) async fn team_members(
    conn: &mut AnyConnection,
    table: &str,
    member_col: &str,
    task_ids: &[String],
) -> Result<Vec<Member>, sqlx::Error> {
    let mut out = Vec::new();
    let backend = backend_of(conn);
    for chunk in task_ids.chunks(500) {
        let list = placeholders(backend, 1, chunk.len());
        let sql = format!(
            "SELECT tm.task_id, tm.{member_col}, u.name, u.badge_no, tm.position FROM {table} tm \
             JOIN users u ON u.id = tm.{member_col} WHERE tm.task_id IN {list} ORDER BY tm.task_id, tm.position"
        );
        let mut q = sqlx::query_as::<_, Member>(&sql);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// (submitted, review state) of each inspection of a task.
pub async fn inspection_states(
    conn: &mut AnyConnection,
    task_id: &str,
) -> Result<Vec<(i64, Option<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT submitted, review_state FROM inspections WHERE task_id = $1")
        .bind(task_id)
        .fetch_all(conn)
        .await
}

/// The follow-up whose recheck task this is, if any.
pub async fn followup_of_task(
    conn: &mut AnyConnection,
    task_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT followup_id FROM tasks WHERE id = $1")
            .bind(task_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.and_then(|r| r.0))
}

pub async fn is_member(
    conn: &mut AnyConnection,
    task_id: &str,
    user_id: &str,
) -> Result<bool, sqlx::Error> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM task_members WHERE task_id = $1 AND inspector_id = $2")
            .bind(task_id)
            .bind(user_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.is_some())
}

/// Moves a task from `from` to `to` if it is still in `from`; returns whether it moved.
pub async fn set_task_state(
    conn: &mut AnyConnection,
    id: &str,
    from: TaskState,
    to: TaskState,
    reason: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let seq = super::sync::next_seq(conn).await?;
    let n = sqlx::query(
        "UPDATE tasks SET state = $1, cancel_reason = COALESCE($2, cancel_reason), updated_at = $3, \
         submitted_at = CASE WHEN $1 = 'submitted' THEN $3 ELSE submitted_at END, seq = $6 \
         WHERE id = $4 AND state = $5",
    )
    .bind(to.as_str())
    .bind(reason)
    .bind(now)
    .bind(id)
    .bind(from.as_str())
    .bind(seq)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

#[derive(Debug, Clone, FromRow)]
pub struct ConflictRow {
    pub id: String,
    pub inspector_id: String,
    pub inspector_name: String,
    pub establishment_id: String,
    pub sign_name: String,
    pub reason: String,
    pub created_at: i64,
}

pub async fn insert_conflict(
    conn: &mut AnyConnection,
    id: &str,
    inspector_id: &str,
    establishment_id: &str,
    reason: &str,
    actor: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO inspector_conflicts (id, inspector_id, establishment_id, reason, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(inspector_id)
    .bind(establishment_id)
    .bind(reason)
    .bind(actor)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// One declared conflict.
pub async fn get_conflict(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<ConflictRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.id, c.inspector_id, u.name AS inspector_name, c.establishment_id, e.sign_name, c.reason, c.created_at \
         FROM inspector_conflicts c JOIN users u ON u.id = c.inspector_id JOIN establishments e ON e.id = c.establishment_id \
         WHERE c.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn list_conflicts(
    conn: &mut AnyConnection,
    inspector_id: Option<&str>,
    establishment_id: Option<&str>,
    page: u32,
    page_size: u32,
) -> Result<(Vec<ConflictRow>, i64), sqlx::Error> {
    let offset = i64::from(page.max(1) - 1) * i64::from(page_size);
    let filter = "($1 IS NULL OR c.inspector_id = $1) AND ($2 IS NULL OR c.establishment_id = $2)";
    let rows = sqlx::query_as(&format!(
        "SELECT c.id, c.inspector_id, u.name AS inspector_name, c.establishment_id, e.sign_name, c.reason, c.created_at \
         FROM inspector_conflicts c JOIN users u ON u.id = c.inspector_id JOIN establishments e ON e.id = c.establishment_id \
         WHERE {filter} ORDER BY c.created_at, c.id LIMIT {page_size} OFFSET {offset}"
    ))
    .bind(inspector_id)
    .bind(establishment_id)
    .fetch_all(&mut *conn)
    .await?;
    let (total,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM inspector_conflicts c WHERE {filter}"
    ))
    .bind(inspector_id)
    .bind(establishment_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok((rows, total))
}

pub async fn delete_conflict(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM inspector_conflicts WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected()
        == 1)
}
