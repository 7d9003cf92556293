//! Users. Rows decode into the domain [`User`]; the password hash is read only by
//! [`credentials`].

use sqlx::{AnyConnection, FromRow};

use super::Db;
use crate::auth::{NewUser, Role, User};

#[derive(FromRow)]
struct UserRow {
    id: String,
    username: String,
    name: String,
    role: String,
    badge_no: Option<String>,
    phone: Option<String>,
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
            disabled: r.disabled != 0,
            tokens_not_before: r.tokens_not_before,
            created_at: r.created_at,
        })
    }
}

const COLUMNS: &str =
    "id, username, name, role, badge_no, phone, disabled, tokens_not_before, created_at";

/// Inserts an account. A taken username or badge number is a unique violation.
pub async fn insert(
    conn: &mut AnyConnection,
    id: &str,
    new: &NewUser,
    password_hash: &str,
    now: i64,
) -> Result<User, sqlx::Error> {
    let row: UserRow = sqlx::query_as(&format!(
        "INSERT INTO users (id, username, name, role, badge_no, phone, password_hash, disabled, \
         tokens_not_before, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, $8, $8) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(new.username.as_str())
    .bind(&new.name)
    .bind(new.role.as_str())
    .bind(new.badge_no.as_deref())
    .bind(new.phone.as_deref())
    .bind(password_hash)
    .bind(now)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// The account and its password hash, for login only.
pub async fn credentials(
    conn: &mut AnyConnection,
    username: &str,
) -> Result<Option<(User, String)>, sqlx::Error> {
    #[derive(FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: UserRow,
        password_hash: String,
    }
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, password_hash FROM users WHERE username = $1"
    ))
    .bind(username)
    .fetch_optional(conn)
    .await?;
    row.map(|r| Ok((r.user.try_into()?, r.password_hash)))
        .transpose()
}

/// [`by_id_in`] on a pooled connection (the per-request token check).
pub async fn by_id(db: &Db, id: &str) -> Result<Option<User>, sqlx::Error> {
    let mut conn = db.acquire().await?;
    by_id_in(&mut conn, id).await
}

pub async fn by_id_in(conn: &mut AnyConnection, id: &str) -> Result<Option<User>, sqlx::Error> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
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

/// An account by id or by (normalised) username.
#[derive(Debug, Clone, Copy)]
pub enum UserKey<'a> {
    Id(&'a str),
    Username(&'a str),
}

impl UserKey<'_> {
    fn column(self) -> (&'static str, String) {
        match self {
            UserKey::Id(id) => ("id", id.to_owned()),
            UserKey::Username(u) => ("username", u.to_owned()),
        }
    }
}

pub async fn by_key(
    conn: &mut AnyConnection,
    key: UserKey<'_>,
) -> Result<Option<User>, sqlx::Error> {
    let (column, value) = key.column();
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE {column} = $1"))
            .bind(value)
            .fetch_optional(conn)
            .await?;
    row.map(TryInto::try_into).transpose()
}

/// Disables an enabled account; access tokens issued before `now` are refused from the next
/// request on (revoking its sessions and refresh tokens is the caller's other half). False when
/// there is no such enabled account (conditional, so of two concurrent calls one changes it).
pub async fn disable(
    conn: &mut AnyConnection,
    key: UserKey<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (column, value) = key.column();
    let n = sqlx::query(&format!(
        "UPDATE users SET disabled = 1, tokens_not_before = $1, updated_at = $1 \
         WHERE {column} = $2 AND disabled = 0"
    ))
    .bind(now)
    .bind(value)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Re-enables a disabled account; false when there is no such disabled account. Tokens
/// revoked while disabled stay revoked.
pub async fn enable(
    conn: &mut AnyConnection,
    key: UserKey<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (column, value) = key.column();
    let n = sqlx::query(&format!(
        "UPDATE users SET disabled = 0, updated_at = $1 WHERE {column} = $2 AND disabled = 1"
    ))
    .bind(now)
    .bind(value)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}
