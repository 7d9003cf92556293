//! The audit log's SQL. Events are appended inside the caller's write transaction, pending
//! (`seq` NULL) until the integrator sequences them.

use sqlx::AnyConnection;

use crate::audit::{Ctx, Event};

/// Appends `events` inside the caller's transaction, so the change and its entries commit
/// together. Multi-row statements: a sync push records dozens of events, and one statement per
/// event cost the push a quarter of its throughput (BENCHMARKS.md).
pub async fn append(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    events: &[Event],
) -> Result<(), sqlx::Error> {
    let at = super::now_ms();
    let backend = super::backend_of(conn);
    for chunk in events.chunks(200) {
        let sql = format!(
            "INSERT INTO audit_events (at, actor_id, actor_role, device_id, request_id, action, \
             record_type, record_id, changes) VALUES {}",
            super::placeholders(backend, chunk.len(), 9)
        );
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = q
                .bind(at)
                .bind(ctx.actor.user_id.as_deref())
                .bind(ctx.actor.role.map(|r| r.as_str()))
                .bind(ctx.actor.device_id.as_deref())
                .bind(ctx.request_id.as_deref())
                .bind(e.action.as_str())
                .bind(e.record.as_str())
                .bind(&e.record_id)
                .bind(e.changes_json());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The tamper-evident layer: sequencing, the Merkle tree's nodes, checkpoints, reads.

use std::collections::HashMap;

use futures::stream::{BoxStream, StreamExt};
use sqlx::Row as _;

use super::{backend_of, Backend};
use crate::audit::chain::Entry;
use crate::audit::merkle::{Hash, NodeId};
use crate::audit::verify::Stored;

/// Every stored column of an entry, in the order [`decode`] reads them.
const COLUMNS: &str = "id, at, actor_id, actor_role, device_id, request_id, action, record_type, \
                       record_id, changes, seq, prev_hash, entry_hash";

/// An entry as stored; `seq` and the hashes are absent while it is pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: i64,
    pub at: i64,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub device_id: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub record_type: String,
    pub record_id: String,
    pub changes: String,
    pub seq: Option<i64>,
    pub prev_hash: Option<Vec<u8>>,
    pub entry_hash: Option<Vec<u8>>,
}

impl Row {
    /// The chain entry of a row at `seq` (its own, or the one the integrator gives it).
    pub fn entry(&self, seq: u64) -> Entry {
        Entry {
            seq,
            id: self.id,
            at: self.at,
            actor_id: self.actor_id.clone(),
            actor_role: self.actor_role.clone(),
            device_id: self.device_id.clone(),
            request_id: self.request_id.clone(),
            action: self.action.clone(),
            record_type: self.record_type.clone(),
            record_id: self.record_id.clone(),
            changes: self.changes.clone(),
        }
    }
}

fn decode(r: &sqlx::any::AnyRow) -> Result<Row, sqlx::Error> {
    Ok(Row {
        id: r.try_get(0)?,
        at: r.try_get(1)?,
        actor_id: r.try_get(2)?,
        actor_role: r.try_get(3)?,
        device_id: r.try_get(4)?,
        request_id: r.try_get(5)?,
        action: r.try_get(6)?,
        record_type: r.try_get(7)?,
        record_id: r.try_get(8)?,
        changes: r.try_get(9)?,
        seq: r.try_get(10)?,
        prev_hash: r.try_get(11)?,
        entry_hash: r.try_get(12)?,
    })
}

fn hash_of(v: Vec<u8>) -> Result<Hash, sqlx::Error> {
    v.try_into()
        .map_err(|_| sqlx::Error::Decode("a stored audit hash is not 32 bytes".into()))
}

/// Serialises integrators across instances for the rest of the transaction. On PostgreSQL an
/// advisory transaction lock; on SQLite the write transaction already excludes other writers.
pub async fn lock_integrator(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    if backend_of(conn) == Backend::Postgres {
        // Any constant names the lock; this one spells "audit".
        sqlx::query("SELECT pg_advisory_xact_lock(6175646974)")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The last sequenced entry: its seq and hash (None for an empty log).
pub async fn head(conn: &mut AnyConnection) -> Result<Option<(u64, Hash)>, sqlx::Error> {
    let row: Option<(i64, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT seq, entry_hash FROM audit_events WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        None => Ok(None),
        Some((seq, h)) => {
            let h = h.ok_or_else(|| {
                sqlx::Error::Decode(format!("audit entry {seq} has no hash").into())
            })?;
            Ok(Some((seq as u64, hash_of(h)?)))
        }
    }
}

/// The number of sequenced entries (the tree size).
pub async fn tree_size(conn: &mut AnyConnection) -> Result<u64, sqlx::Error> {
    Ok(head(conn).await?.map_or(0, |(seq, _)| seq + 1))
}

/// Up to `limit` committed pending entries, oldest id first.
pub async fn pending(conn: &mut AnyConnection, limit: usize) -> Result<Vec<Row>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE seq IS NULL ORDER BY id LIMIT $1"
    ))
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(decode).collect()
}

/// Entries still pending.
pub async fn pending_count(conn: &mut AnyConnection) -> Result<u64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE seq IS NULL")
        .fetch_one(&mut *conn)
        .await?;
    Ok(n as u64)
}

/// Gives entries their place in the chain: (row id, seq, prev hash, entry hash). On
/// PostgreSQL one `UPDATE … FROM (VALUES …)` per 250 entries (a round trip per row was most
/// of the integration's time); on SQLite, in process, one cached statement per row (its
/// planner drives `UPDATE … FROM` by the table, not by the VALUES).
pub async fn sequence(
    conn: &mut AnyConnection,
    entries: &[(i64, u64, Hash, Hash)],
) -> Result<(), sqlx::Error> {
    if backend_of(conn) == Backend::Sqlite {
        for (id, seq, prev, hash) in entries {
            let done = sqlx::query(
                "UPDATE audit_events SET seq = $1, prev_hash = $2, entry_hash = $3 \
                 WHERE id = $4 AND seq IS NULL",
            )
            .bind(*seq as i64)
            .bind(prev.to_vec())
            .bind(hash.to_vec())
            .bind(*id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if done != 1 {
                return Err(sqlx::Error::Protocol(format!(
                    "audit entry {id} was sequenced by another integrator"
                )));
            }
        }
        return Ok(());
    }
    for chunk in entries.chunks(250) {
        let sql = format!(
            "UPDATE audit_events SET seq = v.column2, prev_hash = v.column3, entry_hash = v.column4 \
             FROM (VALUES {}) AS v WHERE audit_events.id = v.column1 AND audit_events.seq IS NULL",
            super::placeholders(Backend::Postgres, chunk.len(), 4)
        );
        let mut q = sqlx::query(&sql);
        for (id, seq, prev, hash) in chunk {
            q = q
                .bind(*id)
                .bind(*seq as i64)
                .bind(prev.to_vec())
                .bind(hash.to_vec());
        }
        let done = q.execute(&mut *conn).await?.rows_affected();
        if done != chunk.len() as u64 {
            // Another integrator got there first (the lock should make this impossible).
            return Err(sqlx::Error::Protocol(format!(
                "sequenced {done} of {} audit entries",
                chunk.len()
            )));
        }
    }
    Ok(())
}

/// Stores new complete subtrees of the tree.
pub async fn insert_nodes(
    conn: &mut AnyConnection,
    nodes: &[(NodeId, Hash)],
) -> Result<(), sqlx::Error> {
    let backend = backend_of(conn);
    for chunk in nodes.chunks(300) {
        let sql = format!(
            "INSERT INTO audit_tree (level, idx, hash) VALUES {}",
            super::placeholders(backend, chunk.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for (id, h) in chunk {
            q = q
                .bind(i64::from(id.level))
                .bind(id.index as i64)
                .bind(h.to_vec());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The stored nodes among `ids` (absent ones are simply missing from the map).
pub async fn nodes(
    conn: &mut AnyConnection,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, sqlx::Error> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(100) {
        let mut sql = String::from("SELECT level, idx, hash FROM audit_tree WHERE ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(" OR ");
            }
            sql.push_str(&format!(
                "(level = ${} AND idx = ${})",
                2 * i + 1,
                2 * i + 2
            ));
        }
        let mut q = sqlx::query_as::<_, (i64, i64, Vec<u8>)>(&sql);
        for id in chunk {
            q = q.bind(i64::from(id.level)).bind(id.index as i64);
        }
        for (level, idx, h) in q.fetch_all(&mut *conn).await? {
            out.insert(
                NodeId {
                    level: level as u8,
                    index: idx as u64,
                },
                hash_of(h)?,
            );
        }
    }
    Ok(out)
}

/// A signed checkpoint as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    pub id: i64,
    pub tree_size: u64,
    pub root: Hash,
    pub at: i64,
    /// The signed note, exactly as published.
    pub note: String,
    pub verifier_key: String,
}

type CheckpointTuple = (i64, i64, Vec<u8>, i64, String, String);

fn checkpoint_row(t: CheckpointTuple) -> Result<CheckpointRow, sqlx::Error> {
    Ok(CheckpointRow {
        id: t.0,
        tree_size: t.1 as u64,
        root: hash_of(t.2)?,
        at: t.3,
        note: t.4,
        verifier_key: t.5,
    })
}

const CHECKPOINT_COLUMNS: &str = "id, tree_size, root_hash, at, note, verifier_key";

/// The newest checkpoint (largest tree, then latest signed).
pub async fn latest_checkpoint(
    conn: &mut AnyConnection,
) -> Result<Option<CheckpointRow>, sqlx::Error> {
    let t: Option<CheckpointTuple> = sqlx::query_as(&format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY tree_size DESC, id DESC LIMIT 1"
    ))
    .fetch_optional(&mut *conn)
    .await?;
    t.map(checkpoint_row).transpose()
}

/// The latest checkpoint signed at exactly `size`, if any.
pub async fn checkpoint_of_size(
    conn: &mut AnyConnection,
    size: u64,
) -> Result<Option<CheckpointRow>, sqlx::Error> {
    let t: Option<CheckpointTuple> = sqlx::query_as(&format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE tree_size = $1 \
         ORDER BY id DESC LIMIT 1"
    ))
    .bind(size as i64)
    .fetch_optional(&mut *conn)
    .await?;
    t.map(checkpoint_row).transpose()
}

pub async fn insert_checkpoint(
    conn: &mut AnyConnection,
    size: u64,
    root: &Hash,
    at: i64,
    note: &str,
    verifier_key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_checkpoints (tree_size, root_hash, at, note, verifier_key) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(size as i64)
    .bind(root.to_vec())
    .bind(at)
    .bind(note)
    .bind(verifier_key)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The sequenced entry at `seq`.
pub async fn entry_at(conn: &mut AnyConnection, seq: u64) -> Result<Option<Row>, sqlx::Error> {
    let r = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE seq = $1"
    ))
    .bind(seq as i64)
    .fetch_optional(&mut *conn)
    .await?;
    r.as_ref().map(decode).transpose()
}

/// Filters of the audit listing; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor_id: Option<String>,
    pub record_type: Option<String>,
    pub record_id: Option<String>,
    pub action: Option<String>,
    /// Unix ms, inclusive.
    pub from_ms: Option<i64>,
    /// Unix ms, exclusive.
    pub to_ms: Option<i64>,
    /// Only entries with a smaller id (the cursor of the previous page).
    pub before_id: Option<i64>,
}

/// Entries matching `filter`, newest first (by id), at most `limit`.
pub async fn list(
    conn: &mut AnyConnection,
    filter: &Filter,
    limit: usize,
) -> Result<Vec<Row>, sqlx::Error> {
    let mut clauses: Vec<String> = Vec::new();
    let mut texts: Vec<&str> = Vec::new();
    let mut ints: Vec<i64> = Vec::new();
    // Text parameters first, then integers: numbered in that order.
    for (col, v) in [
        ("actor_id", &filter.actor_id),
        ("record_type", &filter.record_type),
        ("record_id", &filter.record_id),
        ("action", &filter.action),
    ] {
        if let Some(v) = v {
            texts.push(v);
            clauses.push(format!("{col} = ${}", texts.len()));
        }
    }
    for (cond, v) in [
        ("at >= ", filter.from_ms),
        ("at < ", filter.to_ms),
        ("id < ", filter.before_id),
    ] {
        if let Some(v) = v {
            ints.push(v);
            clauses.push(format!("{cond}${}", texts.len() + ints.len()));
        }
    }
    let wh = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events {wh} ORDER BY id DESC LIMIT ${}",
        texts.len() + ints.len() + 1
    );
    let mut q = sqlx::query(&sql);
    for t in texts {
        q = q.bind(t);
    }
    for i in ints {
        q = q.bind(i);
    }
    let rows = q.bind(limit as i64).fetch_all(&mut *conn).await?;
    rows.iter().map(decode).collect()
}

/// Every sequenced entry in seq order, streamed (bounded memory however long the log).
pub fn stream_sequenced(conn: &mut AnyConnection) -> BoxStream<'_, Result<Stored, sqlx::Error>> {
    // The columns of COLUMNS, spelt out: the query must outlive this call.
    sqlx::query(
        "SELECT id, at, actor_id, actor_role, device_id, request_id, action, record_type, \
         record_id, changes, seq, prev_hash, entry_hash FROM audit_events \
         WHERE seq IS NOT NULL ORDER BY seq",
    )
    .fetch(conn)
    .map(|r| {
        let row = decode(&r?)?;
        let seq = row.seq.unwrap_or_default() as u64;
        Ok(Stored {
            entry: Entry {
                seq,
                id: row.id,
                at: row.at,
                actor_id: row.actor_id,
                actor_role: row.actor_role,
                device_id: row.device_id,
                request_id: row.request_id,
                action: row.action,
                record_type: row.record_type,
                record_id: row.record_id,
                changes: row.changes,
            },
            prev_hash: row.prev_hash,
            entry_hash: row.entry_hash,
        })
    })
    .boxed()
}
