//! SQL of the sync protocol: the change counter, scoped pulls, and the writes of a push.

use sqlx::{AnyConnection, FromRow};

use super::{backend_of, now_ms, placeholders, Backend};
use crate::plan::TaskState;
use crate::sync::push::{AnswerRec, InspectionRec, PhotoRec};

/// The sequence number of the calling write transaction's changes.
///
/// SQLite: bumps the change counter (one writer at a time, so commits follow the counter).
/// PostgreSQL: the transaction's top-level id plus the `sync_xid_offset` (migration 0037), with
/// no lock at all: several calls in one transaction return the same number, and the pull's
/// cursor comes from snapshot visibility ([`safe_cursor`]), not from commit order.
pub async fn next_seq(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    let sql = match backend_of(conn) {
        Backend::Sqlite => "UPDATE sync_counter SET value = value + 1 WHERE id = 1 RETURNING value",
        Backend::Postgres => {
            "SELECT pg_current_xact_id()::text::bigint + value FROM sync_xid_offset WHERE id = 1"
        }
    };
    let (v,): (i64,) = sqlx::query_as(sql).fetch_one(conn).await?;
    Ok(v)
}

/// The SQLite counter's value (the position of the last committed change).
pub async fn current_seq(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    let (v,): (i64,) = sqlx::query_as("SELECT value FROM sync_counter WHERE id = 1")
        .fetch_one(conn)
        .await?;
    Ok(v)
}

/// A pull's positions, read in its snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Every change with a position at or below it is complete in the snapshot (committed and
    /// visible, or rolled back), and no change will ever commit at or below it later: the pull
    /// answers the changes in `(since, safe]` and gives out `safe`.
    pub safe: i64,
    /// No cursor above it was ever given out (the positions of transactions that had not
    /// started when the snapshot was taken are above it).
    pub horizon: i64,
    /// `safe` is held back by a transaction with no backend left to name its database: it
    /// ended between the snapshot and the read of `pg_stat_activity` (or its backend is not
    /// readable). It counts as ours, which is safe, but a new snapshot would not hold it.
    pub held_by_unknown: bool,
}

/// The in-progress transaction ids that may be ours: the snapshot's `xip` minus the ids known
/// to run in another database of the cluster (`pg_stat_activity`; an unknown or unreadable
/// backend counts as ours). `xip` is `xid8`, `backend_xid` the 32-bit `xid`: in-progress ids are
/// never 2^31 apart, so their low 32 bits name them.
const BLOCKING_XIP: &str =
    "SELECT x.xid::text::bigint AS xid FROM pg_snapshot_xip(s.snap) AS x(xid) \
     WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.backend_xid = x.xid::xid \
     AND a.datid <> (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))";

/// The pull's cursor, read as the first statement of its snapshot transaction (REPEATABLE
/// READ on PostgreSQL, a read transaction on SQLite).
///
/// SQLite: the counter. PostgreSQL: with S the snapshot, every transaction whose id is below
/// the lowest blocking in-progress id of S is complete in S, so `safe` = that id (or, with none,
/// `xmax(S)`) − 1 + offset, and `horizon` = `xmax(S)` − 1 + offset.
pub async fn safe_cursor(conn: &mut AnyConnection) -> Result<Cursor, sqlx::Error> {
    match backend_of(conn) {
        Backend::Sqlite => {
            let v = current_seq(conn).await?;
            Ok(Cursor {
                safe: v,
                horizon: v,
                held_by_unknown: false,
            })
        }
        Backend::Postgres => {
            let (xmax, blocking, offset, unknown): (i64, Option<i64>, i64, bool) =
                sqlx::query_as(&format!(
                    "WITH s AS (SELECT pg_current_snapshot() AS snap) \
                     SELECT t.xmax, t.blocking, t.off, (t.blocking IS NOT NULL AND NOT EXISTS \
                            (SELECT 1 FROM pg_stat_activity a \
                             WHERE a.backend_xid = (t.blocking % 4294967296)::text::xid)) \
                     FROM (SELECT pg_snapshot_xmax(s.snap)::text::bigint AS xmax, \
                                  (SELECT MIN(b.xid) FROM ({BLOCKING_XIP}) b) AS blocking, \
                                  (SELECT o.value FROM sync_xid_offset o WHERE o.id = 1) AS off \
                           FROM s) t"
                ))
                .fetch_one(conn)
                .await?;
            Ok(Cursor {
                safe: blocking.unwrap_or(xmax) - 1 + offset,
                horizon: xmax - 1 + offset,
                held_by_unknown: unknown,
            })
        }
    }
}

/// How long a pull waits at most for the writes that were in progress when it began.
const FRESH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Called before a pull takes its snapshot, outside any transaction: waits until every
/// transaction of ours that was in progress when the pull began has ended, so the pull's
/// `safe` cursor covers every change committed before it began. Polls every millisecond (each
/// poll its own statement, so `pg_stat_activity` is read afresh) for at most [`FRESH_WAIT`],
/// then goes on: the cursor is then merely older, never unsafe. A no-op on SQLite.
pub async fn wait_fresh(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    if backend_of(conn) == Backend::Sqlite {
        return Ok(());
    }
    let (began, mut waiting): (i64, i64) = sqlx::query_as(&format!(
        "WITH s AS (SELECT pg_current_snapshot() AS snap) \
         SELECT pg_snapshot_xmax(s.snap)::text::bigint, \
                (SELECT COUNT(*) FROM ({BLOCKING_XIP}) b) FROM s"
    ))
    .fetch_one(&mut *conn)
    .await?;
    let deadline = std::time::Instant::now() + FRESH_WAIT;
    while waiting > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        (waiting,) = sqlx::query_as(&format!(
            "WITH s AS (SELECT pg_current_snapshot() AS snap) \
             SELECT (SELECT COUNT(*) FROM ({BLOCKING_XIP}) b WHERE b.xid < $1) FROM s"
        ))
        .bind(began)
        .fetch_one(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Every stored sync position (the synced tables' position columns).
const STORED_POSITIONS: &str = "SELECT GREATEST( \
    (SELECT value FROM sync_counter WHERE id = 1), (SELECT tombstones_purged_through FROM sync_state WHERE id = 1), \
    (SELECT MAX(seq) FROM tasks), (SELECT MAX(seq) FROM establishments), (SELECT MAX(added_seq) FROM task_members), \
    (SELECT MAX(seq) FROM task_member_removals), (SELECT MAX(seq) FROM inspections), (SELECT MAX(seq) FROM answers), \
    (SELECT MAX(seq) FROM photos), (SELECT MAX(seq) FROM reviews), (SELECT MAX(seq) FROM sync_tombstones), \
    (SELECT MAX(seq) FROM sampling_tasks), (SELECT MAX(added_seq) FROM sampling_task_members), \
    (SELECT MAX(seq) FROM sampling_task_member_removals), (SELECT MAX(seq) FROM samples), \
    (SELECT MAX(seq) FROM custody_events), (SELECT MAX(seq) FROM sample_attachments), 0)";

/// PostgreSQL, at startup (after the migrations): makes the next transaction's position exceed
/// every stored one. Transaction ids only grow within a cluster, but a dump restored into
/// another cluster may start from lower ones; the offset is then raised (never lowered), under
/// an exclusive lock on it so no transaction takes a position from the old offset meanwhile.
pub async fn ensure_xid_offset(conn: &mut AnyConnection) -> Result<bool, sqlx::Error> {
    if backend_of(conn) == Backend::Sqlite {
        return Ok(false);
    }
    let check = format!(
        "SELECT ({STORED_POSITIONS}) >= pg_snapshot_xmax(pg_current_snapshot())::text::bigint + \
         (SELECT value FROM sync_xid_offset WHERE id = 1)"
    );
    let (behind,): (bool,) = sqlx::query_as(&check).fetch_one(&mut *conn).await?;
    if !behind {
        return Ok(false);
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("LOCK TABLE sync_xid_offset IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "UPDATE sync_xid_offset SET value = GREATEST(value, ({STORED_POSITIONS}) - pg_current_xact_id()::text::bigint + 1) \
         WHERE id = 1"
    ))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Locks, for the rest of the write transaction, the rows of `table` (`tasks`, `sampling_tasks`,
/// `samples`) named by `ids`, in one global order (byte order of the id), so two transactions
/// locking overlapping sets never deadlock. What a use case decides about a task (a push's
/// conflict check, a review, a team change) stays true until it commits. Ids without a row lock
/// nothing. A no-op on SQLite, where one writer at a time already serialises everything.
pub async fn lock_rows(
    conn: &mut AnyConnection,
    table: &'static str,
    ids: &[String],
) -> Result<(), sqlx::Error> {
    if backend_of(conn) == Backend::Sqlite || ids.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id FROM {table} WHERE id IN {} ORDER BY id COLLATE \"C\" FOR NO KEY UPDATE",
            placeholders(Backend::Postgres, 1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (String,)>(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        q.fetch_all(&mut *conn).await?;
    }
    Ok(())
}

/// Locks `ids` of `kind` (a name space such as `sample`) for the rest of the write transaction
/// with transaction-scoped advisory locks on a hash of `kind:id`, in byte order of the id: also
/// for ids without a row yet, so two concurrent creates of one new id run one after the other
/// (the second then finds the first's row). A hash collision only makes two writers wait for
/// each other. A no-op on SQLite.
pub async fn lock_keys(
    conn: &mut AnyConnection,
    kind: &'static str,
    ids: &[String],
) -> Result<(), sqlx::Error> {
    if backend_of(conn) == Backend::Sqlite {
        return Ok(());
    }
    let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("{kind}:{id}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// [`lock_rows`] on the task of photo `photo_id` (a photo's inspection, and so its task, never
/// changes): a photo's upload or processing status waits for a push deciding on the photo.
pub async fn lock_task_of_photo(
    conn: &mut AnyConnection,
    photo_id: &str,
) -> Result<(), sqlx::Error> {
    if backend_of(conn) == Backend::Sqlite {
        return Ok(());
    }
    sqlx::query_as::<_, (String,)>(
        "SELECT t.id FROM photos p JOIN inspections i ON i.id = p.inspection_id JOIN tasks t ON t.id = i.task_id \
         WHERE p.id = $1 FOR NO KEY UPDATE OF t",
    )
    .bind(photo_id)
    .fetch_all(conn)
    .await?;
    Ok(())
}

/// [`lock_keys`] on the sample of attachment `id` (an attachment never changes sample).
pub async fn lock_sample_of_attachment(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<(), sqlx::Error> {
    if backend_of(conn) == Backend::Sqlite {
        return Ok(());
    }
    let sample: Option<(String,)> =
        sqlx::query_as("SELECT sample_id FROM sample_attachments WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some((sample,)) = sample {
        lock_keys(conn, "sample", &[sample]).await?;
    }
    Ok(())
}

/// [`lock_rows`] on every task of draw `draw_id` in `table` (`tasks` or `sampling_tasks`): a
/// redraw that cancels them, or decides from their samples, waits for the writers deciding on
/// them. Same order as [`lock_rows`].
pub async fn lock_tasks_of_draw(
    conn: &mut AnyConnection,
    table: &'static str,
    draw_id: &str,
) -> Result<(), sqlx::Error> {
    if backend_of(conn) == Backend::Sqlite {
        return Ok(());
    }
    sqlx::query_as::<_, (String,)>(&format!(
        "SELECT id FROM {table} WHERE draw_id = $1 ORDER BY id COLLATE \"C\" FOR NO KEY UPDATE"
    ))
    .bind(draw_id)
    .fetch_all(conn)
    .await?;
    Ok(())
}

/// [`lock_rows`] on the task of inspection `inspection_id` (an inspection never changes task).
pub async fn lock_task_of_inspection(
    conn: &mut AnyConnection,
    inspection_id: &str,
) -> Result<(), sqlx::Error> {
    if backend_of(conn) == Backend::Sqlite {
        return Ok(());
    }
    sqlx::query_as::<_, (String,)>(
        "SELECT t.id FROM inspections i JOIN tasks t ON t.id = i.task_id WHERE i.id = $1 FOR NO KEY UPDATE OF t",
    )
    .bind(inspection_id)
    .fetch_all(conn)
    .await?;
    Ok(())
}

/// [`lock_rows`] on inspection tasks.
pub async fn lock_tasks(conn: &mut AnyConnection, ids: &[String]) -> Result<(), sqlx::Error> {
    lock_rows(conn, "tasks", ids).await
}

pub async fn purged_through(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    let (v,): (i64,) =
        sqlx::query_as("SELECT tombstones_purged_through FROM sync_state WHERE id = 1")
            .fetch_one(conn)
            .await?;
    Ok(v)
}

/// Deletes tombstones older than `before_ms` and records the highest sequence purged, so
/// cursors from before it get a full replacement.
pub async fn purge_tombstones(
    conn: &mut AnyConnection,
    before_ms: i64,
) -> Result<u64, sqlx::Error> {
    let (max,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(seq) FROM sync_tombstones WHERE deleted_at < $1")
            .bind(before_ms)
            .fetch_one(&mut *conn)
            .await?;
    // Team removals are deletions for the removed user's devices: purged alike.
    let (max_removal,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(seq) FROM task_member_removals WHERE removed_at < $1")
            .bind(before_ms)
            .fetch_one(&mut *conn)
            .await?;
    let Some(max) = max.into_iter().chain(max_removal).max() else {
        return Ok(0);
    };
    let n = sqlx::query("DELETE FROM sync_tombstones WHERE seq <= $1")
        .bind(max)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM task_member_removals WHERE seq <= $1")
        .bind(max)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE sync_state SET tombstones_purged_through = $1 WHERE id = 1 AND tombstones_purged_through < $1")
        .bind(max)
        .execute(&mut *conn)
        .await?;
    Ok(n)
}

// ---- Pull reads ------------------------------------------------------------------------------
//
// A device's scope is its user's task memberships: a task's records reach it when they change
// after its cursor, or when the user joined the task after it (`added_seq`: then every record of
// the task is new to the device, however old).
//
// Every pull read is bounded by that scope before it touches a big table: first the user's
// memberships (by index, a row per task), then each table for a chunk of explicit task ids, and
// answers, photos and reviews for explicit inspection ids. No statement joins the memberships to
// the synced tables, so no plan depends on the planner's statistics (with stale ones, one such
// join became a hash join over every answer in the database, for a device with 70 of them).

/// A change window: the rows whose position (`seq`) is in `(since, upto]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: i64,
    pub upto: i64,
}

/// `($first, …, $first+n-1)`: numbered parameters, which both backends take.
fn numbered(first: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 5 + 2);
    s.push('(');
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('$');
        s.push_str(&(first + i).to_string());
    }
    s.push(')');
    s
}

/// `{select} WHERE {column} IN (ids) [AND the window on any of `seq_columns`] {tail}`, for one
/// chunk of ids (the caller keeps chunks small: a few hundred ids). With `window` `None`, every
/// row of the ids.
pub(crate) async fn select_in<T>(
    conn: &mut AnyConnection,
    select: &str,
    column: &str,
    ids: &[&str],
    window: Option<(&[&str], Window)>,
    tail: &str,
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let n = ids.len();
    let mut sql = format!("{select} WHERE {column} IN {}", numbered(1, n));
    if let Some((columns, _)) = window {
        let (a, b) = (n + 1, n + 2);
        let any = columns
            .iter()
            .map(|c| format!("({c} > ${a} AND {c} <= ${b})"))
            .collect::<Vec<_>>()
            .join(" OR ");
        sql.push_str(&format!(" AND ({any})"));
    }
    if !tail.is_empty() {
        sql.push(' ');
        sql.push_str(tail);
    }
    let mut q = sqlx::query_as::<_, T>(&sql);
    for id in ids {
        q = q.bind(*id);
    }
    if let Some((_, w)) = window {
        q = q.bind(w.since).bind(w.upto);
    }
    q.fetch_all(conn).await
}

/// The user's task memberships: (task id, `added_seq`). A row per task of theirs, by index.
pub async fn memberships(
    conn: &mut AnyConnection,
    user: &str,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT task_id, added_seq FROM task_members WHERE inspector_id = $1")
        .bind(user)
        .fetch_all(conn)
        .await
}

#[derive(Debug, FromRow)]
pub struct TaskSync {
    pub id: String,
    pub plan_id: String,
    pub establishment_id: String,
    pub template_id: String,
    pub template_version: i64,
    pub due_date: String,
    pub state: String,
    pub must_check_items: String,
    pub round_title: String,
    /// `inspection` or `recheck`.
    pub kind: String,
    pub created_seq: i64,
}

/// Tasks `ids` (changed in `window`, or all of them).
pub async fn tasks_for_pull(
    conn: &mut AnyConnection,
    ids: &[&str],
    window: Option<Window>,
) -> Result<Vec<TaskSync>, sqlx::Error> {
    select_in(
        conn,
        "SELECT t.id, t.plan_id, t.establishment_id, t.template_id, t.template_version, t.due_date, t.state, \
         t.must_check_items, p.round_title, t.kind, t.created_seq FROM tasks t JOIN plans p ON p.id = t.plan_id",
        "t.id",
        ids,
        window.map(|w| (&["t.seq"][..], w)),
        "",
    )
    .await
}

/// What a task's scope brings along: (task id, establishment id, template id, template version).
pub async fn task_refs(
    conn: &mut AnyConnection,
    ids: &[&str],
) -> Result<Vec<(String, String, String, i64)>, sqlx::Error> {
    select_in(
        conn,
        "SELECT t.id, t.establishment_id, t.template_id, t.template_version FROM tasks t",
        "t.id",
        ids,
        None,
        "",
    )
    .await
}

#[derive(Debug, FromRow)]
pub struct EstablishmentSync {
    pub id: String,
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

/// Establishments `ids` (changed in `window`, or all of them).
pub async fn establishments_for_pull(
    conn: &mut AnyConnection,
    ids: &[&str],
    window: Option<Window>,
) -> Result<Vec<EstablishmentSync>, sqlx::Error> {
    select_in(
        conn,
        "SELECT e.id, e.sign_name, e.licensed_name, e.address, e.town, e.category, e.risk_grade, e.raw_lng, \
         e.raw_lat, e.crs FROM establishments e",
        "e.id",
        ids,
        window.map(|w| (&["e.seq"][..], w)),
        "",
    )
    .await
}

#[derive(Debug, FromRow)]
pub struct VersionSync {
    pub template_id: String,
    pub version: i64,
    pub title: String,
    pub content: String,
}

/// Checklist versions (immutable) by (template id, version).
pub async fn versions_for_pull(
    conn: &mut AnyConnection,
    keys: &[(&str, i64)],
) -> Result<Vec<VersionSync>, sqlx::Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let any = (0..keys.len())
        .map(|i| {
            format!(
                "(v.template_id = ${} AND v.version = ${})",
                2 * i + 1,
                2 * i + 2
            )
        })
        .collect::<Vec<_>>()
        .join(" OR ");
    let sql = format!(
        "SELECT v.template_id, v.version, v.title, v.content FROM checklist_versions v WHERE {any}"
    );
    let mut q = sqlx::query_as::<_, VersionSync>(&sql);
    for (t, v) in keys {
        q = q.bind(*t).bind(*v);
    }
    q.fetch_all(conn).await
}

/// The inspections of tasks `task_ids`: (inspection id, task id).
pub async fn inspection_ids_of(
    conn: &mut AnyConnection,
    task_ids: &[&str],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    select_in(
        conn,
        "SELECT i.id, i.task_id FROM inspections i",
        "i.task_id",
        task_ids,
        None,
        "",
    )
    .await
}

/// The inspections of tasks `task_ids` (changed in `window`, or all of them).
pub async fn inspections_for_pull(
    conn: &mut AnyConnection,
    task_ids: &[&str],
    window: Option<Window>,
) -> Result<Vec<InspectionRow>, sqlx::Error> {
    select_in(
        conn,
        &format!("SELECT {INSPECTION_COLUMNS} FROM inspections i"),
        "i.task_id",
        task_ids,
        window.map(|w| (&["i.seq"][..], w)),
        "",
    )
    .await
}

/// The answers of inspections `inspection_ids` (changed in `window`, or all of them).
pub async fn answers_for_pull(
    conn: &mut AnyConnection,
    inspection_ids: &[&str],
    window: Option<Window>,
) -> Result<Vec<AnswerRow>, sqlx::Error> {
    select_in(
        conn,
        &format!("SELECT {ANSWER_COLUMNS} FROM answers a"),
        "a.inspection_id",
        inspection_ids,
        window.map(|w| (&["a.seq"][..], w)),
        "",
    )
    .await
}

/// The photos of inspections `inspection_ids` (changed in `window`, or all of them).
pub async fn photos_for_pull(
    conn: &mut AnyConnection,
    inspection_ids: &[&str],
    window: Option<Window>,
) -> Result<Vec<PhotoRow>, sqlx::Error> {
    select_in(
        conn,
        &format!("SELECT {PHOTO_COLUMNS} FROM photos p"),
        "p.inspection_id",
        inspection_ids,
        window.map(|w| (&["p.seq"][..], w)),
        "",
    )
    .await
}

/// The ids of the records of `table` (`answers`, `photos` or `reviews`) of inspections
/// `inspection_ids`.
pub async fn child_ids_of(
    conn: &mut AnyConnection,
    table: &'static str,
    inspection_ids: &[&str],
) -> Result<Vec<(String,)>, sqlx::Error> {
    // `table` is one of three fixed names, never the client's.
    select_in(
        conn,
        &format!("SELECT c.id FROM {table} c"),
        "c.inspection_id",
        inspection_ids,
        None,
        "",
    )
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct InspectionRow {
    pub id: String,
    pub task_id: String,
    pub establishment_id: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub lng: Option<f64>,
    pub lat: Option<f64>,
    pub gps_accuracy_m: Option<f64>,
    pub crs: Option<String>,
    pub team: String,
    pub representative_name: Option<String>,
    pub representative_signed: i64,
    pub representative_refused: i64,
    pub business_opinion: Option<String>,
    pub other_findings: Option<String>,
    pub declared_result: Option<String>,
    pub submitted: i64,
    pub computed_result: Option<String>,
    pub review_state: Option<String>,
    pub server_flags: Option<String>,
    pub review_round: i64,
    pub override_result: Option<String>,
    pub override_reason: Option<String>,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<i64>,
    pub submitted_at: Option<i64>,
    pub created_by: String,
    pub origin_device: Option<String>,
    pub created_seq: i64,
    pub seq: i64,
}

const INSPECTION_COLUMNS: &str = "i.id, i.task_id, i.establishment_id, i.started_at, i.finished_at, i.lng, i.lat, \
    i.gps_accuracy_m, i.crs, i.team, i.representative_name, i.representative_signed, i.representative_refused, \
    i.business_opinion, i.other_findings, i.declared_result, i.submitted, i.computed_result, i.review_state, \
    i.server_flags, i.review_round, i.override_result, i.override_reason, i.reviewed_by, i.reviewed_at, \
    i.submitted_at, i.created_by, i.origin_device, i.created_seq, i.seq";

impl InspectionRow {
    /// The record as the device wrote it, to tell a replay from a change.
    pub fn as_rec(&self) -> InspectionRec {
        InspectionRec {
            id: self.id.clone(),
            task_id: self.task_id.clone(),
            establishment_id: self.establishment_id.clone(),
            started_at: self.started_at,
            finished_at: self.finished_at,
            lng: self.lng,
            lat: self.lat,
            gps_accuracy_m: self.gps_accuracy_m,
            crs: self.crs.clone(),
            team: self.team.clone(),
            representative_name: self.representative_name.clone(),
            representative_signed: self.representative_signed != 0,
            representative_refused: self.representative_refused != 0,
            business_opinion: self.business_opinion.clone(),
            other_findings: self.other_findings.clone(),
            declared_result: self.declared_result.clone(),
            submitted: self.submitted != 0,
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct AnswerRow {
    pub id: String,
    pub inspection_id: String,
    pub item_code: String,
    pub status: String,
    pub note: Option<String>,
    pub origin_device: Option<String>,
    pub created_seq: i64,
    pub seq: i64,
}

impl AnswerRow {
    pub fn as_rec(&self) -> AnswerRec {
        AnswerRec {
            id: self.id.clone(),
            inspection_id: self.inspection_id.clone(),
            item_code: self.item_code.clone(),
            status: self.status.clone(),
            note: self.note.clone(),
        }
    }
}

const ANSWER_COLUMNS: &str =
    "a.id, a.inspection_id, a.item_code, a.status, a.note, a.origin_device, a.created_seq, a.seq";

#[derive(Debug, Clone, FromRow)]
pub struct PhotoRow {
    pub id: String,
    pub inspection_id: String,
    pub item_code: Option<String>,
    pub sha256: String,
    pub byte_size: i64,
    pub taken_at: i64,
    pub processing_status: String,
    pub origin_device: Option<String>,
    pub created_seq: i64,
    pub seq: i64,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub exif_taken_at: Option<i64>,
    pub exif_lng: Option<f64>,
    pub exif_lat: Option<f64>,
    pub flags: Option<String>,
    pub processing_error: Option<String>,
}

impl PhotoRow {
    pub fn as_rec(&self) -> PhotoRec {
        PhotoRec {
            id: self.id.clone(),
            inspection_id: self.inspection_id.clone(),
            item_code: self.item_code.clone(),
            sha256: self.sha256.clone(),
            byte_size: self.byte_size,
            taken_at: self.taken_at,
        }
    }
}

const PHOTO_COLUMNS: &str =
    "p.id, p.inspection_id, p.item_code, p.sha256, p.byte_size, p.taken_at, p.processing_status, \
    p.origin_device, p.created_seq, p.seq, p.width, p.height, p.exif_taken_at, p.exif_lng, p.exif_lat, p.flags, p.processing_error";

/// A review decision as the team's devices get it (never the internal note).
#[derive(Debug, Clone, FromRow)]
pub struct ReviewSync {
    pub id: String,
    pub inspection_id: String,
    pub round: i64,
    pub decision: String,
    pub comment: Option<String>,
    pub item_comments: String,
    pub override_result: Option<String>,
    pub override_reason: Option<String>,
    pub decided_at: i64,
    pub reviewer_name: String,
    pub created_seq: i64,
}

/// The decisions on inspections `inspection_ids` (recorded in `window`, or all of them).
pub async fn reviews_for_pull(
    conn: &mut AnyConnection,
    inspection_ids: &[&str],
    window: Option<Window>,
) -> Result<Vec<ReviewSync>, sqlx::Error> {
    select_in(
        conn,
        "SELECT r.id, r.inspection_id, r.round, r.decision, r.comment, r.item_comments, r.override_result, \
         r.override_reason, r.decided_at, u.name AS reviewer_name, r.created_seq \
         FROM reviews r JOIN users u ON u.id = r.reviewer_id",
        "r.inspection_id",
        inspection_ids,
        window.map(|w| (&["r.seq"][..], w)),
        "",
    )
    .await
}

/// Deletions in `window` of records of tasks `task_ids`, except those device `origin` made
/// itself: (table, record id).
pub async fn tombstones_for_pull(
    conn: &mut AnyConnection,
    task_ids: &[&str],
    window: Window,
    origin: Option<&str>,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    if task_ids.is_empty() {
        return Ok(Vec::new());
    }
    let n = task_ids.len();
    let sql = format!(
        "SELECT table_name, record_id FROM sync_tombstones WHERE task_id IN {} AND seq > ${} AND seq <= ${} \
         AND (deleted_by IS NULL OR ${c} IS NULL OR deleted_by <> ${c})",
        numbered(1, n),
        n + 1,
        n + 2,
        c = n + 3
    );
    let mut q = sqlx::query_as::<_, (String, String)>(&sql);
    for id in task_ids {
        q = q.bind(*id);
    }
    q.bind(window.since)
        .bind(window.upto)
        .bind(origin)
        .fetch_all(conn)
        .await
}

/// The tasks the user was taken off in `window` (some may be theirs again: the caller checks
/// the memberships). By index, a row per removal.
pub async fn removals_for_pull(
    conn: &mut AnyConnection,
    user: &str,
    window: Window,
) -> Result<Vec<(String,)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT task_id FROM task_member_removals WHERE inspector_id = $1 AND seq > $2 AND seq <= $3",
    )
    .bind(user)
    .bind(window.since)
    .bind(window.upto)
    .fetch_all(conn)
    .await
}

/// Takes `removed` off the task's team and puts `added` on it at change `seq`, with the team's
/// order as given. A removal is remembered for the removed user's devices (see
/// the pull); rejoining forgets it.
pub async fn change_team(
    conn: &mut AnyConnection,
    task_id: &str,
    team: &[String],
    added: &[String],
    removed: &[String],
    seq: i64,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    for user in removed {
        sqlx::query("DELETE FROM task_members WHERE task_id = $1 AND inspector_id = $2")
            .bind(task_id)
            .bind(user.as_str())
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO task_member_removals (task_id, inspector_id, seq, removed_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (task_id, inspector_id) DO UPDATE SET seq = excluded.seq, removed_at = excluded.removed_at",
        )
        .bind(task_id)
        .bind(user.as_str())
        .bind(seq)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    for user in added {
        sqlx::query("DELETE FROM task_member_removals WHERE task_id = $1 AND inspector_id = $2")
            .bind(task_id)
            .bind(user.as_str())
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO task_members (task_id, inspector_id, position, added_seq) VALUES ($1, $2, 0, $3)",
        )
        .bind(task_id)
        .bind(user.as_str())
        .bind(seq)
        .execute(&mut *conn)
        .await?;
    }
    for (i, user) in team.iter().enumerate() {
        sqlx::query(
            "UPDATE task_members SET position = $1 WHERE task_id = $2 AND inspector_id = $3",
        )
        .bind(i as i64)
        .bind(task_id)
        .bind(user.as_str())
        .execute(&mut *conn)
        .await?;
    }
    // Members who stay see the new team on the task.
    sqlx::query("UPDATE tasks SET seq = $1, updated_at = $2 WHERE id = $3")
        .bind(seq)
        .bind(now)
        .bind(task_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What a push needs to know about a task.
#[derive(Debug, Clone, FromRow)]
pub struct TaskInfo {
    pub id: String,
    pub establishment_id: String,
    pub state: String,
    pub template_id: String,
    pub template_version: i64,
    pub is_member: i64,
}

pub async fn tasks_info(
    conn: &mut AnyConnection,
    user: &str,
    ids: &[String],
) -> Result<Vec<TaskInfo>, sqlx::Error> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let list = (0..chunk.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT t.id, t.establishment_id, t.state, t.template_id, t.template_version, \
             CASE WHEN EXISTS (SELECT 1 FROM task_members tm WHERE tm.task_id = t.id AND tm.inspector_id = $1) THEN 1 ELSE 0 END AS is_member \
             FROM tasks t WHERE t.id IN ({list})"
        );
        let mut q = sqlx::query_as::<_, TaskInfo>(&sql).bind(user);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

async fn by_ids<T>(
    conn: &mut AnyConnection,
    select: &str,
    column: &str,
    ids: &[String],
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let mut out = Vec::new();
    let backend = backend_of(conn);
    for chunk in ids.chunks(500) {
        let sql = format!(
            "{select} WHERE {column} IN {}",
            placeholders(backend, 1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, T>(&sql);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// The tasks of the stored inspections `inspection_ids` and of the inspections of the stored
/// answers `answer_ids` and photos `photo_ids`: what a push locks before it reads.
pub async fn tasks_of_records(
    conn: &mut AnyConnection,
    inspection_ids: &[String],
    answer_ids: &[String],
    photo_ids: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    let out: Vec<(String,)> = by_ids_union(
        conn,
        &[
            (
                "SELECT i.task_id FROM inspections i",
                "i.id",
                inspection_ids,
            ),
            (
                "SELECT i.task_id FROM answers a JOIN inspections i ON i.id = a.inspection_id",
                "a.id",
                answer_ids,
            ),
            (
                "SELECT i.task_id FROM photos p JOIN inspections i ON i.id = p.inspection_id",
                "p.id",
                photo_ids,
            ),
        ],
    )
    .await?;
    Ok(out.into_iter().map(|(t,)| t).collect())
}

/// Several `{select} WHERE {column} IN (ids)` parts with one row type, joined by `UNION ALL`
/// into as few statements as [`MAX_BINDS`] allow: a push's reads are round trips, and each one
/// costs more (a wake-up of SQLite's worker thread, or a PostgreSQL round trip) than the rows.
async fn by_ids_union<T>(
    conn: &mut AnyConnection,
    parts: &[(&str, &str, &[String])],
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let mut out = Vec::new();
    for statement in union_statements(parts, MAX_BINDS) {
        let mut sql = String::new();
        let mut n = 0;
        for (part, ids) in &statement {
            let (select, column, _) = parts[*part];
            if !sql.is_empty() {
                sql.push_str(" UNION ALL ");
            }
            sql.push_str(&format!(
                "{select} WHERE {column} IN {}",
                numbered(n + 1, ids.len())
            ));
            n += ids.len();
        }
        let mut q = sqlx::query_as::<_, T>(&sql);
        for (_, ids) in &statement {
            for id in *ids {
                q = q.bind(id.as_str());
            }
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// Ids bound in one statement at most.
const MAX_BINDS: usize = 500;

/// Splits the parts' ids into statements of at most `max` ids, in order: each statement is a
/// list of (part index, slice of that part's ids); empty parts are left out.
fn union_statements<'a>(
    parts: &[(&str, &str, &'a [String])],
    max: usize,
) -> Vec<Vec<(usize, &'a [String])>> {
    let mut out: Vec<Vec<(usize, &'a [String])>> = Vec::new();
    let mut current = Vec::new();
    let mut room = max;
    for (k, (_, _, ids)) in parts.iter().enumerate() {
        let mut rest: &'a [String] = ids;
        while !rest.is_empty() {
            let (take, left) = rest.split_at(rest.len().min(room));
            current.push((k, take));
            room -= take.len();
            rest = left;
            if room == 0 {
                out.push(std::mem::take(&mut current));
                room = max;
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

pub async fn inspections_by_ids(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<Vec<InspectionRow>, sqlx::Error> {
    by_ids(
        conn,
        &format!("SELECT {INSPECTION_COLUMNS} FROM inspections i"),
        "i.id",
        ids,
    )
    .await
}

pub async fn answers_by_ids(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<Vec<AnswerRow>, sqlx::Error> {
    by_ids(
        conn,
        &format!("SELECT {ANSWER_COLUMNS} FROM answers a"),
        "a.id",
        ids,
    )
    .await
}

pub async fn answers_of(
    conn: &mut AnyConnection,
    inspection_ids: &[String],
) -> Result<Vec<AnswerRow>, sqlx::Error> {
    by_ids(
        conn,
        &format!("SELECT {ANSWER_COLUMNS} FROM answers a"),
        "a.inspection_id",
        inspection_ids,
    )
    .await
}

pub async fn photos_by_ids(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<Vec<PhotoRow>, sqlx::Error> {
    by_ids(
        conn,
        &format!("SELECT {PHOTO_COLUMNS} FROM photos p"),
        "p.id",
        ids,
    )
    .await
}

pub async fn photos_of(
    conn: &mut AnyConnection,
    inspection_ids: &[String],
) -> Result<Vec<PhotoRow>, sqlx::Error> {
    by_ids(
        conn,
        &format!("SELECT {PHOTO_COLUMNS} FROM photos p"),
        "p.inspection_id",
        inspection_ids,
    )
    .await
}

/// Who wrote a change.
pub struct Author<'a> {
    pub user_id: &'a str,
    pub device_id: Option<&'a str>,
    pub seq: i64,
}

pub async fn upsert_inspection(
    conn: &mut AnyConnection,
    r: &InspectionRec,
    wgs84: Option<(f64, f64)>,
    by: &Author<'_>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO inspections (id, task_id, establishment_id, started_at, finished_at, lng, lat, gps_accuracy_m, crs, \
         wgs84_lng, wgs84_lat, team, representative_name, representative_signed, representative_refused, business_opinion, \
         other_findings, declared_result, submitted, created_by, origin_device, created_seq, seq, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,0,$19,$20,$21,$21,$22,$22) \
         ON CONFLICT (id) DO UPDATE SET task_id = excluded.task_id, establishment_id = excluded.establishment_id, \
         started_at = excluded.started_at, finished_at = excluded.finished_at, lng = excluded.lng, lat = excluded.lat, \
         gps_accuracy_m = excluded.gps_accuracy_m, crs = excluded.crs, wgs84_lng = excluded.wgs84_lng, \
         wgs84_lat = excluded.wgs84_lat, team = excluded.team, representative_name = excluded.representative_name, \
         representative_signed = excluded.representative_signed, representative_refused = excluded.representative_refused, \
         business_opinion = excluded.business_opinion, other_findings = excluded.other_findings, \
         declared_result = excluded.declared_result, seq = excluded.seq, updated_at = excluded.updated_at",
    )
    .bind(&r.id)
    .bind(&r.task_id)
    .bind(&r.establishment_id)
    .bind(r.started_at)
    .bind(r.finished_at)
    .bind(super::OptF64(r.lng))
    .bind(super::OptF64(r.lat))
    .bind(super::OptF64(r.gps_accuracy_m))
    .bind(r.crs.as_deref())
    .bind(super::OptF64(wgs84.map(|p| p.0)))
    .bind(super::OptF64(wgs84.map(|p| p.1)))
    .bind(&r.team)
    .bind(r.representative_name.as_deref())
    .bind(i64::from(r.representative_signed))
    .bind(i64::from(r.representative_refused))
    .bind(r.business_opinion.as_deref())
    .bind(r.other_findings.as_deref())
    .bind(r.declared_result.as_deref())
    .bind(by.user_id)
    .bind(by.device_id)
    .bind(by.seq)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks a checked inspection with the server's result and puts it in the review queue as
/// round `round`. The previous round's decision (reviewer, override) is cleared from the
/// inspection: it stays in `reviews`.
pub async fn submit_inspection(
    conn: &mut AnyConnection,
    id: &str,
    computed: &str,
    evaluation: &str,
    flags: &str,
    round: i64,
    seq: i64,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "UPDATE inspections SET submitted = 1, computed_result = $1, evaluation = $2, server_flags = $3, submitted_at = $4, \
         review_state = 'submitted', review_round = $5, override_result = NULL, override_reason = NULL, \
         reviewed_by = NULL, reviewed_at = NULL, seq = $6, updated_at = $4 WHERE id = $7",
    )
    .bind(computed)
    .bind(evaluation)
    .bind(flags)
    .bind(now)
    .bind(round)
    .bind(seq)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn upsert_photo(
    conn: &mut AnyConnection,
    r: &PhotoRec,
    by: &Author<'_>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO photos (id, inspection_id, item_code, sha256, byte_size, taken_at, origin_device, created_seq, seq, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8,$9,$9) ON CONFLICT (id) DO UPDATE SET inspection_id = excluded.inspection_id, \
         item_code = excluded.item_code, sha256 = excluded.sha256, byte_size = excluded.byte_size, taken_at = excluded.taken_at, \
         seq = excluded.seq, updated_at = excluded.updated_at",
    )
    .bind(&r.id)
    .bind(&r.inspection_id)
    .bind(r.item_code.as_deref())
    .bind(&r.sha256)
    .bind(r.byte_size)
    .bind(r.taken_at)
    .bind(by.device_id)
    .bind(by.seq)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a record and leaves a tombstone scoped to its task.
pub async fn delete_with_tombstone(
    conn: &mut AnyConnection,
    table: &'static str,
    id: &str,
    task_id: &str,
    by: &Author<'_>,
) -> Result<(), sqlx::Error> {
    let seq = by.seq;
    // `table` comes from the fixed sync schema, never from the client.
    sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO sync_tombstones (table_name, record_id, task_id, deleted_by, seq, deleted_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (table_name, record_id) DO UPDATE SET seq = excluded.seq, deleted_at = excluded.deleted_at, \
         deleted_by = excluded.deleted_by",
    )
    .bind(table)
    .bind(id)
    .bind(task_id)
    .bind(by.device_id)
    .bind(seq)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves a task forward (assigned → in_progress, or → submitted), bumping its sequence.
pub async fn advance_task(
    conn: &mut AnyConnection,
    task_id: &str,
    to: TaskState,
    seq: i64,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    // Only the moves the task state machine allows.
    let list = [TaskState::Assigned, TaskState::InProgress]
        .into_iter()
        .filter(|from| from.can_move_to(to))
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(",");
    let to = to.as_str();
    sqlx::query(&format!(
        "UPDATE tasks SET state = $1, seq = $2, updated_at = $3, \
         submitted_at = CASE WHEN $1 = 'submitted' THEN $3 ELSE submitted_at END \
         WHERE id = $4 AND state IN ({list})"
    ))
    .bind(to)
    .bind(seq)
    .bind(now)
    .bind(task_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Inspections with their answers and photos, for reviewers.
pub async fn inspections_of_tasks(
    conn: &mut AnyConnection,
    task_ids: &[String],
) -> Result<Vec<InspectionRow>, sqlx::Error> {
    by_ids(
        conn,
        &format!("SELECT {INSPECTION_COLUMNS} FROM inspections i"),
        "i.task_id",
        task_ids,
    )
    .await
}

/// Inserts or updates answers, many rows per statement.
pub async fn upsert_answers(
    conn: &mut AnyConnection,
    rows: &[&AnswerRec],
    by: &Author<'_>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let backend = backend_of(conn);
    for chunk in rows.chunks(500) {
        let sql = format!(
            "INSERT INTO answers (id, inspection_id, item_code, status, note, origin_device, created_seq, seq, created_at, updated_at) \
             VALUES {} ON CONFLICT (id) DO UPDATE SET inspection_id = excluded.inspection_id, \
             item_code = excluded.item_code, status = excluded.status, note = excluded.note, seq = excluded.seq, \
             updated_at = excluded.updated_at",
            placeholders(backend, chunk.len(), 10)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(r.id.as_str())
                .bind(r.inspection_id.as_str())
                .bind(r.item_code.as_str())
                .bind(r.status.as_str())
                .bind(r.note.as_deref())
                .bind(by.device_id)
                .bind(by.seq)
                .bind(by.seq)
                .bind(now)
                .bind(now);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Re-creating deleted ids removes their tombstones: `ids` of each synced table (a constant
/// name), in one statement per [`MAX_BINDS`] ids.
pub async fn clear_tombstones(
    conn: &mut AnyConnection,
    ids: &[(&'static str, &[String])],
) -> Result<(), sqlx::Error> {
    let parts: Vec<(String, &[String])> = ids
        .iter()
        .map(|(table, ids)| {
            let t = table_name(table);
            (format!("(table_name = '{t}' AND record_id IN "), *ids)
        })
        .collect();
    let shaped: Vec<(&str, &str, &[String])> = parts
        .iter()
        .map(|(p, ids)| (p.as_str(), "", *ids))
        .collect();
    for statement in union_statements(&shaped, MAX_BINDS) {
        let mut sql = String::from("DELETE FROM sync_tombstones WHERE ");
        let mut n = 0;
        for (k, (part, ids)) in statement.iter().enumerate() {
            if k > 0 {
                sql.push_str(" OR ");
            }
            sql.push_str(&format!(
                "{}{})",
                shaped[*part].0,
                numbered(n + 1, ids.len())
            ));
            n += ids.len();
        }
        let mut q = sqlx::query(&sql);
        for (_, ids) in &statement {
            for id in *ids {
                q = q.bind(id.as_str());
            }
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A synced table's name as an SQL literal: a constant of the code, checked all the same.
fn table_name(table: &'static str) -> &'static str {
    assert!(
        table.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "not a table name: {table:?}"
    );
    table
}

/// Tombstones of `ids` of each synced table (a constant name), in one statement per
/// [`MAX_BINDS`] ids: (table, record id, sequence of the deletion).
pub async fn tombstones_of(
    conn: &mut AnyConnection,
    ids: &[(&'static str, &[String])],
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let columns: Vec<String> = ids
        .iter()
        .map(|(table, _)| format!("table_name = '{}' AND record_id", table_name(table)))
        .collect();
    let parts: Vec<(&str, &str, &[String])> = columns
        .iter()
        .zip(ids)
        .map(|(c, (_, ids))| {
            (
                "SELECT table_name, record_id, seq FROM sync_tombstones",
                c.as_str(),
                *ids,
            )
        })
        .collect();
    by_ids_union(conn, &parts).await
}

/// A member of a task's drawn team, with the account's facts.
#[derive(Debug, Clone, FromRow)]
pub struct TeamOfficer {
    pub task_id: String,
    pub user_id: String,
    pub name: String,
    pub badge_no: Option<String>,
    /// 1 for an enabled inspector account.
    pub active: i64,
    /// Place in the drawn team (draw order).
    pub position: i64,
}

/// The drawn teams of `task_ids`, in draw order.
pub async fn team_officers(
    conn: &mut AnyConnection,
    task_ids: &[String],
) -> Result<Vec<TeamOfficer>, sqlx::Error> {
    by_ids(
        conn,
        "SELECT tm.task_id, u.id AS user_id, u.name, u.badge_no, \
         CASE WHEN u.disabled = 0 AND u.role = 'inspector' THEN 1 ELSE 0 END AS active, \
         tm.position FROM task_members tm JOIN users u ON u.id = tm.inspector_id",
        "tm.task_id",
        task_ids,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    #[test]
    fn union_statements_keep_every_id_once_in_order_within_the_bound() {
        let (a, b, c) = (ids("a", 3), ids("b", 0), ids("c", 8));
        let parts: [(&str, &str, &[String]); 3] = [("", "", &a), ("", "", &b), ("", "", &c)];
        let statements = union_statements(&parts, 4);
        let sizes: Vec<usize> = statements
            .iter()
            .map(|s| s.iter().map(|(_, ids)| ids.len()).sum())
            .collect();
        assert_eq!(sizes, [4, 4, 3]);
        // The empty part is left out; the others keep their order.
        let flat: Vec<(usize, &String)> = statements
            .iter()
            .flatten()
            .flat_map(|(k, ids)| ids.iter().map(move |id| (*k, id)))
            .collect();
        let want: Vec<(usize, &String)> = a
            .iter()
            .map(|id| (0, id))
            .chain(c.iter().map(|id| (2, id)))
            .collect();
        assert_eq!(flat, want);
        assert!(union_statements(&[("", "", &b)], 4).is_empty());
    }

    #[test]
    fn numbered_placeholders_start_where_asked() {
        assert_eq!(numbered(1, 2), "($1,$2)");
        assert_eq!(numbered(4, 2), "($4,$5)");
    }
}
