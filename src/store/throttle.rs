//! Failed-login counters, kept in the database so several API instances share them.

use super::{now_ms, Db};

/// Returns the seconds until `key` may try again, or None when it is under `max` failures in
/// the current window.
pub async fn blocked_for(
    db: &Db,
    key: &str,
    max: u32,
    window_ms: i64,
) -> Result<Option<u64>, sqlx::Error> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT failures, window_start FROM login_throttle WHERE scope_key = $1")
            .bind(key)
            .fetch_optional(db.pool())
            .await?;
    let now = now_ms();
    Ok(match row {
        Some((failures, start)) if failures >= i64::from(max) && now < start + window_ms => {
            Some(((start + window_ms - now) as u64).div_ceil(1000))
        }
        _ => None,
    })
}

/// Counts one failure for each key; a window that has passed starts again at one.
pub async fn record_failure(db: &Db, keys: &[String], window_ms: i64) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    for key in keys {
        sqlx::query(
            "INSERT INTO login_throttle (scope_key, failures, window_start) VALUES ($1, 1, $2) \
             ON CONFLICT (scope_key) DO UPDATE SET \
               failures = CASE WHEN login_throttle.window_start + $3 <= $2 THEN 1 ELSE login_throttle.failures + 1 END, \
               window_start = CASE WHEN login_throttle.window_start + $3 <= $2 THEN $2 ELSE login_throttle.window_start END",
        )
        .bind(key)
        .bind(now)
        .bind(window_ms)
        .execute(tx.conn())
        .await?;
    }
    tx.commit().await
}

/// A successful login clears the username's counter (not the address's: one address guessing
/// many accounts stays throttled).
pub async fn clear(db: &Db, key: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM login_throttle WHERE scope_key = $1")
        .bind(key)
        .execute(tx.conn())
        .await?;
    tx.commit().await
}
