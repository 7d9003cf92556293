//! Sampling plans (rows of `plans` with `kind = 'sampling'` and their `sampling_plans` row),
//! their tasks with teams, and the per-sampler change feed the sync layer will pull.
//!
//! Sync positions: every write to a task takes one `store::sync::next_seq` and stores it in
//! `sampling_tasks.seq` (its last change); a member carries `added_seq` (the change that put
//! them on the team: everything of the task is new to their device after it); a removal row
//! carries the change that took them off. [`changed_for_sampler`] and [`removed_for_sampler`]
//! answer "what changed for sampler X since position P"; [`tasks_for_pull`] is what the sync
//! pull (`ops::sync_pull`) reads: the same tasks with their fields, and those
//! whose premises' registry entry changed.

use sqlx::{AnyConnection, FromRow};

use super::{backend_of, placeholders, Filter};
use crate::sampling::plan::SamplingTaskState;

/// A sampling plan as stored (the plan row joined with its sampling row).
#[derive(Debug, Clone, FromRow)]
pub struct SamplingPlanRow {
    pub id: String,
    pub title: String,
    pub theme: String,
    pub period_start: String,
    pub period_end: String,
    pub pool_filter: String,
    pub quotas: String,
    pub team_size: i64,
    pub status: String,
    pub current_draw_id: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub purpose: String,
    pub stage: String,
    pub lab_id: String,
    pub batches: String,
    pub task_due_working_days: i64,
}

const PLAN_SELECT: &str =
    "SELECT p.id, p.round_title AS title, p.theme, p.period_start, p.period_end, p.pool_filter, \
    p.quotas, p.team_size, p.status, p.current_draw_id, p.created_by, p.created_at, p.updated_at, \
    s.purpose, s.stage, s.lab_id, s.batches, s.task_due_working_days \
    FROM plans p JOIN sampling_plans s ON s.plan_id = p.id";

pub struct NewSamplingPlan<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub theme: &'a str,
    pub period_start: &'a str,
    pub period_end: &'a str,
    pub pool_filter: &'a str,
    pub quotas: &'a str,
    pub team_size: i64,
    pub purpose: &'a str,
    pub stage: &'a str,
    pub lab_id: &'a str,
    pub batches: &'a str,
    pub task_due_working_days: i64,
    pub created_by: &'a str,
    pub now: i64,
}

pub async fn insert_plan(
    conn: &mut AnyConnection,
    p: &NewSamplingPlan<'_>,
) -> Result<(), sqlx::Error> {
    // The plan's due date column holds the period's end; each task has its own due date.
    sqlx::query(
        "INSERT INTO plans (id, kind, name, round_title, theme, period_start, period_end, due_date, template_id, \
         template_version, pool_filter, quotas, exclude_inspected_within_days, inspector_ids, team_size, status, \
         current_draw_id, created_by, created_at, updated_at) \
         VALUES ($1, 'sampling', $2, $2, $3, $4, $5, $5, NULL, NULL, $6, $7, NULL, '[]', $8, 'draft', NULL, $9, $10, $10)",
    )
    .bind(p.id)
    .bind(p.title)
    .bind(p.theme)
    .bind(p.period_start)
    .bind(p.period_end)
    .bind(p.pool_filter)
    .bind(p.quotas)
    .bind(p.team_size)
    .bind(p.created_by)
    .bind(p.now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO sampling_plans (plan_id, purpose, stage, lab_id, batches, task_due_working_days) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(p.id)
    .bind(p.purpose)
    .bind(p.stage)
    .bind(p.lab_id)
    .bind(p.batches)
    .bind(p.task_due_working_days)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_plan(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<SamplingPlanRow>, sqlx::Error> {
    sqlx::query_as(&format!("{PLAN_SELECT} WHERE p.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Sampling plans, newest first, and how many there are.
pub async fn list_plans(
    conn: &mut AnyConnection,
    page: u32,
    page_size: u32,
) -> Result<(Vec<SamplingPlanRow>, i64), sqlx::Error> {
    let offset = i64::from(page.max(1) - 1) * i64::from(page_size);
    let rows = sqlx::query_as(&format!(
        "{PLAN_SELECT} ORDER BY p.created_at DESC, p.id LIMIT {page_size} OFFSET {offset}"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sampling_plans")
        .fetch_one(&mut *conn)
        .await?;
    Ok((rows, total))
}

/// A task to create from a draw.
pub struct NewTask {
    pub id: String,
    pub establishment_id: String,
    pub draw_order: i64,
    /// JSON `[{category_code, batches}]`.
    pub batches: String,
}

/// The due date of a draw's tasks, with its rule.
pub struct Due<'a> {
    pub date: &'a str,
    pub rule: &'a str,
    pub period_days: i64,
    pub start_on: &'a str,
}

/// Creates a draw's tasks, unassigned, at change position `seq`.
#[allow(clippy::too_many_arguments)]
pub async fn insert_tasks(
    conn: &mut AnyConnection,
    plan_id: &str,
    draw_id: &str,
    lab_id: &str,
    due: &Due<'_>,
    tasks: &[NewTask],
    now: i64,
    seq: i64,
) -> Result<(), sqlx::Error> {
    let backend = backend_of(conn);
    for chunk in tasks.chunks(200) {
        let sql = format!(
            "INSERT INTO sampling_tasks (id, plan_id, draw_id, establishment_id, draw_order, batches, lab_id, state, \
             cancel_reason, due_date, due_rule, due_period_days, due_start_on, created_at, updated_at, seq, created_seq) \
             VALUES {}",
            placeholders(backend, chunk.len(), 17)
        );
        let mut q = sqlx::query(&sql);
        for t in chunk {
            q = q
                .bind(t.id.as_str())
                .bind(plan_id)
                .bind(draw_id)
                .bind(t.establishment_id.as_str())
                .bind(t.draw_order)
                .bind(t.batches.as_str())
                .bind(lab_id)
                .bind(SamplingTaskState::Unassigned.as_str())
                .bind(None::<String>)
                .bind(due.date)
                .bind(due.rule)
                .bind(due.period_days)
                .bind(due.start_on)
                .bind(now)
                .bind(now)
                .bind(seq)
                .bind(seq);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Cancels the open tasks of a replaced draw at change position `seq`; returns (id, state
/// before) of each.
pub async fn cancel_tasks_of_draw(
    conn: &mut AnyConnection,
    draw_id: &str,
    reason: &str,
    now: i64,
    seq: i64,
) -> Result<Vec<(String, SamplingTaskState)>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, state FROM sampling_tasks WHERE draw_id = $1 AND state <> 'cancelled' ORDER BY draw_order, id",
    )
    .bind(draw_id)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE sampling_tasks SET state = 'cancelled', cancel_reason = $1, updated_at = $2, seq = $3 \
         WHERE draw_id = $4 AND state <> 'cancelled'",
    )
    .bind(reason)
    .bind(now)
    .bind(seq)
    .bind(draw_id)
    .execute(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(id, s)| {
            SamplingTaskState::try_from(s)
                .map(|st| (id, st))
                .map_err(|e| sqlx::Error::Decode(format!("sampling_tasks.state: {e}").into()))
        })
        .collect()
}

/// Samples submitted against the tasks of a draw.
pub async fn samples_of_draw(conn: &mut AnyConnection, draw_id: &str) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM samples s JOIN sampling_tasks t ON t.id = s.task_id WHERE t.draw_id = $1",
    )
    .bind(draw_id)
    .fetch_one(conn)
    .await?;
    Ok(n)
}

/// Samples submitted against a task.
pub async fn samples_of_task(conn: &mut AnyConnection, task_id: &str) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM samples WHERE task_id = $1")
        .bind(task_id)
        .fetch_one(conn)
        .await?;
    Ok(n)
}

/// A task with what its views need of its plan and premises.
#[derive(Debug, Clone, FromRow)]
pub struct TaskRow {
    pub id: String,
    pub plan_id: String,
    pub draw_id: String,
    pub establishment_id: String,
    pub draw_order: i64,
    pub batches: String,
    pub lab_id: String,
    #[sqlx(try_from = "String")]
    pub state: SamplingTaskState,
    pub cancel_reason: Option<String>,
    pub due_date: String,
    pub due_rule: String,
    pub due_period_days: i64,
    pub due_start_on: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub seq: i64,
    pub plan_title: String,
    pub purpose: String,
    pub stage: String,
    pub current_draw_id: Option<String>,
    pub sign_name: String,
    pub licensed_name: String,
    pub address: String,
    pub town: String,
    pub license_no: Option<String>,
    pub uscc: Option<String>,
}

const TASK_SELECT: &str = "SELECT t.id, t.plan_id, t.draw_id, t.establishment_id, t.draw_order, t.batches, t.lab_id, \
    t.state, t.cancel_reason, t.due_date, t.due_rule, t.due_period_days, t.due_start_on, t.created_at, t.updated_at, \
    t.seq, p.round_title AS plan_title, s.purpose, s.stage, p.current_draw_id, e.sign_name, e.licensed_name, \
    e.address, e.town, e.license_no, e.uscc \
    FROM sampling_tasks t JOIN plans p ON p.id = t.plan_id JOIN sampling_plans s ON s.plan_id = t.plan_id \
    JOIN establishments e ON e.id = t.establishment_id";

/// Which tasks a list shows.
#[derive(Debug, Default)]
pub struct TaskFilter {
    pub plan_id: Option<String>,
    pub state: Option<SamplingTaskState>,
    /// Only tasks whose team includes this user.
    pub member: Option<String>,
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
            "EXISTS (SELECT 1 FROM sampling_task_members tm WHERE tm.task_id = t.id AND tm.user_id = {})",
            m,
        );
    }
    filter
        .page(
            conn,
            TASK_SELECT,
            "sampling_tasks t",
            "t.due_date, t.plan_id, t.draw_order, t.id",
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

/// A team member: (task id, user id, name, badge number, position).
pub type Member = super::plans::Member;

/// The members of the given tasks, in team order.
pub async fn members_of(
    conn: &mut AnyConnection,
    task_ids: &[String],
) -> Result<Vec<Member>, sqlx::Error> {
    super::plans::team_members(conn, "sampling_task_members", "user_id", task_ids).await
}

/// The team of one task, user ids in order.
pub async fn team_of(conn: &mut AnyConnection, task_id: &str) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT user_id FROM sampling_task_members WHERE task_id = $1 ORDER BY position",
    )
    .bind(task_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Writes a team change at change position `seq`: removed members leave (with a removal row
/// at `seq`), added ones join with `added_seq = seq` (a removal row of theirs goes), everyone's
/// position follows `team`; the task becomes `assigned` with `lab_id`, its `seq` is `seq`.
#[allow(clippy::too_many_arguments)]
pub async fn change_team(
    conn: &mut AnyConnection,
    task_id: &str,
    team: &[String],
    added: &[String],
    removed: &[String],
    lab_id: &str,
    now: i64,
    seq: i64,
) -> Result<(), sqlx::Error> {
    for user in removed {
        sqlx::query("DELETE FROM sampling_task_members WHERE task_id = $1 AND user_id = $2")
            .bind(task_id)
            .bind(user.as_str())
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO sampling_task_member_removals (task_id, user_id, seq, removed_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (task_id, user_id) DO UPDATE SET seq = excluded.seq, removed_at = excluded.removed_at",
        )
        .bind(task_id)
        .bind(user.as_str())
        .bind(seq)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    for user in added {
        sqlx::query(
            "DELETE FROM sampling_task_member_removals WHERE task_id = $1 AND user_id = $2",
        )
        .bind(task_id)
        .bind(user.as_str())
        .execute(&mut *conn)
        .await?;
    }
    for (i, user) in team.iter().enumerate() {
        sqlx::query(
            "INSERT INTO sampling_task_members (task_id, user_id, position, added_seq) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (task_id, user_id) DO UPDATE SET position = excluded.position",
        )
        .bind(task_id)
        .bind(user.as_str())
        .bind(i as i64)
        .bind(seq)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "UPDATE sampling_tasks SET state = 'assigned', lab_id = $1, updated_at = $2, seq = $3 WHERE id = $4",
    )
    .bind(lab_id)
    .bind(now)
    .bind(seq)
    .bind(task_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A task that changed for a sampler since a position, with when it became theirs.
#[derive(Debug, Clone, FromRow)]
pub struct ChangedTask {
    pub id: String,
    /// The change position of the task's last change.
    pub seq: i64,
    /// The change that put the sampler on its team.
    pub added_seq: i64,
}

/// The tasks of sampler `user_id` (their team includes them) that changed after position
/// `since`, or that became theirs after it; ascending by position. What a pull with cursor
/// `since` sends them as created (`added_seq > since`) or updated.
pub async fn changed_for_sampler(
    conn: &mut AnyConnection,
    user_id: &str,
    since: i64,
) -> Result<Vec<ChangedTask>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.id, t.seq, tm.added_seq FROM sampling_tasks t \
         JOIN sampling_task_members tm ON tm.task_id = t.id AND tm.user_id = $1 \
         WHERE t.seq > $2 OR tm.added_seq > $2 ORDER BY t.seq, t.id",
    )
    .bind(user_id)
    .bind(since)
    .fetch_all(conn)
    .await
}

/// Tasks sampler `user_id` was taken off after position `since` (and is not on again): their
/// device is told to delete them.
pub async fn removed_for_sampler(
    conn: &mut AnyConnection,
    user_id: &str,
    since: i64,
    upto: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT task_id FROM sampling_task_member_removals WHERE user_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq, task_id",
    )
    .bind(user_id)
    .bind(since)
    .bind(upto)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// A sampling task as a sampler's device pulls it (sync schema 6, `sampling_tasks`): the task
/// with its plan's title, 检验目的 and 抽样环节, its premises' public identity as the registry
/// holds it, and its lab's name.
#[derive(Debug, Clone, FromRow)]
pub struct TaskSync {
    pub id: String,
    pub plan_id: String,
    pub plan_title: String,
    pub purpose: String,
    pub stage: String,
    pub establishment_id: String,
    pub sign_name: String,
    pub licensed_name: String,
    pub address: String,
    pub town: String,
    pub license_no: Option<String>,
    pub uscc: Option<String>,
    pub lab_id: String,
    pub lab_name: String,
    pub batches: String,
    pub due_date: String,
    #[sqlx(try_from = "String")]
    pub state: SamplingTaskState,
    pub created_seq: i64,
}

/// The sampling tasks `user` is on the team of: (task id, `added_seq`), by index.
pub async fn memberships_of_sampler(
    conn: &mut AnyConnection,
    user: &str,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT task_id, added_seq FROM sampling_task_members WHERE user_id = $1")
        .bind(user)
        .fetch_all(conn)
        .await
}

/// Sampling tasks `ids` as pulled, in position order: those whose task or premises changed in
/// `window`, or all of them.
pub async fn tasks_for_pull(
    conn: &mut AnyConnection,
    ids: &[&str],
    window: Option<super::sync::Window>,
) -> Result<Vec<TaskSync>, sqlx::Error> {
    super::sync::select_in(
        conn,
        "SELECT t.id, t.plan_id, p.round_title AS plan_title, s.purpose, s.stage, t.establishment_id, \
         e.sign_name, e.licensed_name, e.address, e.town, e.license_no, e.uscc, t.lab_id, l.name AS lab_name, \
         t.batches, t.due_date, t.state, t.created_seq \
         FROM sampling_tasks t JOIN plans p ON p.id = t.plan_id JOIN sampling_plans s ON s.plan_id = t.plan_id \
         JOIN establishments e ON e.id = t.establishment_id JOIN labs l ON l.id = t.lab_id",
        "t.id",
        ids,
        window.map(|w| (&["t.seq", "e.seq"][..], w)),
        "ORDER BY t.seq, t.id",
    )
    .await
}
