//! SQL of the reviewer's queues and their counts, and of the task list's results. Every queue
//! walks one index in its sort order (see `queue_sql`; tests/api/queues.rs checks the plans):
//!
//! | queue | index |
//! |---|---|
//! | waiting, returned | `inspections_review_flags (review_state, submitted_at, id, server_flags)` (0015) |
//! | flagged | `inspections_flagged (review_state, submitted_at, id) WHERE flagged = 1` (0017), kept by triggers |
//! | overdue_tasks | `tasks_open_due (due_date, id) WHERE state IN ('assigned', 'in_progress')` (0015) |
//! | rectifications_due | `followups_state_deadline (state, deadline, id)` |
//! | rechecks_due | `followups_state_deadline`, the recheck task by `tasks_open_rechecks` (0015) |

use sqlx::{AnyConnection, FromRow};

use super::backend_of;
use crate::checklist::rule::ResultCode;
use crate::review::queues::{
    parse_result, result_str, Cursor, EntryEstablishment, EntryKind, Queue, QueueEntry,
    QueueFilter, ReviewFlag, SortKey,
};
use crate::review::ReviewState;

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    Int(i64),
}

/// A statement and its parameters, numbered `$1..` in order.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Param>,
}

impl Sql {
    fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }
}

/// Photos of the inspection `i` that carry any flag.
const FLAGGED_PHOTOS: &str = "FROM photos ph WHERE ph.inspection_id = i.id \
    AND ph.flags IS NOT NULL AND ph.flags <> '[]'";

/// The columns every queue selects (NULL where the queue has none), so one row type decodes
/// them all.
fn columns(queue: Queue) -> String {
    let sample_id = if queue.entry_kind() == EntryKind::Followup {
        "f.sample_id"
    } else {
        "CAST(NULL AS TEXT)"
    };
    let (kind, id, inspection_id, followup_id, due, recheck_due, sort_int, sort_text) = match queue
    {
        Queue::Waiting | Queue::Returned | Queue::Flagged => (
            "inspection",
            "i.id",
            "i.id",
            "CAST(NULL AS TEXT)",
            "t.due_date",
            "CAST(NULL AS TEXT)",
            "i.submitted_at",
            "CAST(NULL AS TEXT)",
        ),
        Queue::OverdueTasks => (
            "task",
            "t.id",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "t.due_date",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS BIGINT)",
            "t.due_date",
        ),
        Queue::RectificationsDue | Queue::RechecksDue => (
            "followup",
            "f.id",
            "f.inspection_id",
            "f.id",
            "f.deadline",
            if queue == Queue::RechecksDue {
                "t.due_date"
            } else {
                "CAST(NULL AS TEXT)"
            },
            "CAST(NULL AS BIGINT)",
            "f.deadline",
        ),
    };
    let inspection_cols = if queue == Queue::OverdueTasks {
        "CAST(NULL AS TEXT) AS review_state, CAST(NULL AS BIGINT) AS review_round, \
         CAST(NULL AS BIGINT) AS submitted_at, CAST(NULL AS TEXT) AS computed_result, \
         CAST(NULL AS TEXT) AS override_result, CAST(NULL AS TEXT) AS server_flags, \
         CAST(0 AS BIGINT) AS flagged_photos"
            .to_string()
    } else {
        format!(
            "i.review_state, i.review_round, i.submitted_at, i.computed_result, i.override_result, \
             i.server_flags, (SELECT COUNT(*) {FLAGGED_PHOTOS}) AS flagged_photos"
        )
    };
    format!(
        "'{kind}' AS kind, {id} AS id, {inspection_id} AS inspection_id, t.id AS task_id, \
         {followup_id} AS followup_id, {sample_id} AS sample_id, p.id AS plan_id, p.round_title, e.id AS establishment_id, \
         e.sign_name, e.address, e.town, {inspection_cols}, {due} AS due_date, \
         {recheck_due} AS recheck_due_date, {sort_int} AS sort_int, {sort_text} AS sort_text"
    )
}

/// Which joined tables a statement needs besides the queue's own: a page shows the task, plan
/// and establishment; a count joins only what its filters name, so it counts index entries.
#[derive(Debug, Clone, Copy)]
struct Joins {
    inspection: bool,
    task: bool,
    plan: bool,
    establishment: bool,
    /// Outer joins where an entry may lack the joined row (the page's own statement).
    outer: bool,
}

impl Joins {
    fn all() -> Joins {
        Joins {
            inspection: true,
            task: true,
            plan: true,
            establishment: true,
            outer: true,
        }
    }

    fn for_filters(f: &QueueFilter) -> Joins {
        Joins {
            inspection: f.result.is_some() || f.flag.is_some(),
            task: f.member.is_some() || f.plan_id.is_some(),
            plan: f.round.is_some(),
            establishment: f.town.is_some(),
            outer: false,
        }
    }
}

/// FROM, the queue's own condition, and its order (the index's order).
fn base(
    queue: Queue,
    joins: Joins,
    today: &str,
    horizon: &str,
    sql: &mut Sql,
) -> (String, String, String) {
    let mut from = String::new();
    let (cond, order) = match queue {
        Queue::Waiting | Queue::Returned | Queue::Flagged => {
            from.push_str("inspections i");
            if joins.task || joins.plan {
                from.push_str(" JOIN tasks t ON t.id = i.task_id");
            }
            if joins.plan {
                from.push_str(" JOIN plans p ON p.id = t.plan_id");
            }
            if joins.establishment {
                from.push_str(" JOIN establishments e ON e.id = i.establishment_id");
            }
            let cond = match queue {
                Queue::Waiting => "i.review_state = 'submitted'".to_string(),
                Queue::Returned => "i.review_state = 'returned'".to_string(),
                // `flagged` is kept by triggers (0017): the server's own flags or a flagged
                // photo. Written as the partial index's predicate.
                _ => "i.review_state = 'submitted' AND i.flagged = 1".to_string(),
            };
            (cond, "i.submitted_at, i.id")
        }
        Queue::OverdueTasks => {
            from.push_str("tasks t");
            if joins.plan {
                from.push_str(" JOIN plans p ON p.id = t.plan_id");
            }
            if joins.establishment {
                from.push_str(" JOIN establishments e ON e.id = t.establishment_id");
            }
            // Written exactly as the partial index's predicate, so both planners use it.
            let cond = format!(
                "t.state IN ('assigned', 'in_progress') AND t.due_date < {}",
                sql.bind(Param::Text(today.into()))
            );
            (cond, "t.due_date, t.id")
        }
        Queue::RectificationsDue | Queue::RechecksDue => {
            from.push_str("followups f");
            let recheck = queue == Queue::RechecksDue;
            // A sample's follow-up (rectifications_due) has no inspection, task or plan: the
            // page's statement keeps it with outer joins; a filter on them leaves it out.
            let join = if !recheck && joins.outer {
                " LEFT JOIN"
            } else {
                " JOIN"
            };
            if joins.inspection || (joins.task && !recheck) {
                from.push_str(&format!("{join} inspections i ON i.id = f.inspection_id"));
            }
            // `t` is the recheck task for rechecks (its team and due date are what matter),
            // else the inspected task.
            if recheck {
                from.push_str(" JOIN tasks t ON t.id = f.recheck_task_id");
            } else if joins.task {
                from.push_str(&format!("{join} tasks t ON t.id = i.task_id"));
            }
            if joins.plan {
                from.push_str(&format!("{join} plans p ON p.id = f.plan_id"));
            }
            if joins.establishment {
                from.push_str(" JOIN establishments e ON e.id = f.establishment_id");
            }
            let cond = if recheck {
                // As the partial index `tasks_open_rechecks` says it.
                "f.state = 'recheck_assigned' AND t.kind = 'recheck' AND t.state <> 'submitted'"
                    .to_string()
            } else {
                format!(
                    "f.state = 'open' AND f.deadline <= {}",
                    sql.bind(Param::Text(horizon.into()))
                )
            };
            (cond, "f.deadline, f.id")
        }
    };
    (from, cond, order.to_string())
}

fn filters(queue: Queue, f: &QueueFilter, sql: &mut Sql) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = &f.plan_id {
        let column = match queue.entry_kind() {
            EntryKind::Followup => "f.plan_id",
            _ => "t.plan_id",
        };
        out.push(format!("{column} = {}", sql.bind(Param::Text(v.clone()))));
    }
    if let Some(v) = &f.round {
        let a = sql.bind(Param::Text(v.clone()));
        let b = sql.bind(Param::Text(v.clone()));
        out.push(format!("(p.round_title = {a} OR p.id = {b})"));
    }
    if let Some(v) = &f.town {
        out.push(format!("e.town = {}", sql.bind(Param::Text(v.clone()))));
    }
    if let Some(v) = &f.member {
        out.push(format!(
            "EXISTS (SELECT 1 FROM task_members tm WHERE tm.task_id = t.id AND tm.inspector_id = {})",
            sql.bind(Param::Text(v.clone()))
        ));
    }
    let has_inspection = queue != Queue::OverdueTasks;
    if let Some(r) = f.result {
        if has_inspection {
            out.push(format!(
                "COALESCE(i.override_result, i.computed_result) = {}",
                sql.bind(Param::Text(result_str(r).into()))
            ));
        } else {
            out.push("1 = 0".into());
        }
    }
    if let Some(flag) = f.flag {
        if has_inspection {
            // Flags are stored as JSON arrays of names; a name is matched with its quotes.
            let pattern = format!("%\"{}\"%", flag.as_str());
            let a = sql.bind(Param::Text(pattern.clone()));
            let b = sql.bind(Param::Text(pattern));
            out.push(format!(
                "(i.server_flags LIKE {a} OR EXISTS (SELECT 1 {FLAGGED_PHOTOS} AND ph.flags LIKE {b}))"
            ));
        } else {
            out.push("1 = 0".into());
        }
    }
    out
}

/// The ids of a page: the entries after `after`, in the queue's order, `limit` of them, joining
/// only what the filters need (so the ordered index walk does the work).
pub fn key_sql(
    queue: Queue,
    f: &QueueFilter,
    today: &str,
    horizon: &str,
    after: Option<&Cursor>,
    limit: u32,
) -> Sql {
    let mut sql = Sql::default();
    let (from, cond, order) = base(queue, Joins::for_filters(f), today, horizon, &mut sql);
    let mut clauses = vec![cond];
    clauses.extend(filters(queue, f, &mut sql));
    if let Some(c) = after {
        let key = match &c.key {
            SortKey::Time(t) => sql.bind(Param::Int(*t)),
            SortKey::Date(d) => sql.bind(Param::Text(d.clone())),
        };
        let id = sql.bind(Param::Text(c.id.clone()));
        // A row-value comparison: both planners turn it into an index range.
        clauses.push(format!("({order}) > ({key}, {id})"));
    }
    sql.text = format!(
        "SELECT {} FROM {from} WHERE {} ORDER BY {order} LIMIT {limit}",
        primary_key(queue),
        clauses.join(" AND "),
    );
    sql
}

fn primary_key(queue: Queue) -> &'static str {
    match queue.entry_kind() {
        EntryKind::Inspection => "i.id",
        EntryKind::Task => "t.id",
        EntryKind::Followup => "f.id",
    }
}

/// The page query of a queue: the page's ids first ([`key_sql`]), then only those rows joined
/// with what the entries show, so no planner joins (or sorts) more rows than the page has.
pub fn queue_sql(
    queue: Queue,
    f: &QueueFilter,
    today: &str,
    horizon: &str,
    after: Option<&Cursor>,
    limit: u32,
) -> Sql {
    let mut sql = key_sql(queue, f, today, horizon, after, limit);
    // The outer statement has no condition of its own: its parameters stay the keys'.
    let (from, _, order) = base(queue, Joins::all(), today, horizon, &mut Sql::default());
    sql.text = format!(
        "SELECT {} FROM {from} WHERE {} IN ({}) ORDER BY {order}",
        columns(queue),
        primary_key(queue),
        sql.text
    );
    sql
}

/// The count query of a queue with the same filters.
pub fn count_sql(queue: Queue, f: &QueueFilter, today: &str, horizon: &str) -> Sql {
    let mut sql = Sql::default();
    let (from, cond, _) = base(queue, Joins::for_filters(f), today, horizon, &mut sql);
    let mut clauses = vec![cond];
    clauses.extend(filters(queue, f, &mut sql));
    sql.text = format!(
        "SELECT COUNT(*) FROM {from} WHERE {}",
        clauses.join(" AND ")
    );
    sql
}

#[derive(Debug, Clone, FromRow)]
struct QueueRow {
    id: String,
    inspection_id: Option<String>,
    task_id: Option<String>,
    followup_id: Option<String>,
    sample_id: Option<String>,
    plan_id: Option<String>,
    round_title: Option<String>,
    establishment_id: String,
    sign_name: String,
    address: String,
    town: String,
    review_state: Option<String>,
    review_round: Option<i64>,
    submitted_at: Option<i64>,
    computed_result: Option<String>,
    override_result: Option<String>,
    server_flags: Option<String>,
    flagged_photos: i64,
    due_date: Option<String>,
    recheck_due_date: Option<String>,
    sort_int: Option<i64>,
    sort_text: Option<String>,
}

fn decode_err(what: &str, v: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("queue row: unknown {what} {v:?}").into())
}

fn result(what: &str, v: Option<String>) -> Result<Option<ResultCode>, sqlx::Error> {
    v.map(|s| parse_result(&s).ok_or_else(|| decode_err(what, &s)))
        .transpose()
}

fn decode(queue: Queue, r: QueueRow, today: &str) -> Result<QueueEntry, sqlx::Error> {
    let review_state = r
        .review_state
        .map(|s| ReviewState::parse(&s).ok_or_else(|| decode_err("review_state", &s)))
        .transpose()?;
    let computed_result = result("computed_result", r.computed_result)?;
    let override_result = result("override_result", r.override_result)?;
    let sort_key = match (r.sort_int, r.sort_text) {
        (Some(t), _) => Some(SortKey::Time(t)),
        (None, Some(d)) => Some(SortKey::Date(d)),
        _ => None,
    };
    let overdue_on = if queue == Queue::RechecksDue {
        r.recheck_due_date.as_deref()
    } else {
        r.due_date.as_deref()
    };
    let overdue =
        queue.entry_kind() != EntryKind::Inspection && overdue_on.is_some_and(|d| d < today);
    Ok(QueueEntry {
        kind: queue.entry_kind(),
        id: r.id,
        inspection_id: r.inspection_id,
        task_id: r.task_id,
        followup_id: r.followup_id,
        sample_id: r.sample_id,
        plan_id: r.plan_id,
        round_title: r.round_title,
        establishment: EntryEstablishment {
            id: r.establishment_id,
            sign_name: r.sign_name,
            address: r.address,
            town: r.town,
        },
        team: Vec::new(),
        review_state,
        review_round: r.review_round,
        submitted_at: r.submitted_at.map(rfc3339),
        computed_result,
        override_result,
        effective_result: override_result.or(computed_result),
        flags: ReviewFlag::decode_list(r.server_flags.as_deref()),
        flagged_photos: r.flagged_photos,
        due_date: r.due_date,
        recheck_due_date: r.recheck_due_date,
        overdue,
        sort_key,
    })
}

use crate::clock::rfc3339;

fn bind_all<'q, O>(
    mut q: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>,
    params: &'q [Param],
) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>> {
    for p in params {
        q = match p {
            Param::Text(s) => q.bind(s.as_str()),
            Param::Int(n) => q.bind(*n),
        };
    }
    q
}

/// Up to `limit` entries of a queue after `after` (team not filled in).
pub async fn page(
    conn: &mut AnyConnection,
    queue: Queue,
    f: &QueueFilter,
    today: &str,
    horizon: &str,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<Vec<QueueEntry>, sqlx::Error> {
    let sql = queue_sql(queue, f, today, horizon, after, limit);
    let rows: Vec<QueueRow> = bind_all(sqlx::query_as(&sql.text), &sql.params)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(|r| decode(queue, r, today)).collect()
}

/// The number of entries of each queue with these filters.
pub async fn counts(
    conn: &mut AnyConnection,
    f: &QueueFilter,
    today: &str,
    horizon: &str,
) -> Result<Vec<(Queue, i64)>, sqlx::Error> {
    let mut out = Vec::new();
    for q in Queue::ALL {
        let sql = count_sql(q, f, today, horizon);
        let (n,): (i64,) = bind_all(sqlx::query_as(&sql.text), &sql.params)
            .fetch_one(&mut *conn)
            .await?;
        out.push((q, n));
    }
    Ok(out)
}

/// The query plan of a statement, one line per step (SQLite `EXPLAIN QUERY PLAN` details,
/// PostgreSQL `EXPLAIN` lines), for the index checks.
pub async fn explain(conn: &mut AnyConnection, sql: &Sql) -> Result<Vec<String>, sqlx::Error> {
    match backend_of(conn) {
        super::Backend::Sqlite => {
            let rows: Vec<(i64, i64, i64, String)> = bind_all(
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {}", sql.text)),
                &sql.params,
            )
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows.into_iter().map(|r| r.3).collect())
        }
        super::Backend::Postgres => {
            let rows: Vec<(String,)> = bind_all(
                sqlx::query_as(&format!("EXPLAIN {}", sql.text)),
                &sql.params,
            )
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        }
    }
}

/// The latest inspection of a task, as the task list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskResult {
    pub task_id: String,
    pub inspection_id: String,
    pub review_state: Option<ReviewState>,
    pub computed_result: Option<ResultCode>,
    pub override_result: Option<ResultCode>,
}

/// The latest inspection (by creation) of each task, in one indexed query per 500 tasks.
pub async fn task_results(
    conn: &mut AnyConnection,
    task_ids: &[String],
) -> Result<Vec<TaskResult>, sqlx::Error> {
    let backend = backend_of(conn);
    let mut out = Vec::new();
    for chunk in task_ids.chunks(500) {
        let list = super::placeholders(backend, 1, chunk.len());
        let sql = format!(
            "SELECT i.task_id, i.id, i.review_state, i.computed_result, i.override_result, i.created_at \
             FROM inspections i WHERE i.task_id IN {list} ORDER BY i.task_id, i.created_at DESC, i.id DESC"
        );
        let mut q = sqlx::query_as::<
            _,
            (
                String,
                String,
                Option<String>,
                Option<String>,
                Option<String>,
                i64,
            ),
        >(&sql);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        let mut last: Option<String> = None;
        for (task, id, state, computed, overridden, _) in q.fetch_all(&mut *conn).await? {
            if last.as_deref() == Some(task.as_str()) {
                continue;
            }
            last = Some(task.clone());
            out.push(TaskResult {
                task_id: task,
                inspection_id: id,
                review_state: state
                    .map(|s| ReviewState::parse(&s).ok_or_else(|| decode_err("review_state", &s)))
                    .transpose()?,
                computed_result: result("computed_result", computed)?,
                override_result: result("override_result", overridden)?,
            });
        }
    }
    Ok(out)
}
