//! Refresh tokens: stored hashed, bound to a device, rotated on every use.

use sqlx::{AnyConnection, FromRow};

use super::{now_ms, Db};
use crate::auth::session::{decide, Decision, Presented};

pub async fn insert(
    conn: &mut AnyConnection,
    user_id: &str,
    device_id: &str,
    family_id: &str,
    token_hash: &str,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, user_id, device_id, family_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(user_id)
    .bind(device_id)
    .bind(family_id)
    .bind(token_hash)
    .bind(now_ms())
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Starts a new token family (a session) for a login on a device and returns its id. An
/// earlier live session of the same user and device is revoked: one device holds one session.
pub async fn start_family(
    db: &Db,
    user_id: &str,
    device_id: &str,
    token_hash: &str,
    expires_at: i64,
) -> Result<String, sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 \
         WHERE user_id = $2 AND device_id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .bind(device_id)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "UPDATE sessions SET revoked_at = $1 \
         WHERE user_id = $2 AND device_id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .bind(device_id)
    .execute(tx.conn())
    .await?;
    let family = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, device_id, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&family)
    .bind(user_id)
    .bind(device_id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    insert(
        tx.conn(),
        user_id,
        device_id,
        &family,
        token_hash,
        expires_at,
    )
    .await?;
    super::audit(
        tx.conn(),
        Some(user_id),
        "auth.login",
        "device",
        device_id,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(family)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The presented token was live and is now used, and the successor replaces it; or it was
    /// rotated moments ago and this is the same device's retry (the successor stands).
    Issued {
        user_id: String,
        device_id: String,
        session_id: String,
    },
    /// The presented token had already been rotated: its whole session is now revoked.
    Reused,
    /// Presented for another device than its own: its whole session is now revoked.
    WrongDevice,
    /// Unknown, expired or revoked.
    Invalid,
}

#[derive(FromRow)]
struct TokenRow {
    id: String,
    user_id: String,
    device_id: String,
    family_id: String,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
    session_id: Option<String>,
    session_revoked_at: Option<i64>,
}

/// What the refresh endpoint presents.
pub struct Presentation<'a> {
    pub token_hash: &'a str,
    /// Hash of the presented token's successor (derived from the token, so a retry names the
    /// same one).
    pub successor_hash: &'a str,
    /// The `device_id` sent with the refresh, if any.
    pub device_id: Option<&'a str>,
}

pub async fn rotate(
    db: &Db,
    p: &Presentation<'_>,
    grace_ms: i64,
    new_expires_at: i64,
) -> Result<Rotation, sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    // Twice at most: a rotation lost to a concurrent one is decided again as what it now is
    // (usually a retry within the window).
    for _ in 0..2 {
        let row: Option<TokenRow> = sqlx::query_as(
            "SELECT t.id, t.user_id, t.device_id, t.family_id, t.expires_at, t.used_at, \
                    t.revoked_at, s.id AS session_id, s.revoked_at AS session_revoked_at \
             FROM refresh_tokens t LEFT JOIN sessions s ON s.id = t.family_id \
             WHERE t.token_hash = $1",
        )
        .bind(p.token_hash)
        .fetch_optional(tx.conn())
        .await?;
        let Some(row) = row else {
            return Ok(Rotation::Invalid);
        };
        let successor: Option<(String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT family_id, expires_at, used_at, revoked_at FROM refresh_tokens \
             WHERE token_hash = $1",
        )
        .bind(p.successor_hash)
        .fetch_optional(tx.conn())
        .await?;
        let successor_live = matches!(&successor,
            Some((family, expires, None, None)) if *family == row.family_id && *expires > now);
        let presented = Presented {
            device_id: &row.device_id,
            expires_at: row.expires_at,
            used_at: row.used_at,
            revoked: row.revoked_at.is_some()
                || row.session_id.is_none()
                || row.session_revoked_at.is_some(),
            successor_live,
        };
        let decision = decide(&presented, p.device_id, now, grace_ms);
        let (action, answer) = match decision {
            Decision::Invalid => return Ok(Rotation::Invalid),
            Decision::RevokeReused => ("auth.refresh_reuse", Rotation::Reused),
            Decision::RevokeWrongDevice => ("auth.refresh_wrong_device", Rotation::WrongDevice),
            Decision::Retry | Decision::Rotate => {
                let disabled: Option<(i64,)> =
                    sqlx::query_as("SELECT disabled FROM users WHERE id = $1")
                        .bind(&row.user_id)
                        .fetch_optional(tx.conn())
                        .await?;
                if !matches!(disabled, Some((0,))) {
                    return Ok(Rotation::Invalid);
                }
                if decision == Decision::Rotate {
                    // Conditional on `used_at IS NULL`: of two concurrent rotations of one
                    // token only one claims it; the other is decided again.
                    let claimed = sqlx::query(
                        "UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL",
                    )
                    .bind(now)
                    .bind(&row.id)
                    .execute(tx.conn())
                    .await?
                    .rows_affected();
                    if claimed != 1 {
                        continue;
                    }
                    insert(
                        tx.conn(),
                        &row.user_id,
                        &row.device_id,
                        &row.family_id,
                        p.successor_hash,
                        new_expires_at,
                    )
                    .await?;
                } else {
                    super::audit(
                        tx.conn(),
                        Some(&row.user_id),
                        "auth.refresh_retry",
                        "token_family",
                        &row.family_id,
                        None,
                    )
                    .await?;
                }
                tx.commit().await?;
                return Ok(Rotation::Issued {
                    user_id: row.user_id,
                    device_id: row.device_id,
                    session_id: row.family_id,
                });
            }
        };
        revoke_family(tx.conn(), &row.family_id, now).await?;
        super::audit(
            tx.conn(),
            Some(&row.user_id),
            action,
            "device",
            &row.device_id,
            None,
        )
        .await?;
        tx.commit().await?;
        return Ok(answer);
    }
    // Lost the claim twice: treat as reuse without revoking anything ourselves.
    Ok(Rotation::Reused)
}

/// Revokes a session: its refresh tokens, and (through `sessions`) its access tokens.
async fn revoke_family(
    conn: &mut AnyConnection,
    family_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(family_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// True when the session exists, belongs to the user and has not been revoked.
pub async fn session_live(db: &Db, session_id: &str, user_id: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM sessions WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(session_id)
    .bind(user_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.is_some())
}

/// Logout: revokes the family of the presented token. Unknown tokens are ignored (logout is
/// idempotent and reveals nothing).
pub async fn revoke_by_token(db: &Db, token_hash: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(tx.conn())
            .await?;
    if let Some((family, user_id)) = row {
        revoke_family(tx.conn(), &family, now_ms()).await?;
        super::audit(
            tx.conn(),
            Some(&user_id),
            "auth.logout",
            "token_family",
            &family,
            None,
        )
        .await?;
    }
    tx.commit().await
}
