//! Reading a batch of rows as one JSON value.
//!
//! Exports read a published issue in keyset batches of up to 4,096 rows. Read row by row, the
//! driver's work per row (on SQLite a worker thread handing each row over a channel, then the
//! `Any` driver converting every value and `FromRow` finding each column by name) was 95 % of
//! a SQLite export's cost. Aggregated into one JSON array of row arrays per batch, the
//! database writes the text in C and serde reads it back in one pass: one value per batch
//! crosses the driver instead of twenty per row.
//!
//! Floats cross as text with enough digits to round-trip: SQLite's JSON writes only 15
//! significant digits, which would move a coordinate's last bits.

use super::Backend;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// One selected value of a batch row.
#[derive(Debug, Clone, Copy)]
pub enum Col<'a> {
    /// Text, integer or NULL: crosses as itself.
    Plain(&'a str),
    /// A double (or NULL): crosses as round-trip text; read it with [`f64_text`].
    Real(&'a str),
}

/// The statement reading one batch: `select` over `from_where` (a `FROM … WHERE …` clause)
/// in the order of `order` (expressions, ascending), cut at `limit`, as one JSON array of row
/// arrays (one row and column; NULL when the batch is empty). Read it with [`rows`].
pub fn sql(
    backend: Backend,
    select: &[Col],
    from_where: &str,
    order: &[&str],
    limit: i64,
) -> String {
    let values = select
        .iter()
        .map(|c| match (c, backend) {
            (Col::Plain(e), _) => (*e).to_string(),
            (Col::Real(e), Backend::Sqlite) => {
                format!("CASE WHEN {e} IS NULL THEN NULL ELSE printf('%!.17g', {e}) END")
            }
            // float8 text is the shortest exact round-trip (PostgreSQL 12+).
            (Col::Real(e), Backend::Postgres) => format!("({e})::text"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let order_by = order.join(", ");
    // The order is restated in the aggregate (a subquery's order is no guarantee), over the
    // keys carried out of the subquery.
    let key_cols: String = (0..order.len())
        .map(|i| format!(", {} AS k{i}", order[i]))
        .collect();
    let keys = (0..order.len())
        .map(|i| format!("b.k{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    // Rows are joined as text: SQLite's JSON subtype does not survive the subquery, and
    // re-parsing each row with json() would cost what the aggregate saves.
    let (array, agg) = match backend {
        Backend::Sqlite => ("json_array", "group_concat(b.j, ','"),
        Backend::Postgres => ("json_build_array", "string_agg(b.j::text, ','"),
    };
    format!(
        "SELECT '[' || {agg} ORDER BY {keys}) || ']' FROM \
         (SELECT {array}({values}) AS j{key_cols} {from_where} ORDER BY {order_by} LIMIT {limit}) b"
    )
}

/// The rows of a batch read with a statement from [`sql`] (each row array into `T`, its
/// fields in select order).
pub fn rows<T: DeserializeOwned>(text: Option<String>) -> Result<Vec<T>, sqlx::Error> {
    match text {
        None => Ok(Vec::new()),
        Some(t) => serde_json::from_str(&t)
            .map_err(|e| sqlx::Error::Decode(format!("a batch of rows: {e}").into())),
    }
}

/// Reads a [`Col::Real`] value back.
pub fn f64_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    text.map(|t| t.trim().parse::<f64>().map_err(serde::de::Error::custom))
        .transpose()
}
