//! Users.

use sqlx::FromRow;

use super::{now_ms, Db};
use crate::auth::Role;

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub name: String,
    pub role: Role,
    pub badge_no: Option<String>,
    pub phone: Option<String>,
    pub password_hash: String,
    pub disabled: bool,
    pub tokens_not_before: i64,
    pub created_at: i64,
}

#[derive(FromRow)]
struct UserRow {
    id: String,
    username: String,
    name: String,
    role: String,
    badge_no: Option<String>,
    phone: Option<String>,
    password_hash: String,
    disabled: i64,
    tokens_not_before: i64,
    created_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = sqlx::Error;
    fn try_from(r: UserRow) -> Result<Self, Self::Error> {
        let role = r
            .role
            .parse::<Role>()
            .map_err(|e| sqlx::Error::Decode(e.into()))?;
        Ok(User {
            id: r.id,
            username: r.username,
            name: r.name,
            role,
            badge_no: r.badge_no,
            phone: r.phone,
            password_hash: r.password_hash,
            disabled: r.disabled != 0,
            tokens_not_before: r.tokens_not_before,
            created_at: r.created_at,
        })
    }
}

const COLUMNS: &str = "id, username, name, role, badge_no, phone, password_hash, disabled, \
                       tokens_not_before, created_at";

pub struct NewUser<'a> {
    pub username: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub badge_no: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub password_hash: &'a str,
}

pub async fn create(db: &Db, new: NewUser<'_>) -> Result<User, sqlx::Error> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let row: UserRow = sqlx::query_as(&format!(
        "INSERT INTO users (id, username, name, role, badge_no, phone, password_hash, disabled, \
         tokens_not_before, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, $8, $8) RETURNING {COLUMNS}"
    ))
    .bind(&id)
    .bind(new.username)
    .bind(new.name)
    .bind(new.role.as_str())
    .bind(new.badge_no)
    .bind(new.phone)
    .bind(new.password_hash)
    .bind(now)
    .fetch_one(tx.conn())
    .await?;
    super::audit(
        tx.conn(),
        None,
        "user.create",
        "user",
        &id,
        Some(new.username),
    )
    .await?;
    tx.commit().await?;
    row.try_into()
}

pub async fn by_username(db: &Db, username: &str) -> Result<Option<User>, sqlx::Error> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE username = $1"))
            .bind(username)
            .fetch_optional(db.pool())
            .await?;
    row.map(TryInto::try_into).transpose()
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<User>, sqlx::Error> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
    row.map(TryInto::try_into).transpose()
}

pub async fn list(db: &Db) -> Result<Vec<User>, sqlx::Error> {
    let rows: Vec<UserRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users ORDER BY username"))
            .fetch_all(db.pool())
            .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Disables the account and revokes every token it holds, in one transaction: refresh tokens
/// are revoked, and access tokens issued before now are refused from the next request on.
/// Returns false when there is no such user.
pub async fn disable(db: &Db, username: &str, actor: Option<&str>) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let id: Option<(String,)> = sqlx::query_as(
        "UPDATE users SET disabled = 1, tokens_not_before = $1, updated_at = $1 \
         WHERE username = $2 RETURNING id",
    )
    .bind(now)
    .bind(username)
    .fetch_optional(tx.conn())
    .await?;
    let Some((id,)) = id else {
        return Ok(false);
    };
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(&id)
    .execute(tx.conn())
    .await?;
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(&id)
        .execute(tx.conn())
        .await?;
    super::audit(tx.conn(), actor, "user.disable", "user", &id, None).await?;
    tx.commit().await?;
    Ok(true)
}

/// Re-enables an account. Tokens revoked while disabled stay revoked.
pub async fn enable(db: &Db, username: &str, actor: Option<&str>) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let id: Option<(String,)> = sqlx::query_as(
        "UPDATE users SET disabled = 0, updated_at = $1 WHERE username = $2 RETURNING id",
    )
    .bind(now)
    .bind(username)
    .fetch_optional(tx.conn())
    .await?;
    let Some((id,)) = id else {
        return Ok(false);
    };
    super::audit(tx.conn(), actor, "user.enable", "user", &id, None).await?;
    tx.commit().await?;
    Ok(true)
}
