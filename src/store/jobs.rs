//! The durable job queue: SQL only, on the caller's connection (`ops::jobs` opens the
//! transactions). On PostgreSQL a job is claimed with `FOR UPDATE SKIP LOCKED`, so several API
//! instances share the work without taking the same job; on SQLite the single writer makes the
//! claim atomic.

use sqlx::{AnyConnection, FromRow};

use super::{backend_of, now_ms, Backend};

#[derive(Debug, Clone, FromRow)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub payload: String,
    pub attempts: i64,
    pub max_attempts: i64,
}

/// Queues a job inside the caller's transaction (it exists only if the change commits).
pub async fn enqueue(
    conn: &mut AnyConnection,
    kind: &str,
    payload: &str,
    max_attempts: i64,
) -> Result<String, sqlx::Error> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO jobs (id, kind, payload, state, attempts, max_attempts, run_after, created_at, updated_at) \
         VALUES ($1, $2, $3, 'queued', 0, $4, $5, $5, $5)",
    )
    .bind(&id)
    .bind(kind)
    .bind(payload)
    .bind(max_attempts)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(id)
}

/// Claims the next runnable job (queued and due, or running with an expired lease — its
/// worker died) for `lease_ms`.
pub async fn claim(conn: &mut AnyConnection, lease_ms: i64) -> Result<Option<Job>, sqlx::Error> {
    let now = now_ms();
    let lock = match backend_of(conn) {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    sqlx::query_as(&format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_until = $1, updated_at = $2 \
         WHERE id = (SELECT id FROM jobs WHERE (state = 'queued' AND run_after <= $2) \
                     OR (state = 'running' AND locked_until < $2) ORDER BY run_after LIMIT 1 {lock}) \
         RETURNING id, kind, payload, attempts, max_attempts"
    ))
    .bind(now + lease_ms)
    .bind(now)
    .fetch_optional(conn)
    .await
}

pub async fn complete(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jobs SET state = 'done', locked_until = NULL, updated_at = $1 WHERE id = $2",
    )
    .bind(now_ms())
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A failed attempt: retried after an exponential backoff, or failed for good after the
/// last attempt. Returns whether it will be retried.
pub async fn fail(conn: &mut AnyConnection, job: &Job, error: &str) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let retry = job.attempts < job.max_attempts;
    let backoff = 5_000i64.saturating_mul(1i64 << job.attempts.clamp(0, 16));
    sqlx::query(
        "UPDATE jobs SET state = $1, run_after = $2, locked_until = NULL, last_error = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(if retry { "queued" } else { "failed" })
    .bind(now + backoff)
    .bind(error.chars().take(2000).collect::<String>())
    .bind(now)
    .bind(&job.id)
    .execute(conn)
    .await?;
    Ok(retry)
}

/// (state, count) of jobs of a kind, for tests and monitoring.
pub async fn counts(
    conn: &mut AnyConnection,
    kind: &str,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT state, COUNT(*) FROM jobs WHERE kind = $1 GROUP BY state ORDER BY state")
        .bind(kind)
        .fetch_all(conn)
        .await
}
