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

/// Revokes the live sessions (and their refresh tokens) of a user, or of one user's device,
/// and returns their ids.
pub async fn revoke_sessions_of(
    conn: &mut AnyConnection,
    user_id: &str,
    device_id: Option<&str>,
    now: i64,
) -> Result<Vec<String>, sqlx::Error> {
    // `$3 IS NULL` needs a typed parameter on PostgreSQL; two statements keep it plain.
    let (tokens, sessions) = match device_id {
        Some(_) => (
            "UPDATE refresh_tokens SET revoked_at = $1 \
             WHERE user_id = $2 AND device_id = $3 AND revoked_at IS NULL",
            "UPDATE sessions SET revoked_at = $1 \
             WHERE user_id = $2 AND device_id = $3 AND revoked_at IS NULL RETURNING id",
        ),
        None => (
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
             RETURNING id",
        ),
    };
    let mut q = sqlx::query(tokens).bind(now).bind(user_id);
    if let Some(d) = device_id {
        q = q.bind(d);
    }
    q.execute(&mut *conn).await?;
    let mut q = sqlx::query_as(sessions).bind(now).bind(user_id);
    if let Some(d) = device_id {
        q = q.bind(d);
    }
    let ids: Vec<(String,)> = q.fetch_all(conn).await?;
    let mut ids: Vec<String> = ids.into_iter().map(|(id,)| id).collect();
    ids.sort();
    Ok(ids)
}

/// Starts a new token family (a session) for a login on a device with its first refresh
/// token, and returns its id. The caller revokes the device's earlier session first (one
/// device holds one session).
pub async fn start_family(
    conn: &mut AnyConnection,
    user_id: &str,
    device_id: &str,
    token_hash: &str,
    expires_at: i64,
    now: i64,
) -> Result<String, sqlx::Error> {
    let family = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, device_id, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&family)
    .bind(user_id)
    .bind(device_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    insert(conn, user_id, device_id, &family, token_hash, expires_at).await?;
    Ok(family)
}

/// The session a presented refresh token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub user_id: String,
    /// The device the token is bound to.
    pub device_id: String,
    pub session_id: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The presented token was live and is now used, and the successor replaces it
    /// (`retry: false`); or it was rotated moments ago and this is the same device's retry
    /// (`retry: true`: the successor stands). The caller still checks the account.
    Issued { family: Family, retry: bool },
    /// The presented token had already been rotated: its whole session is now revoked
    /// (`revoked`: it was live until now).
    Reused { family: Family, revoked: bool },
    /// Presented for another device than its own: its whole session is now revoked.
    WrongDevice { family: Family, revoked: bool },
    /// Unknown, expired or revoked.
    Invalid,
    /// Lost the claim to concurrent rotations twice: refused, nothing revoked here.
    Contended,
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

/// Decides and applies a refresh inside the caller's transaction: nothing is committed here.
pub async fn rotate(
    conn: &mut AnyConnection,
    p: &Presentation<'_>,
    grace_ms: i64,
    new_expires_at: i64,
    now: i64,
) -> Result<Rotation, sqlx::Error> {
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
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            return Ok(Rotation::Invalid);
        };
        let successor: Option<(String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT family_id, expires_at, used_at, revoked_at FROM refresh_tokens \
             WHERE token_hash = $1",
        )
        .bind(p.successor_hash)
        .fetch_optional(&mut *conn)
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
        let family = Family {
            user_id: row.user_id.clone(),
            device_id: row.device_id.clone(),
            session_id: row.family_id.clone(),
        };
        match decision {
            Decision::Invalid => return Ok(Rotation::Invalid),
            Decision::Retry => {
                return Ok(Rotation::Issued {
                    family,
                    retry: true,
                })
            }
            Decision::Rotate => {
                // Conditional on `used_at IS NULL`: of two concurrent rotations of one token
                // only one claims it; the other is decided again.
                let claimed = sqlx::query(
                    "UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL",
                )
                .bind(now)
                .bind(&row.id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if claimed != 1 {
                    continue;
                }
                insert(
                    conn,
                    &row.user_id,
                    &row.device_id,
                    &row.family_id,
                    p.successor_hash,
                    new_expires_at,
                )
                .await?;
                return Ok(Rotation::Issued {
                    family,
                    retry: false,
                });
            }
            Decision::RevokeReused => {
                let revoked = revoke_family(conn, &row.family_id, now).await?;
                return Ok(Rotation::Reused { family, revoked });
            }
            Decision::RevokeWrongDevice => {
                let revoked = revoke_family(conn, &row.family_id, now).await?;
                return Ok(Rotation::WrongDevice { family, revoked });
            }
        }
    }
    Ok(Rotation::Contended)
}

/// Revokes a session: its refresh tokens, and (through `sessions`) its access tokens. True
/// when the session was live until now.
pub async fn revoke_family(
    conn: &mut AnyConnection,
    family_id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family_id)
    .execute(&mut *conn)
    .await?;
    let n = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(family_id)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n == 1)
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

/// The session of a refresh token (live or not), by the token's hash.
pub async fn family_of(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<Family>, sqlx::Error> {
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT user_id, device_id, family_id FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(user_id, device_id, session_id)| Family {
        user_id,
        device_id,
        session_id,
    }))
}
