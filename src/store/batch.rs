//! Reading one keyset batch of rows (up to 4,096) for an export.
//!
//! On SQLite the batch crosses the driver as one JSON value: read row by row, the driver's
//! work per row (a worker thread handing each row over a channel, then the `Any` driver
//! converting every value and `FromRow` finding each column by name) was 95 % of a SQLite
//! export's cost; aggregated into one JSON array of row arrays, SQLite writes the text in C
//! and serde reads it back in one pass. Floats cross as text with enough digits to round-trip
//! (SQLite's JSON writes only 15 significant digits, which would move a coordinate's last
//! bits).
//!
//! On PostgreSQL the rows are read as rows: its driver has no such per-row cost, and building
//! the JSON there (`json_build_array` per row, then the aggregate) made an export three times
//! slower in the same benchmark.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::AnyConnection;

use super::{backend_of, Backend};

/// One selected value: its SQL expression and the field it fills.
#[derive(Debug, Clone, Copy)]
pub struct Col<'a> {
    pub expr: &'a str,
    pub name: &'a str,
    /// A double (or NULL); its field reads SQLite's text with [`f64_text`].
    pub real: bool,
}

/// A text, integer or NULL value.
pub const fn col<'a>(expr: &'a str, name: &'a str) -> Col<'a> {
    Col {
        expr,
        name,
        real: false,
    }
}

/// A double.
pub const fn real<'a>(expr: &'a str, name: &'a str) -> Col<'a> {
    Col {
        expr,
        name,
        real: true,
    }
}

/// A batch: `select` over `from_where` (a `FROM … WHERE …` clause) in the order of `order`
/// (expressions, ascending), at most `limit` rows.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub select: &'a [Col<'a>],
    pub from_where: &'a str,
    pub order: &'a [&'a str],
    pub limit: i64,
}

/// The statement reading `b` on `backend`: on SQLite one row and column holding the JSON
/// array of row arrays (NULL when the batch is empty), on PostgreSQL the rows themselves.
pub fn sql(backend: Backend, b: &Batch) -> String {
    let order_by = b.order.join(", ");
    let (from_where, limit) = (b.from_where, b.limit);
    match backend {
        Backend::Postgres => {
            let cols = b
                .select
                .iter()
                .map(|c| format!("{} AS {}", c.expr, c.name))
                .collect::<Vec<_>>()
                .join(", ");
            format!("SELECT {cols} {from_where} ORDER BY {order_by} LIMIT {limit}")
        }
        Backend::Sqlite => {
            let values = b
                .select
                .iter()
                .map(|c| match c.real {
                    false => c.expr.to_string(),
                    true => format!(
                        "CASE WHEN {e} IS NULL THEN NULL ELSE printf('%!.17g', {e}) END",
                        e = c.expr
                    ),
                })
                .collect::<Vec<_>>()
                .join(", ");
            // The aggregate concatenates in whatever order it likes (a subquery's order is no
            // guarantee, and `group_concat(… ORDER BY …)` sorts every batch in a temporary
            // B-tree): [`fetch`] puts the rows back in order. Rows are joined as text: the
            // JSON subtype does not survive the subquery, and re-parsing each row with
            // json() would cost what the aggregate saves.
            format!(
                "SELECT '[' || group_concat(b.j, ',') || ']' FROM \
                 (SELECT json_array({values}) AS j {from_where} \
                 ORDER BY {order_by} LIMIT {limit}) b"
            )
        }
    }
}

/// Reads batch `b` with its placeholders bound to `args`, each row into `T` (by field name
/// on PostgreSQL; in select order from the JSON array on SQLite), in the batch's order, which
/// `cmp` restates over the rows (SQLite's aggregate does not keep it).
pub async fn fetch<'q, T>(
    conn: &mut AnyConnection,
    b: &Batch<'_>,
    args: AnyArguments<'q>,
    cmp: impl FnMut(&T, &T) -> std::cmp::Ordering,
) -> Result<Vec<T>, sqlx::Error>
where
    T: DeserializeOwned + for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin,
{
    let backend = backend_of(conn);
    let statement = sql(backend, b);
    match backend {
        Backend::Postgres => {
            sqlx::query_as_with::<_, T, _>(&statement, args)
                .fetch_all(conn)
                .await
        }
        Backend::Sqlite => {
            let text: Option<String> = sqlx::query_scalar_with(&statement, args)
                .fetch_one(conn)
                .await?;
            let Some(text) = text else {
                return Ok(Vec::new());
            };
            let mut rows: Vec<T> = serde_json::from_str(&text)
                .map_err(|e| sqlx::Error::Decode(format!("a batch of rows: {e}").into()))?;
            rows.sort_by(cmp);
            Ok(rows)
        }
    }
}

/// Reads a [`real`] column back from SQLite's text.
pub fn f64_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    text.map(|t| t.trim().parse::<f64>().map_err(serde::de::Error::custom))
        .transpose()
}
