//! The sync pull, streamed: [`begin`] opens the snapshot and makes every check that can refuse
//! the pull (so those still answer a 4xx), then [`PreparedPull::write`] reads the user's changes
//! from that snapshot in chunks bounded by their scope and writes the answer as it reads, on a
//! blocking thread (the database driven with `block_on`, a chunk at a time). Memory holds a
//! chunk of rows, the scope's ids and at most [`UPDATED_BUFFER`] of `updated` rows, never the
//! answer. See *Pull* and *Streaming* in `src/sync/protocol.md`.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use serde_json::{json, Value};
use sqlx::{Any, AnyConnection, Transaction};
use tokio::runtime::Handle;

use super::sample_sync;
use super::sync::Syncer;
use crate::ops::Error;
use crate::store::sync::{self as q, Window};
use crate::store::Db;
use crate::sync::{self as schema, MigrationRequest};

/// Task (and sampling task) ids per statement.
const TASK_CHUNK: usize = 250;
/// Inspection and sample ids per statement (an inspection has some 35 answers).
const RECORD_CHUNK: usize = 200;
/// Checklist versions per statement.
const VERSION_CHUNK: usize = 100;

/// WatermelonDB wants a table's `created` before its `updated`: `created` rows are written as
/// they are read, `updated` rows' bytes are kept up to this bound and written after them; past
/// it the buffer goes and the table is read a second time (same snapshot, same rows) for its
/// `updated` rows only.
pub const UPDATED_BUFFER: usize = 4 * 1024 * 1024;

/// The answer to a pull, whole (for callers that want a value, e.g. the benchmarks).
pub struct Pull {
    pub body: Value,
}

/// What a pull answers, fixed before the first byte.
struct Plan {
    user: String,
    /// `user/device`: records a device created itself are not new to it.
    origin: Option<String>,
    last: Option<i64>,
    /// `None` for a replacement.
    since: Option<i64>,
    now: i64,
    replacement: bool,
    version: u32,
    migrated: HashSet<String>,
    new_tables: HashSet<String>,
    updated_buffer: usize,
    /// Debug builds: fail the body after this many bytes (tests).
    fail_after: Option<u64>,
}

impl Plan {
    /// Tables the app gets again whole after a migration are read from the start.
    fn since_for(&self, table: &str) -> i64 {
        if self.migrated.contains(table) {
            -1
        } else {
            self.since.unwrap_or(-1)
        }
    }

    /// New to the device: created after its cursor, by someone else's device. A replacement
    /// judges by the device's own cursor too: what was created before it, the device already
    /// received. Listed as `created`, a record the device holds would make WatermelonDB drop a
    /// pending local deletion and recreate it (and log an error for each).
    fn is_new(&self, created_seq: i64, origin: Option<&str>) -> bool {
        let own = origin.is_some() && origin == self.origin.as_deref();
        // A first pull (no cursor) finds an empty database: everything is new to it.
        self.last.is_none_or(|l| created_seq > l && !own)
    }

    /// A record of a task the user joined after the cursor is new to the device, whoever made it.
    fn joined(&self, added_seq: i64) -> bool {
        self.last.is_none_or(|l| added_seq > l)
    }

    /// Nothing at all has changed since the cursor: the answer needs no reading.
    fn unchanged(&self) -> bool {
        self.since == Some(self.now) && self.migrated.is_empty()
    }
}

/// A pull whose snapshot is open and whose checks passed: what is left can only be written.
pub struct PreparedPull {
    tx: Transaction<'static, Any>,
    plan: Plan,
}

/// Snapshots a pull may take again when its cursor is held back by a transaction that ended
/// as the snapshot was taken (see [`q::Cursor::held_by_unknown`]).
const SNAPSHOT_ATTEMPTS: usize = 3;

/// The pull's snapshot and cursor. A cursor held back by a transaction that ended while the
/// snapshot was being taken is correct but stale: the pull would miss a change committed before
/// it began. A new snapshot no longer holds that transaction, so take one, a few times at most.
async fn fresh_snapshot(db: &Db) -> Result<(Transaction<'static, Any>, q::Cursor), Error> {
    let mut attempt = 1;
    loop {
        let mut tx = db.begin_snapshot().await?;
        let cursor = q::safe_cursor(&mut tx).await?;
        if !cursor.held_by_unknown || attempt == SNAPSHOT_ATTEMPTS {
            return Ok((tx, cursor));
        }
        drop(tx);
        attempt += 1;
    }
}

/// Opens the pull's snapshot and checks its cursor. Every refusal of a pull happens here (or
/// before, at the edge), before anything is written.
pub async fn begin(
    db: &Db,
    who: &Syncer<'_>,
    last: Option<i64>,
    version: u32,
    migration: Option<MigrationRequest>,
) -> Result<PreparedPull, Error> {
    // Freshness: the pull reflects every change committed before it began (PostgreSQL waits,
    // briefly, for the writes in progress when it began; see `Cursor and concurrency` in
    // protocol.md).
    {
        let mut conn = db.acquire().await?;
        q::wait_fresh(&mut conn).await?;
    }
    let (mut tx, cursor) = fresh_snapshot(db).await?;
    if let Some(l) = last {
        if l > cursor.horizon {
            return Err(Error::bad_request(
                "invalid_cursor",
                format!(
                    "last_pulled_at {l} is ahead of the server ({})",
                    cursor.horizon
                ),
            ));
        }
    }
    // Changes in `(since, now]` are answered; those visible in the snapshot above `now` wait for
    // the next pull (which answers them then), so nothing is sent twice as a change or skipped.
    // When the safe point is behind a cursor given out earlier (a race with another database's
    // transaction ending, see protocol.md), the answer is at that cursor: everything at or below
    // a cursor once given out was complete then, so it still is; a cursor never goes back.
    let now = cursor.safe.max(last.unwrap_or(i64::MIN));
    let purged = q::purged_through(&mut tx).await?;
    // Tombstones after the cursor may be gone: send everything, as a replacement.
    let replacement = last.is_some_and(|l| l < purged);
    let migrated: HashSet<String> = migration
        .as_ref()
        .map(|m| {
            m.tables
                .iter()
                .cloned()
                .chain(m.columns.iter().map(|c| c.table.clone()))
                .collect()
        })
        .unwrap_or_default();
    // Tables the app did not have before its upgrade: every row is new to it.
    let new_tables: HashSet<String> = migration
        .as_ref()
        .map(|m| m.tables.iter().cloned().collect())
        .unwrap_or_default();
    let (updated_buffer, fail_after) = hooks(who.device_id);
    Ok(PreparedPull {
        tx,
        plan: Plan {
            user: who.user_id.to_string(),
            origin: who.origin(),
            last,
            since: if replacement { None } else { last },
            now,
            replacement,
            version,
            migrated,
            new_tables,
            updated_buffer,
            fail_after,
        },
    })
}

#[cfg(debug_assertions)]
fn hooks(device: Option<&str>) -> (usize, Option<u64>) {
    super::sync::debug::pull_hooks(device, UPDATED_BUFFER)
}

#[cfg(not(debug_assertions))]
fn hooks(_device: Option<&str>) -> (usize, Option<u64>) {
    (UPDATED_BUFFER, None)
}

/// Reads the user's changes since `last` from one snapshot, whole (the HTTP edge streams
/// [`PreparedPull::write`] instead).
pub async fn pull(
    db: &Db,
    who: &Syncer<'_>,
    last: Option<i64>,
    version: u32,
    migration: Option<MigrationRequest>,
) -> Result<Pull, Error> {
    let prepared = begin(db, who, last, version, migration).await?;
    let rt = Handle::current();
    let bytes = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        prepared.write(&rt, &mut out).map(|()| out)
    })
    .await
    .map_err(|e| Error::Internal(e.into()))??;
    let body = serde_json::from_slice(&bytes).map_err(|e| Error::Internal(e.into()))?;
    Ok(Pull { body })
}

fn io_error(e: io::Error) -> Error {
    Error::Internal(anyhow::Error::new(e))
}

/// A failed write stays an `io::Error` (so the edge tells a reader that went away from a
/// failure).
fn json_error(e: serde_json::Error) -> Error {
    if e.is_io() {
        return io_error(io::Error::from(e));
    }
    Error::Internal(anyhow::Error::new(e))
}

/// Counts what is written, and (tests) fails after a given number of bytes.
struct Counted<'w> {
    inner: &'w mut dyn Write,
    written: u64,
    fail_after: Option<u64>,
}

impl Write for Counted<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self
            .fail_after
            .is_some_and(|n| self.written + data.len() as u64 > n)
        {
            return Err(io::Error::other("injected pull failure"));
        }
        let n = self.inner.write(data)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl PreparedPull {
    /// The cursor the answer gives out.
    pub fn timestamp(&self) -> i64 {
        self.plan.now
    }

    /// Writes the answer, `{"timestamp", "experimentalStrategy"?, "changes"}`, into `out` as it
    /// reads it. Runs on a blocking thread of runtime `rt` (the reads are driven with
    /// `block_on`; `out` is written outside it, so it may block). The snapshot ends with it.
    pub fn write(self, rt: &Handle, out: &mut dyn Write) -> Result<(), Error> {
        let PreparedPull { mut tx, plan } = self;
        let mut out = Counted {
            inner: out,
            written: 0,
            fail_after: plan.fail_after,
        };
        let mut w = Writer {
            rt,
            conn: &mut tx,
            plan: &plan,
            scope: None,
        };
        w.answer(&mut out)?;
        out.flush().map_err(io_error)?;
        // Read only: ending it either way is the same; rolled back, nothing is left to commit.
        rt.block_on(tx.rollback())?;
        Ok(())
    }
}

/// The user's scope, read once per pull (ids only: a few MB for 50,000 tasks).
#[derive(Default)]
struct Scope {
    /// Every task membership: (task id, `added_seq`).
    members: Vec<(String, i64)>,
    /// Each establishment of a membership task: the first and last `added_seq` among the
    /// memberships at or below the cursor (`None`: only through memberships above it).
    establishments: HashMap<String, Option<(i64, i64)>>,
    /// The same for each checklist version (template id, version) of the tasks.
    versions: HashMap<(String, i64), Option<(i64, i64)>>,
    /// The inspections of the memberships at or below the cursor: (id, `added_seq`). Read
    /// when first needed.
    inspections: Option<Vec<(String, i64)>>,
}

struct Writer<'a> {
    rt: &'a Handle,
    conn: &'a mut AnyConnection,
    plan: &'a Plan,
    scope: Option<Scope>,
}

/// One record of a table, with whether it is new to the device.
type Emit<'e> = dyn FnMut(bool, Value) -> Result<(), Error> + 'e;

fn num(v: Option<f64>) -> Value {
    v.map(Value::from).unwrap_or(Value::Null)
}

fn text(v: Option<&str>) -> Value {
    v.map(Value::from).unwrap_or(Value::Null)
}

/// Keeps only the columns a client of `version` has.
fn shape(table: &str, version: u32, rec: Value) -> Value {
    let Value::Object(mut rec) = rec else {
        return rec;
    };
    if let Some(t) = schema::table(table) {
        rec.retain(|k, _| k == "id" || t.columns_at(version).any(|c| c.name == k));
    }
    Value::Object(rec)
}

/// A chunk of (id, `added_seq`) rows and its window (`None`: every record of them).
type Chunk<'r> = (Vec<&'r (String, i64)>, Option<Window>);

/// Splits `rows` (id, `added_seq`) into chunks of `size`: first those whose every record is
/// sent (`added_seq > since`: joined after the cursor), then those whose changes in the window
/// are. Yields (chunk, window).
fn chunks<'r>(
    rows: impl Iterator<Item = &'r (String, i64)>,
    since: i64,
    upto: i64,
    size: usize,
) -> Vec<Chunk<'r>> {
    let (all, changed): (Vec<_>, Vec<_>) = rows.partition(|(_, added)| *added > since);
    let window = Window { since, upto };
    let mut out = Vec::new();
    for (group, w) in [(all, None), (changed, Some(window))] {
        let mut group = group.into_iter().peekable();
        while group.peek().is_some() {
            out.push((group.by_ref().take(size).collect(), w));
        }
    }
    out
}

fn ids<'r>(chunk: &[&'r (String, i64)]) -> Vec<&'r str> {
    chunk.iter().map(|(id, _)| id.as_str()).collect()
}

fn added_of<'r>(chunk: &[&'r (String, i64)]) -> HashMap<&'r str, i64> {
    chunk.iter().map(|(id, a)| (id.as_str(), *a)).collect()
}

impl Writer<'_> {
    fn answer(&mut self, out: &mut dyn Write) -> Result<(), Error> {
        let plan = self.plan;
        write!(out, "{{\"timestamp\":{}", plan.now).map_err(io_error)?;
        if plan.replacement {
            out.write_all(b",\"experimentalStrategy\":\"replacement\"")
                .map_err(io_error)?;
        }
        out.write_all(b",\"changes\":{").map_err(io_error)?;
        let unchanged = plan.unchanged();
        if !unchanged {
            self.scope = Some(self.read_scope()?);
        }
        // Deletions are few (tombstones and removals after the cursor, ids only): read first.
        let mut deleted: HashMap<String, Vec<String>> = HashMap::new();
        if let (Some(s), false) = (plan.since, unchanged) {
            for (table, id) in self.deletions(s)? {
                deleted.entry(table).or_default().push(id);
            }
        }
        for (i, t) in schema::tables_at(plan.version).enumerate() {
            if i > 0 {
                out.write_all(b",").map_err(io_error)?;
            }
            write!(out, "\"{}\":{{\"created\":[", t.name).map_err(io_error)?;
            if !unchanged {
                self.table(t.name, out)?;
            } else {
                out.write_all(b"],\"updated\":[").map_err(io_error)?;
            }
            out.write_all(b"],\"deleted\":").map_err(io_error)?;
            let none = Vec::new();
            serde_json::to_writer(&mut *out, deleted.get(t.name).unwrap_or(&none))
                .map_err(json_error)?;
            out.write_all(b"}").map_err(io_error)?;
        }
        out.write_all(b"}}").map_err(io_error)?;
        Ok(())
    }

    /// Writes `created` rows (as they come) `],"updated":[` and `updated` rows of `table`.
    fn table(&mut self, table: &'static str, out: &mut dyn Write) -> Result<(), Error> {
        let version = self.plan.version;
        let bound = self.plan.updated_buffer;
        let mut first = true;
        let mut updated: Vec<u8> = Vec::new();
        let mut overflow = false;
        self.rows(table, &mut |new, rec| {
            let rec = shape(table, version, rec);
            if new {
                if !first {
                    out.write_all(b",").map_err(io_error)?;
                }
                first = false;
                serde_json::to_writer(&mut *out, &rec).map_err(json_error)?;
            } else if !overflow {
                if !updated.is_empty() {
                    updated.push(b',');
                }
                serde_json::to_writer(&mut updated, &rec).map_err(json_error)?;
                if updated.len() > bound {
                    overflow = true;
                    updated = Vec::new();
                }
            }
            Ok(())
        })?;
        out.write_all(b"],\"updated\":[").map_err(io_error)?;
        if !overflow {
            return out.write_all(&updated).map_err(io_error);
        }
        drop(updated);
        let mut first = true;
        self.rows(table, &mut |new, rec| {
            if !new {
                if !first {
                    out.write_all(b",").map_err(io_error)?;
                }
                first = false;
                serde_json::to_writer(&mut *out, &shape(table, version, rec))
                    .map_err(json_error)?;
            }
            Ok(())
        })
    }

    fn scope(&self) -> &Scope {
        self.scope
            .as_ref()
            .expect("the scope is read before the tables")
    }

    fn read_scope(&mut self) -> Result<Scope, Error> {
        let members = self
            .rt
            .block_on(q::memberships(self.conn, &self.plan.user))?;
        let now = self.plan.now;
        let mut scope = Scope {
            members,
            ..Scope::default()
        };
        for chunk in scope.members.chunks(TASK_CHUNK) {
            let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
            let added: HashMap<&str, i64> = chunk.iter().map(|(id, a)| (id.as_str(), *a)).collect();
            let refs = self.rt.block_on(q::task_refs(self.conn, &ids))?;
            for (task, est, template, version) in refs {
                let a = added.get(task.as_str()).copied().unwrap_or(i64::MAX);
                let fold = |e: &mut Option<(i64, i64)>| {
                    if a <= now {
                        *e = Some(e.map_or((a, a), |(f, l)| (f.min(a), l.max(a))));
                    }
                };
                fold(scope.establishments.entry(est).or_default());
                fold(scope.versions.entry((template, version)).or_default());
            }
        }
        Ok(scope)
    }

    /// The memberships at or below the cursor.
    fn members_upto(&self) -> impl Iterator<Item = &(String, i64)> + '_ {
        let now = self.plan.now;
        self.scope().members.iter().filter(move |(_, a)| *a <= now)
    }

    fn scope_inspections(&mut self) -> Result<Vec<(String, i64)>, Error> {
        if let Some(v) = self.scope.as_ref().and_then(|s| s.inspections.clone()) {
            return Ok(v);
        }
        let members: Vec<(String, i64)> = self.members_upto().cloned().collect();
        let mut out = Vec::new();
        for chunk in members.chunks(TASK_CHUNK) {
            let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
            let added: HashMap<&str, i64> = chunk.iter().map(|(id, a)| (id.as_str(), *a)).collect();
            for (insp, task) in self.rt.block_on(q::inspection_ids_of(self.conn, &ids))? {
                out.push((insp, added.get(task.as_str()).copied().unwrap_or(i64::MAX)));
            }
        }
        if let Some(s) = self.scope.as_mut() {
            s.inspections = Some(out.clone());
        }
        Ok(out)
    }

    /// Feeds `emit` every record of `table` the answer holds, in the snapshot.
    fn rows(&mut self, table: &'static str, emit: &mut Emit<'_>) -> Result<(), Error> {
        match table {
            "tasks" => self.tasks(emit),
            "establishments" => self.establishments(emit),
            "checklist_versions" => self.versions(emit),
            "inspections" => self.inspections(emit),
            "answers" | "photos" | "reviews" => self.children(table, emit),
            "sampling_tasks" => self.sampling_tasks(emit),
            "samples" | "custody_events" | "sample_attachments" => self.samples(table, emit),
            _ => Ok(()),
        }
    }

    fn tasks(&mut self, emit: &mut Emit<'_>) -> Result<(), Error> {
        let plan = self.plan;
        let members: Vec<(String, i64)> = self.members_upto().cloned().collect();
        for (chunk, window) in chunks(
            members.iter(),
            plan.since_for("tasks"),
            plan.now,
            TASK_CHUNK,
        ) {
            let rows = self
                .rt
                .block_on(q::tasks_for_pull(self.conn, &ids(&chunk), window))?;
            if rows.is_empty() {
                continue;
            }
            let added = added_of(&chunk);
            let task_ids: Vec<String> = rows.iter().map(|t| t.id.clone()).collect();
            let mut teams = self.rt.block_on(task_teams(self.conn, &task_ids))?;
            for t in rows {
                let a = added.get(t.id.as_str()).copied().unwrap_or(i64::MAX);
                let new = plan.is_new(t.created_seq, None) || plan.joined(a);
                let team = teams.remove(&t.id).unwrap_or_else(|| "[]".into());
                let rec = json!({"id": t.id, "plan_id": t.plan_id, "establishment_id": t.establishment_id, "template_id": t.template_id,
                    "template_version": t.template_version, "due_date": t.due_date, "state": t.state,
                    "must_check_items": t.must_check_items, "round_title": t.round_title, "team": team, "kind": t.kind});
                emit(new, rec)?;
            }
        }
        Ok(())
    }

    fn establishments(&mut self, emit: &mut Emit<'_>) -> Result<(), Error> {
        let plan = self.plan;
        // (id, last added_seq) with the first for `is_new`: an establishment changed after the
        // cursor, or one a membership after it brought in (sent whole).
        let mut first_of: HashMap<&str, i64> = HashMap::new();
        let mut rows: Vec<(String, i64)> = Vec::new();
        let scope = self
            .scope
            .take()
            .expect("the scope is read before the tables");
        for (id, agg) in &scope.establishments {
            if let Some((first, last)) = agg {
                first_of.insert(id.as_str(), *first);
                rows.push((id.clone(), *last));
            }
        }
        let result = (|| {
            for (chunk, window) in chunks(
                rows.iter(),
                plan.since_for("establishments"),
                plan.now,
                TASK_CHUNK,
            ) {
                for e in
                    self.rt
                        .block_on(q::establishments_for_pull(self.conn, &ids(&chunk), window))?
                {
                    let first = first_of.get(e.id.as_str()).copied().unwrap_or(i64::MAX);
                    let new = plan.is_new(first, None);
                    let rec = json!({"id": e.id, "sign_name": e.sign_name, "licensed_name": e.licensed_name, "address": e.address,
                        "town": e.town, "category": e.category, "risk_grade": e.risk_grade, "lng": num(e.raw_lng), "lat": num(e.raw_lat),
                        "crs": text(e.crs.as_deref())});
                    emit(new, rec)?;
                }
            }
            Ok(())
        })();
        self.scope = Some(scope);
        result
    }

    fn versions(&mut self, emit: &mut Emit<'_>) -> Result<(), Error> {
        let plan = self.plan;
        let since = plan.since_for("checklist_versions");
        // Immutable: sent once, when a membership after the cursor brings them in.
        let wanted: Vec<((String, i64), i64)> = self
            .scope()
            .versions
            .iter()
            .filter_map(|(k, agg)| {
                agg.filter(|(_, last)| *last > since)
                    .map(|(f, _)| (k.clone(), f))
            })
            .collect();
        for chunk in wanted.chunks(VERSION_CHUNK) {
            let keys: Vec<(&str, i64)> = chunk.iter().map(|((t, v), _)| (t.as_str(), *v)).collect();
            let first: HashMap<(&str, i64), i64> = chunk
                .iter()
                .map(|((t, v), f)| ((t.as_str(), *v), *f))
                .collect();
            for v in self.rt.block_on(q::versions_for_pull(self.conn, &keys))? {
                let f = first
                    .get(&(v.template_id.as_str(), v.version))
                    .copied()
                    .unwrap_or(i64::MAX);
                let new = plan.is_new(f, None);
                let rec = json!({"id": format!("{}:{}", v.template_id, v.version), "template_id": v.template_id, "version": v.version,
                    "title": v.title, "content": v.content});
                emit(new, rec)?;
            }
        }
        Ok(())
    }

    fn inspections(&mut self, emit: &mut Emit<'_>) -> Result<(), Error> {
        let plan = self.plan;
        let members: Vec<(String, i64)> = self.members_upto().cloned().collect();
        for (chunk, window) in chunks(
            members.iter(),
            plan.since_for("inspections"),
            plan.now,
            TASK_CHUNK,
        ) {
            let added = added_of(&chunk);
            for i in self
                .rt
                .block_on(q::inspections_for_pull(self.conn, &ids(&chunk), window))?
            {
                let a = added.get(i.task_id.as_str()).copied().unwrap_or(i64::MAX);
                let new = plan.is_new(i.created_seq, i.origin_device.as_deref()) || plan.joined(a);
                emit(new, super::sync::inspection_json(&i))?;
            }
        }
        Ok(())
    }

    /// Answers, photos and reviews: read by their inspections' ids.
    fn children(&mut self, table: &'static str, emit: &mut Emit<'_>) -> Result<(), Error> {
        let plan = self.plan;
        let inspections = self.scope_inspections()?;
        let fresh = plan.new_tables.contains(table);
        for (chunk, window) in chunks(
            inspections.iter(),
            plan.since_for(table),
            plan.now,
            RECORD_CHUNK,
        ) {
            let added = added_of(&chunk);
            let ids = ids(&chunk);
            let added_for = |inspection: &str| added.get(inspection).copied().unwrap_or(i64::MAX);
            match table {
                "answers" => {
                    for a in self
                        .rt
                        .block_on(q::answers_for_pull(self.conn, &ids, window))?
                    {
                        let new = plan.is_new(a.created_seq, a.origin_device.as_deref())
                            || plan.joined(added_for(&a.inspection_id));
                        let rec = json!({"id": a.id, "inspection_id": a.inspection_id, "item_code": a.item_code, "status": a.status, "note": text(a.note.as_deref())});
                        emit(new, rec)?;
                    }
                }
                "photos" => {
                    for p in self
                        .rt
                        .block_on(q::photos_for_pull(self.conn, &ids, window))?
                    {
                        let new = fresh
                            || plan.is_new(p.created_seq, p.origin_device.as_deref())
                            || plan.joined(added_for(&p.inspection_id));
                        let rec = json!({"id": p.id, "inspection_id": p.inspection_id, "item_code": text(p.item_code.as_deref()),
                            "sha256": p.sha256, "byte_size": p.byte_size, "taken_at": p.taken_at, "processing_status": p.processing_status,
                            "width": p.width, "height": p.height, "exif_taken_at": p.exif_taken_at, "exif_lng": num(p.exif_lng),
                            "exif_lat": num(p.exif_lat), "flags": text(p.flags.as_deref()),
                            "processing_error": text(p.processing_error.as_deref())});
                        emit(new, rec)?;
                    }
                }
                _ => {
                    for r in self
                        .rt
                        .block_on(q::reviews_for_pull(self.conn, &ids, window))?
                    {
                        // Written by reviewers, never by a device: new to the device once after
                        // its cursor (or when the table is new to it).
                        let new = fresh
                            || plan.is_new(r.created_seq, None)
                            || plan.joined(added_for(&r.inspection_id));
                        let rec = json!({"id": r.id, "inspection_id": r.inspection_id, "round": r.round, "decision": r.decision,
                            "comment": text(r.comment.as_deref()), "item_comments": r.item_comments,
                            "override_result": text(r.override_result.as_deref()), "override_reason": text(r.override_reason.as_deref()),
                            "decided_at": r.decided_at, "reviewer_name": r.reviewer_name});
                        emit(new, rec)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Schema 6: the sampling tasks whose team includes the user (read-only).
    fn sampling_tasks(&mut self, emit: &mut Emit<'_>) -> Result<(), Error> {
        use crate::store::sampling_plans as tq;
        let plan = self.plan;
        let now = plan.now;
        let members: Vec<(String, i64)> = self
            .rt
            .block_on(tq::memberships_of_sampler(self.conn, &plan.user))?
            .into_iter()
            .filter(|(_, a)| *a <= now)
            .collect();
        let fresh = plan.new_tables.contains("sampling_tasks");
        for (chunk, window) in chunks(
            members.iter(),
            plan.since_for("sampling_tasks"),
            now,
            TASK_CHUNK,
        ) {
            let rows = self
                .rt
                .block_on(tq::tasks_for_pull(self.conn, &ids(&chunk), window))?;
            if rows.is_empty() {
                continue;
            }
            let added = added_of(&chunk);
            let task_ids: Vec<String> = rows.iter().map(|t| t.id.clone()).collect();
            let mut teams: HashMap<String, Vec<crate::plan::TeamMember>> = HashMap::new();
            for (task, user_id, name, badge, _) in
                self.rt.block_on(tq::members_of(self.conn, &task_ids))?
            {
                teams
                    .entry(task)
                    .or_default()
                    .push(crate::plan::TeamMember::officer(user_id, name, badge));
            }
            for t in rows {
                let a = added.get(t.id.as_str()).copied().unwrap_or(i64::MAX);
                let new = fresh || plan.is_new(t.created_seq, None) || plan.joined(a);
                let team = teams.remove(&t.id).unwrap_or_default();
                emit(new, sample_sync::task_rec(t, &team)?)?;
            }
        }
        Ok(())
    }

    /// Schema 6 and 7: the user's 抽样单, their chains of custody and their photos (never
    /// deleted), read by the ids of the samples the user is a sampler of.
    fn samples(&mut self, table: &'static str, emit: &mut Emit<'_>) -> Result<(), Error> {
        let plan = self.plan;
        let samples = self
            .rt
            .block_on(crate::store::sampling::sample_ids_of_sampler(
                self.conn, &plan.user,
            ))?;
        let window = Window {
            since: plan.since_for(table),
            upto: plan.now,
        };
        let fresh = plan.new_tables.contains(table);
        for chunk in samples.chunks(RECORD_CHUNK) {
            let ids: Vec<&str> = chunk.iter().map(|(id,)| id.as_str()).collect();
            let pulled = match table {
                "samples" => self
                    .rt
                    .block_on(crate::store::sampling::samples_for_pull(
                        self.conn, &ids, window,
                    ))?
                    .into_iter()
                    .map(sample_sync::sample_rec)
                    .collect::<Result<Vec<_>, _>>()?,
                "custody_events" => self
                    .rt
                    .block_on(crate::store::sampling::custody_for_pull(
                        self.conn, &ids, window,
                    ))?
                    .into_iter()
                    .map(sample_sync::custody_rec)
                    .collect(),
                _ => self
                    .rt
                    .block_on(crate::store::sample_attachments::for_pull(
                        self.conn, &ids, window,
                    ))?
                    .into_iter()
                    .map(sample_sync::attachment_rec)
                    .collect(),
            };
            for p in pulled {
                let new = fresh || plan.is_new(p.created_seq, p.origin.as_deref());
                emit(new, p.rec)?;
            }
        }
        Ok(())
    }

    /// Deleted records after `since`, and everything of a task the user left (a reassigned
    /// team), inspection or sampling task: (table, id).
    fn deletions(&mut self, since: i64) -> Result<Vec<(String, String)>, Error> {
        let plan = self.plan;
        let window = Window {
            since,
            upto: plan.now,
        };
        let mut out = Vec::new();
        let members: Vec<String> = self
            .scope()
            .members
            .iter()
            .map(|(t, _)| t.clone())
            .collect();
        for chunk in members.chunks(TASK_CHUNK) {
            let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
            out.extend(self.rt.block_on(q::tombstones_for_pull(
                self.conn,
                &ids,
                window,
                plan.origin.as_deref(),
            ))?);
        }
        // Tasks the user left and is not on again.
        let mine: HashSet<&str> = members.iter().map(String::as_str).collect();
        let mut gone: Vec<String> = self
            .rt
            .block_on(q::removals_for_pull(self.conn, &plan.user, window))?
            .into_iter()
            .map(|(t,)| t)
            .filter(|t| !mine.contains(t.as_str()))
            .collect();
        gone.sort();
        gone.dedup();
        for chunk in gone.chunks(TASK_CHUNK) {
            let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
            out.extend(ids.iter().map(|t| ("tasks".to_string(), t.to_string())));
            let inspections: Vec<String> = self
                .rt
                .block_on(q::inspection_ids_of(self.conn, &ids))?
                .into_iter()
                .map(|(i, _)| i)
                .collect();
            for sub in inspections.chunks(RECORD_CHUNK) {
                let sub: Vec<&str> = sub.iter().map(String::as_str).collect();
                out.extend(
                    sub.iter()
                        .map(|i| ("inspections".to_string(), i.to_string())),
                );
                for table in ["answers", "photos", "reviews"] {
                    for (id,) in self.rt.block_on(q::child_ids_of(self.conn, table, &sub))? {
                        out.push((table.to_string(), id));
                    }
                }
            }
            // The establishments and checklist versions no task of theirs still needs.
            let refs = self.rt.block_on(q::task_refs(self.conn, &ids))?;
            let scope = self.scope();
            let mut ests = HashSet::new();
            let mut versions = HashSet::new();
            for (_, est, template, version) in refs {
                if !scope.establishments.contains_key(&est) {
                    ests.insert(est);
                }
                let key = (template, version);
                if !scope.versions.contains_key(&key) {
                    versions.insert(key);
                }
            }
            out.extend(ests.into_iter().map(|e| ("establishments".to_string(), e)));
            out.extend(
                versions
                    .into_iter()
                    .map(|(t, v)| ("checklist_versions".to_string(), format!("{t}:{v}"))),
            );
        }
        if schema::tables_at(plan.version).any(|t| t.name == "sampling_tasks") {
            out.extend(self.rt.block_on(sample_sync::removed_tasks(
                self.conn, &plan.user, since, plan.now,
            ))?);
        }
        Ok(out)
    }
}

/// The drawn team of each task as the synced `tasks.team` JSON text: officers in draw order,
/// in the shape of `inspections.team`.
async fn task_teams(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<HashMap<String, String>, sqlx::Error> {
    let mut officers = q::team_officers(conn, ids).await?;
    officers.sort_by(|a, b| (&a.task_id, a.position).cmp(&(&b.task_id, b.position)));
    let mut members: HashMap<String, Vec<crate::plan::TeamMember>> = HashMap::new();
    for o in officers {
        members
            .entry(o.task_id)
            .or_default()
            .push(crate::plan::TeamMember::officer(
                o.user_id, o.name, o.badge_no,
            ));
    }
    members
        .into_iter()
        .map(|(task, team)| {
            serde_json::to_string(&team)
                .map(|json| (task, json))
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))
        })
        .collect()
}
