//! The audit log's use cases above the write path: integrating pending entries into the hash
//! chain and the Merkle tree (sequencing is separate from the writes that record entries, so
//! the chain never becomes a lock on them), signing checkpoints, verifying the whole log,
//! proofs, and the reads of the log (themselves recorded: reading the log is an event).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::{Ctx, Error, Result};
use crate::audit::chain::GENESIS;
use crate::audit::checkpoint::{Checkpoint, NoteSigner, NoteVerifier};
use crate::audit::merkle::{self, Hash, NodeId};
use crate::audit::verify::{Break, Report, Verifier};
use crate::audit::{Action, Event, RecordKind};
use crate::store::audit::{self as store, CheckpointRow, Filter, Row};
use crate::store::Db;

/// Entries sequenced per transaction: large enough to amortise the statements, small
/// enough that one transaction stays short.
pub const BATCH: usize = 2000;

/// What one integration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Integrated {
    /// Entries sequenced now.
    pub added: u64,
    /// The tree size after it.
    pub size: u64,
}

fn missing(id: NodeId) -> Error {
    Error::Internal(anyhow::anyhow!(
        "the audit tree lacks node (level {}, index {}): the store is corrupt",
        id.level,
        id.index
    ))
}

/// Sequences up to `batch` committed pending entries in one write transaction: in id order
/// they get the next seqs, their chain hashes, and their leaves and completed subtrees in the
/// tree. Only one integrator runs at a time across instances (see `store::audit::lock_integrator`).
pub async fn integrate(db: &Db, batch: usize) -> Result<Integrated> {
    let mut tx = db.begin_write().await?;
    let conn = tx.conn();
    store::lock_integrator(conn).await?;
    let (size, mut prev) = match store::head(conn).await? {
        Some((seq, h)) => (seq + 1, h),
        None => (0, GENESIS),
    };
    let pending = store::pending(conn, batch).await?;
    if pending.is_empty() {
        return Ok(Integrated { added: 0, size });
    }
    let mut sequenced = Vec::with_capacity(pending.len());
    let mut leaves = Vec::with_capacity(pending.len());
    for (i, row) in pending.iter().enumerate() {
        let seq = size + i as u64;
        let h = row.entry(seq).hash(&prev);
        sequenced.push((row.id, seq, prev, h));
        leaves.push(merkle::leaf_hash(&h));
        prev = h;
    }
    let frontier = store::nodes(conn, &merkle::frontier(size)).await?;
    let nodes =
        merkle::extend(size, &leaves, &mut |id| frontier.get(&id).copied()).map_err(missing)?;
    store::sequence(conn, &sequenced).await?;
    store::insert_nodes(conn, &nodes).await?;
    tx.commit().await?;
    Ok(Integrated {
        added: pending.len() as u64,
        size: size + pending.len() as u64,
    })
}

/// Integrates until nothing is pending (one transaction per batch).
pub async fn integrate_all(db: &Db) -> Result<Integrated> {
    let mut total = Integrated::default();
    loop {
        let r = integrate(db, BATCH).await?;
        total.added += r.added;
        total.size = r.size;
        if r.added < BATCH as u64 {
            return Ok(total);
        }
    }
}

/// The root of the first `size` entries, from the stored tree.
async fn root_of(conn: &mut sqlx::AnyConnection, size: u64) -> Result<Hash> {
    let ids = merkle::nodes_needed(|g| merkle::root(size, g));
    let nodes = store::nodes(conn, &ids).await?;
    merkle::root(size, &mut |id| nodes.get(&id).copied()).map_err(missing)
}

/// Signs a checkpoint of the current tree when it grew since the last one (or when there is
/// none yet). Returns the new checkpoint, or None when there was nothing new to sign.
pub async fn checkpoint(db: &Db, signer: &NoteSigner) -> Result<Option<CheckpointRow>> {
    let mut tx = db.begin_write().await?;
    let conn = tx.conn();
    store::lock_integrator(conn).await?;
    let size = store::tree_size(conn).await?;
    if let Some(last) = store::latest_checkpoint(conn).await? {
        if last.tree_size >= size {
            return Ok(None);
        }
    }
    let root = root_of(conn, size).await?;
    let at = crate::store::now_ms();
    let cp = Checkpoint {
        origin: signer.name().to_owned(),
        size,
        root,
        time_ms: at,
    };
    let note = signer.sign(&cp.body());
    let key = signer.verifier_key();
    store::insert_checkpoint(conn, size, &root, at, &note, &key).await?;
    let row = store::checkpoint_of_size(conn, size).await?;
    tx.commit().await?;
    Ok(row)
}

/// What a publication (of a red/black list issue or a sampling announcement) records: the
/// signed checkpoint note taken just before it, who publishes and when.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The note of the checkpoint covering the log up to the publication (None only while no
    /// checkpoint can be signed: an empty log).
    pub note: Option<String>,
    pub by: String,
    pub at: i64,
}

impl Publication {
    /// The publication event of `record_id`: its state from `from` to `to`, with the time,
    /// the author and the checkpoint note. Callers add their own fields after these.
    pub fn event(
        &self,
        action: Action,
        record: RecordKind,
        record_id: &str,
        from: impl serde::Serialize,
        to: impl serde::Serialize,
    ) -> Event {
        Event::new(action, record, record_id)
            .change("state", from, to)
            .set("published_at", self.at)
            .set("published_by", &self.by)
            .set("checkpoint", &self.note)
    }
}

/// Integrates the pending audit entries and signs a checkpoint of the log (or, when the log
/// has not grown since the last one, takes that one's note), before a publication by `ctx`'s
/// author. Runs outside the publication's own transaction, which comes after it.
pub async fn before_publication(db: &Db, ctx: &Ctx, signer: &NoteSigner) -> Result<Publication> {
    integrate_all(db).await?;
    let note = match checkpoint(db, signer).await? {
        Some(c) => Some(c.note),
        None => latest_checkpoint(db).await?.map(|c| c.note),
    };
    Ok(Publication {
        note,
        by: super::access::author(ctx).to_string(),
        at: crate::store::now_ms(),
    })
}

/// The latest checkpoint, if one was signed.
pub async fn latest_checkpoint(db: &Db) -> Result<Option<CheckpointRow>> {
    let mut conn = db.acquire().await?;
    Ok(store::latest_checkpoint(&mut conn).await?)
}

/// The outcome of verifying the whole log.
#[derive(Debug)]
pub struct Verification {
    /// The report, or the first break found.
    pub result: std::result::Result<Report, Break>,
    /// Entries not yet integrated (not covered by the chain yet).
    pub pending: u64,
}

/// Verifies every sequenced entry (fields, chain, order), the stored tree's root, the latest
/// signed checkpoint and any `older` checkpoint notes an auditor kept (each signature checked
/// with `key`), in one read snapshot, streaming.
pub async fn verify(db: &Db, key: &NoteVerifier, older: &[String]) -> Result<Verification> {
    let mut tx = db.begin_snapshot().await?;
    let checkpoint = store::latest_checkpoint(&mut tx).await?;
    let pending = store::pending_count(&mut tx).await?;
    let notes: Vec<(&str, &NoteVerifier)> = checkpoint
        .iter()
        .map(|c| c.note.as_str())
        .chain(older.iter().map(String::as_str))
        .map(|n| (n, key))
        .collect();
    let mut v = match Verifier::new(&notes) {
        Ok(v) => v,
        Err(b) => {
            return Ok(Verification {
                result: Err(b),
                pending,
            })
        }
    };
    // Reading and decoding rows runs in its own task, checking them in this one: two cores
    // at work. Batches through a bounded channel keep memory bounded.
    let (send, mut recv) = tokio::sync::mpsc::channel::<Vec<crate::audit::verify::Stored>>(8);
    let reader = tokio::spawn(async move {
        let mut failed = None;
        {
            let mut rows = store::stream_sequenced(&mut tx);
            let mut batch = Vec::with_capacity(1024);
            while let Some(s) = rows.next().await {
                match s {
                    Ok(s) => batch.push(s),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
                if batch.len() == 1024 {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(1024));
                    if send.send(full).await.is_err() {
                        break; // the checker stopped at a break
                    }
                }
            }
            if failed.is_none() && !batch.is_empty() {
                let _ = send.send(batch).await;
            }
        }
        (tx, failed)
    });
    'check: while let Some(batch) = recv.recv().await {
        for s in &batch {
            if v.push(s).is_err() {
                break 'check;
            }
        }
    }
    drop(recv);
    let (mut tx, failed) = reader
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("the audit reader failed: {e}")))?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    // The stored tree must give the same root (proofs are served from it).
    let n = v.entries();
    let ids = merkle::nodes_needed(|g| merkle::root(n, g));
    let nodes = store::nodes(&mut tx, &ids).await?;
    let stored_root = merkle::root(n, &mut |id| nodes.get(&id).copied());
    let result = match stored_root {
        Ok(r) => v.finish(Some(r)),
        Err(id) => v.finish(None).and(Err(Break::Tree {
            detail: format!("node (level {}, index {}) is missing", id.level, id.index),
        })),
    };
    Ok(Verification { result, pending })
}

/// An inclusion proof of one entry in a tree of `tree_size` entries.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    pub entry: Row,
    pub tree_size: u64,
    pub leaf: Hash,
    pub root: Hash,
    pub proof: Vec<Hash>,
    /// The signed checkpoint of this tree size, when one was signed.
    pub checkpoint: Option<String>,
}

fn out_of_range(message: String) -> Error {
    Error::invalid("out_of_range", message)
}

/// The tree size a proof is for: `size`, else the latest checkpoint's.
async fn proof_size(conn: &mut sqlx::AnyConnection, size: Option<u64>) -> Result<u64> {
    let current = store::tree_size(conn).await?;
    let size = match size {
        Some(s) => s,
        None => store::latest_checkpoint(conn)
            .await?
            .map(|c| c.tree_size)
            .ok_or_else(|| {
                Error::conflict(
                    "no_checkpoint",
                    "no checkpoint has been signed yet; pass a tree size or retry shortly",
                )
            })?,
    };
    if size > current {
        return Err(out_of_range(format!(
            "the tree has {current} entries, not {size}"
        )));
    }
    Ok(size)
}

/// Proves that entry `seq` is in the tree of `size` entries (default: the latest checkpoint's).
pub async fn proof(db: &Db, seq: u64, size: Option<u64>) -> Result<InclusionProof> {
    let mut conn = db.acquire().await?;
    let size = proof_size(&mut conn, size).await?;
    if seq >= size {
        return Err(out_of_range(format!(
            "entry {seq} is not in the tree of {size} entries (entries are numbered from 0)"
        )));
    }
    let entry = store::entry_at(&mut conn, seq)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("audit entry {seq} is missing")))?;
    let leaf = merkle::leaf_hash(entry.entry_hash.as_deref().unwrap_or_default());
    let ids = merkle::nodes_needed(|g| {
        merkle::inclusion_proof(seq, size, g)?;
        merkle::root(size, g)
    });
    let nodes = store::nodes(&mut conn, &ids).await?;
    let mut get = |id: NodeId| nodes.get(&id).copied();
    let path = merkle::inclusion_proof(seq, size, &mut get).map_err(missing)?;
    let root = merkle::root(size, &mut get).map_err(missing)?;
    let checkpoint = store::checkpoint_of_size(&mut conn, size)
        .await?
        .map(|c| c.note);
    Ok(InclusionProof {
        entry,
        tree_size: size,
        leaf,
        root,
        proof: path,
        checkpoint,
    })
}

/// A consistency proof between two tree sizes.
#[derive(Debug, Clone)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub from_root: Hash,
    pub to_root: Hash,
    pub proof: Vec<Hash>,
    pub from_checkpoint: Option<String>,
    pub to_checkpoint: Option<String>,
}

/// Proves that the tree of `from` entries is a prefix of the tree of `to` (default: the
/// latest checkpoint's): history up to `from` was not rewritten.
pub async fn consistency(db: &Db, from: u64, to: Option<u64>) -> Result<ConsistencyProof> {
    let mut conn = db.acquire().await?;
    let to = proof_size(&mut conn, to).await?;
    if from == 0 || from > to {
        return Err(out_of_range(format!(
            "from must be between 1 and to ({to}), not {from}"
        )));
    }
    let ids = merkle::nodes_needed(|g| {
        merkle::consistency_proof(from, to, g)?;
        merkle::root(from, g)?;
        merkle::root(to, g)
    });
    let nodes = store::nodes(&mut conn, &ids).await?;
    let mut get = |id: NodeId| nodes.get(&id).copied();
    let proof = merkle::consistency_proof(from, to, &mut get).map_err(missing)?;
    let from_root = merkle::root(from, &mut get).map_err(missing)?;
    let to_root = merkle::root(to, &mut get).map_err(missing)?;
    let from_checkpoint = store::checkpoint_of_size(&mut conn, from)
        .await?
        .map(|c| c.note);
    let to_checkpoint = store::checkpoint_of_size(&mut conn, to)
        .await?
        .map(|c| c.note);
    Ok(ConsistencyProof {
        from,
        to,
        from_root,
        to_root,
        proof,
        from_checkpoint,
        to_checkpoint,
    })
}

/// Admins and the system read the whole log; a reviewer only the history of one record of a
/// kind they review ([`RecordKind::reviewer_may_read`]); nobody else anything.
fn may_list(ctx: &Ctx, filter: &Filter) -> Result<()> {
    use crate::auth::Role;
    match ctx.actor.role {
        None | Some(Role::Admin) => Ok(()),
        Some(Role::Reviewer) => {
            let kind = filter.record_type.as_deref().and_then(RecordKind::parse);
            match (kind, &filter.record_id) {
                (Some(k), Some(_)) if k.reviewer_may_read() => Ok(()),
                (Some(k), Some(_)) => Err(Error::forbidden(format!(
                    "reviewers may not read the history of {} records",
                    k.as_str()
                ))),
                _ => Err(Error::forbidden(
                    "reviewers read the history of one record at a time",
                )),
            }
        }
        Some(_) => Err(Error::forbidden(
            "only admins and reviewers read the audit log",
        )),
    }
}

/// Largest page of the listing.
pub const MAX_PAGE: usize = 500;

/// A page of entries matching `filter`, newest first, and whether more follow. Reading the
/// log is itself recorded (`audit_log_read`, with the filter), in the same transaction.
pub async fn list(db: &Db, ctx: &Ctx, filter: &Filter, limit: usize) -> Result<(Vec<Row>, bool)> {
    may_list(ctx, filter)?;
    let limit = limit.clamp(1, MAX_PAGE);
    let mut tx = db.begin_write().await?;
    let mut rows = store::list(tx.conn(), filter, limit + 1).await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let record_id = match (&filter.record_type, &filter.record_id) {
        (Some(t), Some(id)) => format!("{t}/{id}"),
        _ => "-".to_owned(),
    };
    let event = Event::new(Action::AuditLogRead, RecordKind::AuditLog, record_id)
        .set("actor_id", &filter.actor_id)
        .set("record_type", &filter.record_type)
        .set("record_id", &filter.record_id)
        .set("action", &filter.action)
        .set("from_ms", filter.from_ms)
        .set("to_ms", filter.to_ms)
        .set("before_id", filter.before_id)
        .set("returned", rows.len());
    store::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok((rows, more))
}

/// The background integrator: every `every`, integrates what is pending; every
/// `checkpoint_every`, signs a checkpoint if the tree grew. Errors are logged and retried on
/// the next tick. When `stop` turns true it integrates and signs once more, then returns.
pub async fn background(
    db: Db,
    signer: Arc<NoteSigner>,
    every: Duration,
    checkpoint_every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_checkpoint: Option<tokio::time::Instant> = None;
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            r = stop.changed() => r.is_err() || *stop.borrow(),
        };
        match integrate_all(&db).await {
            Ok(r) if r.added > 0 => {
                tracing::debug!(added = r.added, size = r.size, "audit entries integrated")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "audit integration failed; retrying"),
        }
        let due = last_checkpoint.is_none_or(|t| t.elapsed() >= checkpoint_every);
        if due || stopping {
            match checkpoint(&db, &signer).await {
                Ok(Some(c)) => {
                    tracing::info!(size = c.tree_size, "audit checkpoint signed");
                    last_checkpoint = Some(tokio::time::Instant::now());
                }
                Ok(None) => last_checkpoint = Some(tokio::time::Instant::now()),
                Err(e) => tracing::warn!(error = %e, "audit checkpoint failed; retrying"),
            }
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publication_event_records_state_time_author_and_checkpoint() {
        let p = Publication {
            note: Some("note".into()),
            by: "u1".into(),
            at: 42,
        };
        let e = p.event(
            Action::ListIssuePublished,
            RecordKind::ListIssue,
            "i1",
            "draft",
            "published",
        );
        assert_eq!(e.record_id, "i1");
        let fields: Vec<(&str, serde_json::Value, serde_json::Value)> = e
            .changes
            .iter()
            .map(|c| (c.field.as_str(), c.before.clone(), c.after.clone()))
            .collect();
        use serde_json::{json, Value::Null};
        assert_eq!(
            fields,
            vec![
                ("state", json!("draft"), json!("published")),
                ("published_at", Null, json!(42)),
                ("published_by", Null, json!("u1")),
                ("checkpoint", Null, json!("note")),
            ]
        );
        // Without a checkpoint (an empty log) there is no checkpoint field at all.
        let none = Publication { note: None, ..p };
        let e = none.event(
            Action::ListIssuePublished,
            RecordKind::ListIssue,
            "i1",
            "draft",
            "published",
        );
        assert!(e.changes.iter().all(|c| c.field != "checkpoint"));
    }
}
