//! SQL of a sample's later facts (migration 0031): one `sample_facts` row per fact, the same
//! date in its `samples.<kind>_on` column (what the deadlines read), and the 复检 lab.

use sqlx::{AnyConnection, FromRow};

use crate::sampling::facts::FactKind;

/// A recorded fact.
#[derive(Debug, Clone, FromRow)]
pub struct FactRow {
    pub sample_id: String,
    pub kind: String,
    pub on_date: String,
    pub note: Option<String>,
    pub recorded_by: String,
    pub recorded_at: i64,
}

/// The `samples` column holding a fact's date.
fn column(kind: FactKind) -> &'static str {
    match kind {
        FactKind::BureauNotified => "bureau_notified_on",
        FactKind::Served => "served_on",
        FactKind::RetestRequested => "retest_requested_on",
        FactKind::ObjectionFiled => "objection_on",
        FactKind::RetestReceived => "retest_received_on",
        FactKind::RetestReported => "retest_reported_on",
        FactKind::DisposalDone => "disposal_done_on",
    }
}

/// The facts of a sample, in the order recorded.
pub async fn facts_of(
    conn: &mut AnyConnection,
    sample_id: &str,
) -> Result<Vec<FactRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sample_id, kind, on_date, note, recorded_by, recorded_at FROM sample_facts \
         WHERE sample_id = $1 ORDER BY recorded_at, kind",
    )
    .bind(sample_id)
    .fetch_all(conn)
    .await
}

/// The date stored for `kind` now (a statement of its own, so it sees a concurrent commit).
pub async fn stored_on(
    conn: &mut AnyConnection,
    sample_id: &str,
    kind: FactKind,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(Option<String>,)> = sqlx::query_as(&format!(
        "SELECT {} FROM samples WHERE id = $1",
        column(kind)
    ))
    .bind(sample_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.and_then(|r| r.0))
}

/// Sets the fact's date on the sample when it has none and appends its row. False, writing
/// nothing, when the sample already has a date for it (a concurrent recorder got there).
pub async fn record(
    conn: &mut AnyConnection,
    r: &FactRow,
    kind: FactKind,
) -> Result<bool, sqlx::Error> {
    let col = column(kind);
    let n = sqlx::query(&format!(
        "UPDATE samples SET {col} = $1, updated_at = $2 WHERE id = $3 AND {col} IS NULL"
    ))
    .bind(&r.on_date)
    .bind(r.recorded_at)
    .bind(&r.sample_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n != 1 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO sample_facts (sample_id, kind, on_date, note, recorded_by, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&r.sample_id)
    .bind(&r.kind)
    .bind(&r.on_date)
    .bind(&r.note)
    .bind(&r.recorded_by)
    .bind(r.recorded_at)
    .execute(conn)
    .await?;
    Ok(true)
}

/// The 复检 lab and items of a sample (set with its 复检 request).
pub async fn retest_of(
    conn: &mut AnyConnection,
    sample_id: &str,
) -> Result<(Option<String>, Option<String>), sqlx::Error> {
    let row: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT retest_lab_id, retest_items FROM samples WHERE id = $1")
            .bind(sample_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.unwrap_or((None, None)))
}

/// Records the 复检 lab and items with the request.
pub async fn set_retest(
    conn: &mut AnyConnection,
    sample_id: &str,
    lab_id: Option<&str>,
    items_json: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE samples SET retest_lab_id = $1, retest_items = $2 WHERE id = $3")
        .bind(lab_id)
        .bind(items_json)
        .bind(sample_id)
        .execute(conn)
        .await?;
    Ok(())
}
