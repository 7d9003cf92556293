//! Refresh tokens: stored hashed, bound to a device, rotated on every use.

use sqlx::{AnyConnection, FromRow};

use super::{now_ms, Db};

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

/// Starts a new token family for a login on a device. An earlier live family of the same user
/// and device is revoked: one device holds one session.
pub async fn start_family(
    db: &Db,
    user_id: &str,
    device_id: &str,
    token_hash: &str,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 \
         WHERE user_id = $2 AND device_id = $3 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(user_id)
    .bind(device_id)
    .execute(tx.conn())
    .await?;
    let family = uuid::Uuid::new_v4().to_string();
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
    tx.commit().await
}

#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The presented token was live; it is now used and `new_hash` replaces it.
    Rotated { user_id: String, device_id: String },
    /// The presented token had already been rotated: its whole family is now revoked.
    Reused,
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
}

pub async fn rotate(
    db: &Db,
    presented_hash: &str,
    new_hash: &str,
    new_expires_at: i64,
) -> Result<Rotation, sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let row: Option<TokenRow> = sqlx::query_as(
        "SELECT id, user_id, device_id, family_id, expires_at, used_at, revoked_at \
         FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(presented_hash)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else {
        return Ok(Rotation::Invalid);
    };
    if row.used_at.is_some() {
        revoke_family(tx.conn(), &row.family_id, now).await?;
        super::audit(
            tx.conn(),
            Some(&row.user_id),
            "auth.refresh_reuse",
            "device",
            &row.device_id,
            None,
        )
        .await?;
        tx.commit().await?;
        return Ok(Rotation::Reused);
    }
    if row.revoked_at.is_some() || row.expires_at <= now {
        return Ok(Rotation::Invalid);
    }
    let disabled: Option<(i64,)> = sqlx::query_as("SELECT disabled FROM users WHERE id = $1")
        .bind(&row.user_id)
        .fetch_optional(tx.conn())
        .await?;
    if !matches!(disabled, Some((0,))) {
        return Ok(Rotation::Invalid);
    }
    // Conditional on `used_at IS NULL`: of two concurrent rotations of one token only one
    // wins; the loser is treated as reuse, as it would be if it came later.
    let claimed =
        sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(&row.id)
            .execute(tx.conn())
            .await?
            .rows_affected();
    if claimed != 1 {
        revoke_family(tx.conn(), &row.family_id, now).await?;
        tx.commit().await?;
        return Ok(Rotation::Reused);
    }
    insert(
        tx.conn(),
        &row.user_id,
        &row.device_id,
        &row.family_id,
        new_hash,
        new_expires_at,
    )
    .await?;
    tx.commit().await?;
    Ok(Rotation::Rotated {
        user_id: row.user_id,
        device_id: row.device_id,
    })
}

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
    .execute(conn)
    .await?;
    Ok(())
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
