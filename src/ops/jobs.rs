//! Job queue bookkeeping: claiming a job and recording the outcome of a job that has no use
//! case of its own. Each is one short write transaction. They record no audit event: a
//! claim or a lease is the queue's own state, not a change to a record; the use case a job
//! runs (e.g. photo processing in [`super::photos`]) records its own events, and completes
//! its job in the same transaction.

use crate::ops::Result;
use crate::store::jobs::{self as q, Job};
use crate::store::Db;

/// Claims the next runnable job for `lease_ms` (see [`q::claim`]).
pub async fn claim(db: &Db, lease_ms: i64) -> Result<Option<Job>> {
    let mut tx = db.begin_write().await?;
    let job = q::claim(tx.conn(), lease_ms).await?;
    tx.commit().await?;
    Ok(job)
}

/// Marks a job done.
pub async fn complete(db: &Db, id: &str) -> Result<()> {
    let mut tx = db.begin_write().await?;
    q::complete(tx.conn(), id).await?;
    tx.commit().await?;
    Ok(())
}

/// Records a failed attempt; returns whether the job will be retried.
pub async fn fail(db: &Db, job: &Job, error: &str) -> Result<bool> {
    let mut tx = db.begin_write().await?;
    let retry = q::fail(tx.conn(), job, error).await?;
    tx.commit().await?;
    Ok(retry)
}

/// (state, count) of the jobs of a kind, for tests and monitoring.
pub async fn counts(db: &Db, kind: &str) -> Result<Vec<(String, i64)>> {
    let mut conn = db.acquire().await?;
    Ok(q::counts(&mut conn, kind).await?)
}
