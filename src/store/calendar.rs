//! Calendar years admins added (`calendar_years`); they replace the bundled year of the same
//! number.

use sqlx::{AnyConnection, FromRow};

use super::now_ms;

#[derive(Debug, Clone, FromRow)]
pub struct YearRow {
    pub year: i64,
    /// JSON `{off: {name: [dates]}, workdays: [dates]}`.
    pub data: String,
    pub source: Option<String>,
    pub created_by: String,
    pub created_at: i64,
}

/// Every added year, ascending.
pub async fn years(conn: &mut AnyConnection) -> Result<Vec<YearRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT year, data, source, created_by, created_at FROM calendar_years ORDER BY year",
    )
    .fetch_all(conn)
    .await
}

pub async fn year(conn: &mut AnyConnection, year: i64) -> Result<Option<YearRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT year, data, source, created_by, created_at FROM calendar_years WHERE year = $1",
    )
    .bind(year)
    .fetch_optional(conn)
    .await
}

/// Adds or replaces a year.
pub async fn put_year(
    conn: &mut AnyConnection,
    year: i64,
    data: &str,
    source: Option<&str>,
    by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO calendar_years (year, data, source, created_by, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (year) DO UPDATE SET data = excluded.data, source = excluded.source, \
         created_by = excluded.created_by, created_at = excluded.created_at",
    )
    .bind(year)
    .bind(data)
    .bind(source)
    .bind(by)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}
