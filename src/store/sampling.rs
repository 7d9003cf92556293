//! SQL of 食品安全抽检 (migration 0023): labs and lab accounts, the food category tree,
//! samples with their samplers, the append-only custody events, lab results and the stored
//! deadlines per sample.

use sqlx::{AnyConnection, FromRow};

use super::{backend_of, placeholders};

// ---- Labs --------------------------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct LabRow {
    pub id: String,
    pub name: String,
    pub code: String,
    pub created_by: String,
    pub created_at: i64,
}

/// A taken code is a unique violation.
pub async fn insert_lab(conn: &mut AnyConnection, r: &LabRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO labs (id, name, code, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&r.id)
    .bind(&r.name)
    .bind(&r.code)
    .bind(&r.created_by)
    .bind(r.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn labs(conn: &mut AnyConnection) -> Result<Vec<LabRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, code, created_by, created_at FROM labs ORDER BY code")
        .fetch_all(conn)
        .await
}

pub async fn lab(conn: &mut AnyConnection, id: &str) -> Result<Option<LabRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, code, created_by, created_at FROM labs WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The lab of an account: `None` for no such account, `Some(None)` for one without a lab.
pub async fn user_lab(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Option<Option<String>>, sqlx::Error> {
    let row: Option<(Option<String>,)> = sqlx::query_as("SELECT lab_id FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(l,)| l))
}

pub async fn set_user_lab(
    conn: &mut AnyConnection,
    user_id: &str,
    lab_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET lab_id = $1, updated_at = $2 WHERE id = $3")
        .bind(lab_id)
        .bind(now)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

// ---- Food categories ---------------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct CategoryRow {
    pub code: String,
    pub level: i64,
    pub parent_code: Option<String>,
    pub name: String,
    pub microbiological: Option<i64>,
}

const CATEGORY_COLUMNS: &str = "code, level, parent_code, name, microbiological";

pub async fn categories(conn: &mut AnyConnection) -> Result<Vec<CategoryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CATEGORY_COLUMNS} FROM food_categories ORDER BY code"
    ))
    .fetch_all(conn)
    .await
}

pub async fn category(
    conn: &mut AnyConnection,
    code: &str,
) -> Result<Option<CategoryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CATEGORY_COLUMNS} FROM food_categories WHERE code = $1"
    ))
    .bind(code)
    .fetch_optional(conn)
    .await
}

/// Inserts or updates one category (callers insert parents first: the foreign key).
pub async fn upsert_category(
    conn: &mut AnyConnection,
    r: &CategoryRow,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO food_categories (code, level, parent_code, name, microbiological, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (code) DO UPDATE SET \
         level = excluded.level, parent_code = excluded.parent_code, name = excluded.name, \
         microbiological = excluded.microbiological, updated_at = excluded.updated_at",
    )
    .bind(&r.code)
    .bind(r.level)
    .bind(&r.parent_code)
    .bind(&r.name)
    .bind(r.microbiological)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

// ---- Samples -----------------------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct SampleRow {
    pub id: String,
    pub sample_no: String,
    pub sample_no_kind: String,
    pub task_id: Option<String>,
    pub purpose: String,
    pub stage: String,
    pub category_code: String,
    pub establishment_id: String,
    pub premises_name: String,
    pub premises_address: String,
    pub premises_credit_code: Option<String>,
    pub premises_licence_no: Option<String>,
    pub sample_name: String,
    pub lab_id: String,
    pub sampled_at: i64,
    pub lng: f64,
    pub lat: f64,
    pub crs: String,
    pub state: String,
    pub seal_broken: i64,
    pub form: String,
    pub warnings: String,
    pub body_sha256: String,
    pub bureau_notified_on: Option<String>,
    pub served_on: Option<String>,
    pub retest_requested_on: Option<String>,
    pub objection_on: Option<String>,
    pub retest_received_on: Option<String>,
    pub retest_reported_on: Option<String>,
    pub disposal_done_on: Option<String>,
    pub submitted_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const SAMPLE_COLUMNS: &str = "id, sample_no, sample_no_kind, task_id, purpose, stage, category_code, \
    establishment_id, premises_name, premises_address, premises_credit_code, premises_licence_no, \
    sample_name, lab_id, sampled_at, lng, lat, crs, state, seal_broken, form, warnings, body_sha256, \
    bureau_notified_on, served_on, retest_requested_on, objection_on, retest_received_on, \
    retest_reported_on, disposal_done_on, submitted_by, created_at, updated_at";

/// The next sequence of generated numbers for `prefix` on `day` (from 1). The row is locked
/// until the transaction ends, so concurrent submissions get distinct numbers.
pub async fn next_sample_seq(
    conn: &mut AnyConnection,
    prefix: &str,
    day: &str,
) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as(
        "INSERT INTO sample_no_counters (prefix, day, last_seq) VALUES ($1, $2, 1) \
         ON CONFLICT (prefix, day) DO UPDATE SET last_seq = sample_no_counters.last_seq + 1 \
         RETURNING last_seq",
    )
    .bind(prefix)
    .bind(day)
    .fetch_one(conn)
    .await?;
    Ok(n)
}

/// The sync bookkeeping of a written row (migration 0033): the sequence number of the write
/// transaction (`store::sync::next_seq`) and the `user/device` that created the row.
#[derive(Debug, Clone, Copy)]
pub struct Stamp<'a> {
    pub seq: i64,
    pub origin_device: Option<&'a str>,
}

/// A taken id or sample number is a unique violation.
pub async fn insert_sample(
    conn: &mut AnyConnection,
    r: &SampleRow,
    stamp: Stamp<'_>,
) -> Result<(), sqlx::Error> {
    let params = (1..=36)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::query(&format!(
        "INSERT INTO samples ({SAMPLE_COLUMNS}, seq, created_seq, origin_device) VALUES ({params})"
    ))
    .bind(&r.id)
    .bind(&r.sample_no)
    .bind(&r.sample_no_kind)
    .bind(&r.task_id)
    .bind(&r.purpose)
    .bind(&r.stage)
    .bind(&r.category_code)
    .bind(&r.establishment_id)
    .bind(&r.premises_name)
    .bind(&r.premises_address)
    .bind(&r.premises_credit_code)
    .bind(&r.premises_licence_no)
    .bind(&r.sample_name)
    .bind(&r.lab_id)
    .bind(r.sampled_at)
    .bind(r.lng)
    .bind(r.lat)
    .bind(&r.crs)
    .bind(&r.state)
    .bind(r.seal_broken)
    .bind(&r.form)
    .bind(&r.warnings)
    .bind(&r.body_sha256)
    .bind(&r.bureau_notified_on)
    .bind(&r.served_on)
    .bind(&r.retest_requested_on)
    .bind(&r.objection_on)
    .bind(&r.retest_received_on)
    .bind(&r.retest_reported_on)
    .bind(&r.disposal_done_on)
    .bind(&r.submitted_by)
    .bind(r.created_at)
    .bind(r.updated_at)
    .bind(stamp.seq)
    .bind(stamp.seq)
    .bind(stamp.origin_device)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn sample(conn: &mut AnyConnection, id: &str) -> Result<Option<SampleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SAMPLE_COLUMNS} FROM samples WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The id of the sample holding `sample_no`, if any.
pub async fn sample_with_no(
    conn: &mut AnyConnection,
    sample_no: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT id FROM samples WHERE sample_no = $1")
        .bind(sample_no)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(id,)| id))
}

/// A page of one lab's samples, newest first, and the total.
pub async fn lab_samples(
    conn: &mut AnyConnection,
    lab_id: &str,
    page: u32,
    page_size: u32,
) -> Result<(Vec<SampleRow>, i64), sqlx::Error> {
    let offset = i64::from(page.saturating_sub(1)) * i64::from(page_size);
    let rows = sqlx::query_as(&format!(
        "SELECT {SAMPLE_COLUMNS} FROM samples WHERE lab_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(lab_id)
    .bind(i64::from(page_size))
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM samples WHERE lab_id = $1")
        .bind(lab_id)
        .fetch_one(conn)
        .await?;
    Ok((rows, total))
}

/// Sets the custody state (and the broken-seal flag, never cleared); `seq` is the write
/// transaction's sequence number: the samplers' devices pull the change.
pub async fn set_sample_state(
    conn: &mut AnyConnection,
    id: &str,
    state: &str,
    seal_broken: bool,
    now: i64,
    seq: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE samples SET state = $1, seal_broken = CASE WHEN $2 = 1 THEN 1 ELSE seal_broken END, \
         updated_at = $3, seq = $5 WHERE id = $4",
    )
    .bind(state)
    .bind(super::flag(seal_broken))
    .bind(now)
    .bind(id)
    .bind(seq)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_samplers(
    conn: &mut AnyConnection,
    sample_id: &str,
    user_ids: &[String],
) -> Result<(), sqlx::Error> {
    for (i, u) in user_ids.iter().enumerate() {
        sqlx::query(
            "INSERT INTO sample_samplers (sample_id, user_id, position) VALUES ($1, $2, $3)",
        )
        .bind(sample_id)
        .bind(u)
        .bind(i as i64 + 1)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The samplers' user ids, in form order.
pub async fn samplers(
    conn: &mut AnyConnection,
    sample_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT user_id FROM sample_samplers WHERE sample_id = $1 ORDER BY position",
    )
    .bind(sample_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(u,)| u).collect())
}

/// (user id, role, disabled) of the given accounts that exist.
pub async fn accounts(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = placeholders(backend_of(conn), 1, ids.len());
    let sql = format!("SELECT id, role, disabled FROM users WHERE id IN {list}");
    let mut q = sqlx::query_as(&sql);
    for id in ids {
        q = q.bind(id.as_str());
    }
    q.fetch_all(conn).await
}

// ---- Custody -----------------------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct CustodyRow {
    pub id: String,
    pub sample_id: String,
    pub kind: String,
    pub occurred_at: i64,
    pub actor_id: String,
    pub actor_role: String,
    pub place: String,
    pub note: Option<String>,
    pub sample_condition: Option<String>,
    pub seal_intact: Option<i64>,
    pub recorded_at: i64,
}

const CUSTODY_COLUMNS: &str =
    "id, sample_id, kind, occurred_at, actor_id, actor_role, place, note, \
    sample_condition, seal_intact, recorded_at";

/// A sample's events in recorded order.
pub async fn custody_events(
    conn: &mut AnyConnection,
    sample_id: &str,
) -> Result<Vec<CustodyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CUSTODY_COLUMNS} FROM custody_events WHERE sample_id = $1 ORDER BY recorded_at, occurred_at"
    ))
    .bind(sample_id)
    .fetch_all(conn)
    .await
}

/// An event with this id, whichever sample it belongs to.
pub async fn custody_event(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<CustodyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CUSTODY_COLUMNS} FROM custody_events WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn insert_custody(
    conn: &mut AnyConnection,
    r: &CustodyRow,
    stamp: Stamp<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO custody_events ({CUSTODY_COLUMNS}, seq, origin_device) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)"
    ))
    .bind(&r.id)
    .bind(&r.sample_id)
    .bind(&r.kind)
    .bind(r.occurred_at)
    .bind(&r.actor_id)
    .bind(&r.actor_role)
    .bind(&r.place)
    .bind(&r.note)
    .bind(&r.sample_condition)
    .bind(r.seal_intact)
    .bind(r.recorded_at)
    .bind(stamp.seq)
    .bind(stamp.origin_device)
    .execute(conn)
    .await?;
    Ok(())
}

// ---- Sync pulls (sync schema 6) ------------------------------------------------------------
// A sampler's scope: the samples whose samplers they are (fixed at submission, so no
// memberships come or go) and those samples' custody events.

/// A sample as a sampler's device pulls it.
#[derive(Debug, Clone, FromRow)]
pub struct SampleSync {
    pub id: String,
    pub sample_no: String,
    pub establishment_id: String,
    pub lab_id: String,
    pub category_code: String,
    /// The sampling task it was submitted against, if any.
    pub task_id: Option<String>,
    pub state: String,
    pub seal_broken: i64,
    /// The form as submitted (`sampling::form` wire form).
    pub form: String,
    pub origin_device: Option<String>,
    pub created_seq: i64,
}

/// The samples `user` is a sampler of (fixed at submission), by index.
pub async fn sample_ids_of_sampler(
    conn: &mut AnyConnection,
    user: &str,
) -> Result<Vec<(String,)>, sqlx::Error> {
    sqlx::query_as("SELECT sample_id FROM sample_samplers WHERE user_id = $1")
        .bind(user)
        .fetch_all(conn)
        .await
}

/// Samples `ids` changed in `window`.
pub async fn samples_for_pull(
    conn: &mut AnyConnection,
    ids: &[&str],
    window: super::sync::Window,
) -> Result<Vec<SampleSync>, sqlx::Error> {
    super::sync::select_in(
        conn,
        "SELECT s.id, s.sample_no, s.establishment_id, s.lab_id, s.category_code, s.task_id, s.state, s.seal_broken, \
         s.form, s.origin_device, s.created_seq FROM samples s",
        "s.id",
        ids,
        Some((&["s.seq"][..], window)),
        "",
    )
    .await
}

/// A custody event as a sampler's device pulls it.
#[derive(Debug, Clone, FromRow)]
pub struct CustodySync {
    #[sqlx(flatten)]
    pub row: CustodyRow,
    pub origin_device: Option<String>,
    /// Set at insert (the events never change).
    pub seq: i64,
}

/// The custody events of samples `sample_ids` recorded in `window`.
pub async fn custody_for_pull(
    conn: &mut AnyConnection,
    sample_ids: &[&str],
    window: super::sync::Window,
) -> Result<Vec<CustodySync>, sqlx::Error> {
    super::sync::select_in(
        conn,
        "SELECT c.id, c.sample_id, c.kind, c.occurred_at, c.actor_id, c.actor_role, c.place, c.note, \
         c.sample_condition, c.seal_intact, c.recorded_at, c.origin_device, c.seq FROM custody_events c",
        "c.sample_id",
        sample_ids,
        Some((&["c.seq"][..], window)),
        "",
    )
    .await
}

// ---- Lab results -------------------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct ResultRow {
    pub sample_id: String,
    pub lab_id: String,
    pub report_no: String,
    pub overall: String,
    pub source: String,
    pub report_sha256: String,
    pub reported_by: String,
    pub reported_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct ItemRow {
    pub sample_id: String,
    pub position: i64,
    pub name: String,
    pub value: String,
    pub unit: Option<String>,
    pub limit_text: Option<String>,
    pub standard: Option<String>,
    pub method: Option<String>,
    pub verdict: String,
    pub computed_verdict: Option<String>,
    pub disagrees: i64,
    pub microbiological: i64,
}

pub async fn result(
    conn: &mut AnyConnection,
    sample_id: &str,
) -> Result<Option<ResultRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sample_id, lab_id, report_no, overall, source, report_sha256, reported_by, reported_at \
         FROM lab_results WHERE sample_id = $1",
    )
    .bind(sample_id)
    .fetch_optional(conn)
    .await
}

pub async fn result_items(
    conn: &mut AnyConnection,
    sample_id: &str,
) -> Result<Vec<ItemRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sample_id, position, name, value, unit, limit_text, standard, method, verdict, \
         computed_verdict, disagrees, microbiological FROM lab_result_items WHERE sample_id = $1 \
         ORDER BY position",
    )
    .bind(sample_id)
    .fetch_all(conn)
    .await
}

pub async fn insert_result(
    conn: &mut AnyConnection,
    r: &ResultRow,
    items: &[ItemRow],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO lab_results (sample_id, lab_id, report_no, overall, source, report_sha256, \
         reported_by, reported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&r.sample_id)
    .bind(&r.lab_id)
    .bind(&r.report_no)
    .bind(&r.overall)
    .bind(&r.source)
    .bind(&r.report_sha256)
    .bind(&r.reported_by)
    .bind(r.reported_at)
    .execute(&mut *conn)
    .await?;
    // Chunks keep each statement under both backends' parameter limits.
    for chunk in items.chunks(200) {
        let sql = format!(
            "INSERT INTO lab_result_items (sample_id, position, name, value, unit, limit_text, \
             standard, method, verdict, computed_verdict, disagrees, microbiological) VALUES {}",
            placeholders(backend_of(conn), chunk.len(), 12)
        );
        let mut q = sqlx::query(&sql);
        for i in chunk {
            q = q
                .bind(&i.sample_id)
                .bind(i.position)
                .bind(&i.name)
                .bind(&i.value)
                .bind(&i.unit)
                .bind(&i.limit_text)
                .bind(&i.standard)
                .bind(&i.method)
                .bind(&i.verdict)
                .bind(&i.computed_verdict)
                .bind(i.disagrees)
                .bind(i.microbiological);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

// ---- Deadlines ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct DeadlineRow {
    pub sample_id: String,
    pub rule: String,
    pub period_unit: String,
    pub period_days: i64,
    pub start_on: String,
    pub due_on: String,
    pub done_on: Option<String>,
}

const DEADLINE_COLUMNS: &str =
    "sample_id, rule, period_unit, period_days, start_on, due_on, done_on";

/// Replaces a sample's deadlines with `rows`.
pub async fn replace_deadlines(
    conn: &mut AnyConnection,
    sample_id: &str,
    rows: &[DeadlineRow],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sample_deadlines WHERE sample_id = $1")
        .bind(sample_id)
        .execute(&mut *conn)
        .await?;
    for r in rows {
        sqlx::query(&format!(
            "INSERT INTO sample_deadlines ({DEADLINE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&r.sample_id)
        .bind(&r.rule)
        .bind(&r.period_unit)
        .bind(r.period_days)
        .bind(&r.start_on)
        .bind(&r.due_on)
        .bind(&r.done_on)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn deadlines_of(
    conn: &mut AnyConnection,
    sample_id: &str,
) -> Result<Vec<DeadlineRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DEADLINE_COLUMNS} FROM sample_deadlines WHERE sample_id = $1"
    ))
    .bind(sample_id)
    .fetch_all(conn)
    .await
}

/// One open deadline of the reviewers' queue, with what identifies its sample.
#[derive(Debug, Clone, FromRow)]
pub struct QueuedDeadline {
    #[sqlx(flatten)]
    pub deadline: DeadlineRow,
    pub sample_no: String,
    pub sample_name: String,
    pub premises_name: String,
    pub lab_id: String,
}

/// Open deadlines (not done), earliest due first, after the keyset `after` (due_on, sample id,
/// rule): `overdue` those due before `today`, otherwise those due on `today` or later.
pub async fn open_deadlines(
    conn: &mut AnyConnection,
    overdue: bool,
    today: &str,
    after: Option<&(String, String, String)>,
    limit: u32,
) -> Result<Vec<QueuedDeadline>, sqlx::Error> {
    let cmp = if overdue { "<" } else { ">=" };
    let cols =
        "d.sample_id, d.rule, d.period_unit, d.period_days, d.start_on, d.due_on, d.done_on, \
        s.sample_no, s.sample_name, s.premises_name, s.lab_id";
    let from = format!(
        "FROM sample_deadlines d JOIN samples s ON s.id = d.sample_id \
         WHERE d.done_on IS NULL AND d.due_on {cmp} $1"
    );
    match after {
        Some((due, sample, rule)) => {
            sqlx::query_as(&format!(
                "SELECT {cols} {from} AND (d.due_on > $2 OR (d.due_on = $2 AND (d.sample_id > $3 \
                 OR (d.sample_id = $3 AND d.rule > $4)))) \
                 ORDER BY d.due_on, d.sample_id, d.rule LIMIT $5"
            ))
            .bind(today)
            .bind(due)
            .bind(sample)
            .bind(rule)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await
        }
        None => {
            sqlx::query_as(&format!(
                "SELECT {cols} {from} ORDER BY d.due_on, d.sample_id, d.rule LIMIT $2"
            ))
            .bind(today)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await
        }
    }
}

// ---- Savepoints ----------------------------------------------------------------------------
// A sync push applies each pushed sample or custody event in a savepoint of its transaction:
// a record refused after it began writing (or a unique violation, which on PostgreSQL aborts
// the transaction) is undone alone, and the rest of the push stands.

pub async fn savepoint(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SAVEPOINT sample_sync_record")
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn release_savepoint(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("RELEASE SAVEPOINT sample_sync_record")
        .execute(conn)
        .await?;
    Ok(())
}

/// Undoes everything since [`savepoint`] and releases it.
pub async fn rollback_to_savepoint(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("ROLLBACK TO SAVEPOINT sample_sync_record")
        .execute(&mut *conn)
        .await?;
    release_savepoint(conn).await
}
