//! Failed-login counters, kept in the database so several API instances share them.
//!
//! An attempt is *reserved* before the password is checked: in one transaction that holds the
//! counter row's lock, the settled failures and the attempts still in flight are counted, and
//! the attempt is recorded as in flight only if both together are under the limit. Parallel
//! guesses therefore cannot all pass a read-then-check, in one process or across instances.
//! When the attempt ends it settles: a wrong password becomes a failure, anything else is
//! just removed.

use sqlx::AnyConnection;

/// An in-flight attempt lives at most this long (a request that crashed between reserving and
/// settling stops counting after it).
const ATTEMPT_LEASE_MS: i64 = 30_000;

/// What the throttle says about one more attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// The settled failures are at the limit: refuse for this many seconds.
    Refuse {
        retry_after_secs: u64,
    },
    /// Only attempts in flight stand in the way: ask again when they have settled.
    Wait,
}

/// The throttle rule, pure: `failures` settled in the window that started at `window_start`,
/// `in_flight` attempts not yet settled, at most `max` failures per window.
pub fn verdict(
    failures: i64,
    in_flight: i64,
    max: u32,
    window_start: i64,
    window_ms: i64,
    now: i64,
) -> Verdict {
    let max = i64::from(max);
    if failures >= max {
        Verdict::Refuse {
            retry_after_secs: ((window_start + window_ms - now).max(1) as u64).div_ceil(1000),
        }
    } else if failures + in_flight >= max {
        Verdict::Wait
    } else {
        Verdict::Allow
    }
}

/// An attempt in flight, to be settled with [`settle`].
#[derive(Debug)]
pub struct Reservation {
    id: String,
    keys: Vec<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Wrong username or password: a failure on every key.
    Failed,
    /// Right password: the first key (the username) is cleared, the others are untouched.
    Succeeded,
    /// Neither (e.g. a disabled account): nothing is counted.
    Neutral,
}

/// Reserves an attempt on every `(key, max)` inside the caller's transaction, which must be
/// its own and commit at once on `Ok(Ok(reservation))` (the reservation only counts once
/// committed). `Ok(Err(verdict))` (Refuse or Wait) names the first key that stands in the way;
/// the caller then rolls back.
pub async fn reserve(
    conn: &mut AnyConnection,
    limits: &[(&str, u32)],
    window_ms: i64,
    now: i64,
) -> Result<Result<Reservation, Verdict>, sqlx::Error> {
    let id = uuid::Uuid::new_v4().to_string();
    for (key, max) in limits {
        // Touching the counter row first takes its lock (PostgreSQL; SQLite has one writer),
        // so the count below cannot change under us. A window that has passed starts anew.
        let (failures, window_start): (i64, i64) = sqlx::query_as(
            "INSERT INTO login_throttle (scope_key, failures, window_start) VALUES ($1, 0, $2) \
             ON CONFLICT (scope_key) DO UPDATE SET \
               failures = CASE WHEN login_throttle.window_start + $3 <= $2 THEN 0 ELSE login_throttle.failures END, \
               window_start = CASE WHEN login_throttle.window_start + $3 <= $2 THEN $2 ELSE login_throttle.window_start END \
             RETURNING failures, window_start",
        )
        .bind(*key)
        .bind(now)
        .bind(window_ms)
        .fetch_one(&mut *conn)
        .await?;
        let (in_flight,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM login_attempts WHERE scope_key = $1 AND expires_at > $2",
        )
        .bind(*key)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        match verdict(failures, in_flight, *max, window_start, window_ms, now) {
            Verdict::Allow => {}
            other => return Ok(Err(other)),
        }
        sqlx::query("INSERT INTO login_attempts (id, scope_key, expires_at) VALUES ($1, $2, $3)")
            .bind(format!("{id}:{key}"))
            .bind(*key)
            .bind(now + ATTEMPT_LEASE_MS)
            .execute(&mut *conn)
            .await?;
    }
    // Expired leases of these keys go with this transaction (they no longer count anyway).
    for (key, _) in limits {
        sqlx::query("DELETE FROM login_attempts WHERE scope_key = $1 AND expires_at <= $2")
            .bind(*key)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Ok(Reservation {
        id,
        keys: limits.iter().map(|(k, _)| k.to_string()).collect(),
    }))
}

/// Ends an attempt inside the caller's transaction: removes it from the in-flight set and
/// counts its outcome.
pub async fn settle(
    conn: &mut AnyConnection,
    reservation: Reservation,
    outcome: Outcome,
    window_ms: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    for (i, key) in reservation.keys.iter().enumerate() {
        sqlx::query("DELETE FROM login_attempts WHERE id = $1")
            .bind(format!("{}:{key}", reservation.id))
            .execute(&mut *conn)
            .await?;
        match outcome {
            Outcome::Failed => {
                sqlx::query(
                    "INSERT INTO login_throttle (scope_key, failures, window_start) VALUES ($1, 1, $2) \
                     ON CONFLICT (scope_key) DO UPDATE SET \
                       failures = CASE WHEN login_throttle.window_start + $3 <= $2 THEN 1 ELSE login_throttle.failures + 1 END, \
                       window_start = CASE WHEN login_throttle.window_start + $3 <= $2 THEN $2 ELSE login_throttle.window_start END",
                )
                .bind(key)
                .bind(now)
                .bind(window_ms)
                .execute(&mut *conn)
                .await?;
            }
            Outcome::Succeeded if i == 0 => {
                sqlx::query("DELETE FROM login_throttle WHERE scope_key = $1")
                    .bind(key)
                    .execute(&mut *conn)
                    .await?;
            }
            Outcome::Succeeded | Outcome::Neutral => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_failures_refuse_in_flight_attempts_wait() {
        // Limit 5: after 4 failures one more may go on; after 5 the rest of the window waits.
        assert_eq!(verdict(4, 0, 5, 0, 900_000, 1_000), Verdict::Allow);
        assert_eq!(
            verdict(5, 0, 5, 0, 900_000, 1_000),
            Verdict::Refuse {
                retry_after_secs: 899
            }
        );
        // 3 failures and 2 attempts in flight: the sixth must see how those end.
        assert_eq!(verdict(3, 2, 5, 0, 900_000, 1_000), Verdict::Wait);
        assert_eq!(verdict(0, 4, 5, 0, 900_000, 1_000), Verdict::Allow);
        // Never "retry after 0 seconds".
        assert_eq!(
            verdict(9, 0, 5, 0, 900_000, 900_000),
            Verdict::Refuse {
                retry_after_secs: 1
            }
        );
    }
}
