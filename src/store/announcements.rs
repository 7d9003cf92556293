//! SQL of the sampling announcement (抽检信息公告, migration 0030): drafts, their exclusions,
//! the samples a draft proposes (a reported lab result in the period), the rows copied at
//! publication, and the public reads (published announcements only, public columns only).

use std::collections::HashMap;

use sqlx::{AnyConnection, FromRow};

use super::{backend_of, placeholders};
use crate::clock::rfc3339;
use crate::public::announcement::{PublicAnnouncement, PublicFailedItem, PublicSample};
use crate::sampling::form::Stage;
use crate::sampling::results::Verdict;

#[derive(Debug, Clone, FromRow)]
pub struct AnnouncementRow {
    pub id: String,
    pub announcement_no: String,
    pub title: String,
    pub period_start: String,
    pub period_end: String,
    pub stage: Option<String>,
    pub category_code: Option<String>,
    pub state: String,
    pub qualified_count: i64,
    pub unqualified_count: i64,
    pub published_at: Option<i64>,
    pub published_by: Option<String>,
    pub checkpoint: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, announcement_no, title, period_start, period_end, stage, category_code, \
    state, qualified_count, unqualified_count, published_at, published_by, checkpoint, created_by, \
    created_at, updated_at";

fn decode(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("{what} is {value:?}").into())
}

fn stage_of(s: &str) -> Result<Stage, sqlx::Error> {
    Stage::parse(s).ok_or_else(|| decode("a stage", s))
}

fn verdict_of(s: &str) -> Result<Verdict, sqlx::Error> {
    Verdict::parse(s).ok_or_else(|| decode("a verdict", s))
}

pub async fn insert(conn: &mut AnyConnection, r: &AnnouncementRow) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO announcements ({COLUMNS}) VALUES \
         ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)"
    ))
    .bind(&r.id)
    .bind(&r.announcement_no)
    .bind(&r.title)
    .bind(&r.period_start)
    .bind(&r.period_end)
    .bind(&r.stage)
    .bind(&r.category_code)
    .bind(&r.state)
    .bind(r.qualified_count)
    .bind(r.unqualified_count)
    .bind(r.published_at)
    .bind(&r.published_by)
    .bind(&r.checkpoint)
    .bind(&r.created_by)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<AnnouncementRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM announcements WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A page of announcements, newest first, and the total.
pub async fn page(
    conn: &mut AnyConnection,
    state: Option<&str>,
    page: u32,
    page_size: u32,
) -> Result<(Vec<AnnouncementRow>, i64), sqlx::Error> {
    super::newest_in_state(conn, "announcements", COLUMNS, state, page, page_size).await
}

/// Takes a draft's row lock for the rest of the write transaction (every write to a draft and
/// its publication take it first); false when it is not a draft.
pub async fn lock_draft(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE announcements SET updated_at = updated_at WHERE id = $1 AND state = 'draft'",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Publishes a locked draft with its table counts; false when it is not a draft.
pub async fn publish(
    conn: &mut AnyConnection,
    id: &str,
    by: &str,
    checkpoint: Option<&str>,
    counts: (i64, i64),
    at: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE announcements SET state = 'published', published_at = $1, published_by = $2, \
         checkpoint = $3, qualified_count = $4, unqualified_count = $5, updated_at = $1 \
         WHERE id = $6 AND state = 'draft'",
    )
    .bind(at)
    .bind(by)
    .bind(checkpoint)
    .bind(counts.0)
    .bind(counts.1)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

// ---- The category tree and the proposal -------------------------------------------------

pub async fn category_tree(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, Option<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT code, parent_code FROM food_categories")
        .fetch_all(conn)
        .await
}

pub async fn category_name(
    conn: &mut AnyConnection,
    code: &str,
) -> Result<Option<String>, sqlx::Error> {
    let r: Option<(String,)> = sqlx::query_as("SELECT name FROM food_categories WHERE code = $1")
        .bind(code)
        .fetch_optional(conn)
        .await?;
    Ok(r.map(|r| r.0))
}

/// A sample with a reported lab result, with what the announcement may copy of it.
#[derive(Debug, Clone, FromRow)]
pub struct CandidateRow {
    pub sample_id: String,
    pub sample_no: String,
    pub stage: String,
    pub category_code: String,
    pub category_name: String,
    pub premises_name: String,
    pub premises_licensed_name: String,
    pub premises_address: String,
    pub town: String,
    pub sample_name: String,
    pub form: String,
    pub lab_name: String,
    pub report_no: String,
    pub overall: String,
}

/// Samples whose lab result was reported in `[from, to)` (Unix ms), with `stage` if given, by
/// 抽样单编号.
pub async fn candidates(
    conn: &mut AnyConnection,
    from: i64,
    to: i64,
    stage: Option<&str>,
) -> Result<Vec<CandidateRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.id AS sample_id, s.sample_no, s.stage, s.category_code, c.name AS category_name, \
         s.premises_name, e.licensed_name AS premises_licensed_name, s.premises_address, e.town, \
         s.sample_name, s.form, l.name AS lab_name, r.report_no, r.overall \
         FROM lab_results r JOIN samples s ON s.id = r.sample_id \
         JOIN establishments e ON e.id = s.establishment_id \
         JOIN food_categories c ON c.code = s.category_code \
         JOIN labs l ON l.id = r.lab_id \
         WHERE r.reported_at >= $1 AND r.reported_at < $2 AND ($3 IS NULL OR s.stage = $3) \
         ORDER BY s.sample_no, s.id",
    )
    .bind(from)
    .bind(to)
    .bind(stage)
    .fetch_all(conn)
    .await
}

/// A lab result item: (sample id, position, verdict, the public item).
pub type ItemFactRow = (String, i64, Verdict, PublicFailedItem);

/// The result items of `sample_ids`, by sample and position.
pub async fn result_items(
    conn: &mut AnyConnection,
    sample_ids: &[String],
) -> Result<Vec<ItemFactRow>, sqlx::Error> {
    type Row = (
        String,
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
    );
    let mut out = Vec::new();
    for chunk in sample_ids.chunks(500) {
        let sql = format!(
            "SELECT sample_id, position, name, value, unit, limit_text, standard, verdict \
             FROM lab_result_items WHERE sample_id IN {} ORDER BY sample_id, position",
            placeholders(backend_of(conn), 1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, Row>(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.push((
                r.0,
                r.1,
                verdict_of(&r.7)?,
                PublicFailedItem {
                    name: r.2,
                    value: r.3,
                    unit: r.4,
                    limit: r.5,
                    standard: r.6,
                },
            ));
        }
    }
    Ok(out)
}

// ---- Exclusions --------------------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct ExclusionRow {
    pub announcement_id: String,
    pub sample_id: String,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
}

pub async fn exclusions(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Vec<ExclusionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT announcement_id, sample_id, reason, created_by, created_at \
         FROM announcement_exclusions WHERE announcement_id = $1 ORDER BY sample_id",
    )
    .bind(id)
    .fetch_all(conn)
    .await
}

pub async fn insert_exclusion(
    conn: &mut AnyConnection,
    r: &ExclusionRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO announcement_exclusions (announcement_id, sample_id, reason, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&r.announcement_id)
    .bind(&r.sample_id)
    .bind(&r.reason)
    .bind(&r.created_by)
    .bind(r.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes an exclusion; its reason when there was one.
pub async fn delete_exclusion(
    conn: &mut AnyConnection,
    id: &str,
    sample_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let old: Option<(String,)> = sqlx::query_as(
        "SELECT reason FROM announcement_exclusions WHERE announcement_id = $1 AND sample_id = $2",
    )
    .bind(id)
    .bind(sample_id)
    .fetch_optional(&mut *conn)
    .await?;
    if old.is_some() {
        sqlx::query(
            "DELETE FROM announcement_exclusions WHERE announcement_id = $1 AND sample_id = $2",
        )
        .bind(id)
        .bind(sample_id)
        .execute(conn)
        .await?;
    }
    Ok(old.map(|r| r.0))
}

// ---- Published rows ----------------------------------------------------------------------

/// Copies the tables into the announcement's rows (before its state becomes published).
pub async fn insert_rows(
    conn: &mut AnyConnection,
    id: &str,
    rows: &[(String, PublicSample)],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(100) {
        let sql = format!(
            "INSERT INTO announcement_samples (announcement_id, position, verdict, sample_id, sample_no, \
             premises_name, premises_licensed_name, premises_address, town, sample_name, brand, \
             specification, production_date_or_batch, producer_name, producer_address, category_code, \
             category_name, stage, lab_name, report_no) VALUES {}",
            placeholders(backend_of(conn), chunk.len(), 20)
        );
        let mut q = sqlx::query(&sql);
        for (sample_id, r) in chunk {
            q = q
                .bind(id)
                .bind(r.position)
                .bind(r.verdict.code())
                .bind(sample_id)
                .bind(&r.sample_no)
                .bind(&r.premises_name)
                .bind(&r.premises_licensed_name)
                .bind(&r.premises_address)
                .bind(&r.town)
                .bind(&r.sample_name)
                .bind(&r.brand)
                .bind(&r.specification)
                .bind(&r.production_date_or_batch)
                .bind(&r.producer_name)
                .bind(&r.producer_address)
                .bind(&r.category_code)
                .bind(&r.category_name)
                .bind(r.stage.code())
                .bind(&r.lab_name)
                .bind(&r.report_no);
        }
        q.execute(&mut *conn).await?;
    }
    let items: Vec<(&str, usize, &PublicFailedItem)> = rows
        .iter()
        .flat_map(|(s, r)| {
            r.failed_items
                .iter()
                .enumerate()
                .map(move |(k, i)| (s.as_str(), k, i))
        })
        .collect();
    for chunk in items.chunks(200) {
        let sql = format!(
            "INSERT INTO announcement_items (announcement_id, sample_id, position, name, value, unit, \
             limit_text, standard) VALUES {}",
            placeholders(backend_of(conn), chunk.len(), 8)
        );
        let mut q = sqlx::query(&sql);
        for (sample_id, k, i) in chunk {
            q = q
                .bind(id)
                .bind(*sample_id)
                .bind(*k as i64)
                .bind(&i.name)
                .bind(&i.value)
                .bind(&i.unit)
                .bind(&i.limit)
                .bind(&i.standard);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

// ---- Public reads ------------------------------------------------------------------------

const PUBLIC_COLUMNS: &str =
    "a.id, a.announcement_no, a.title, a.period_start, a.period_end, a.stage, \
    a.category_code, c.name, a.published_at, a.qualified_count, a.unqualified_count";

type PublicRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    i64,
    i64,
);

fn public_of(r: PublicRow) -> Result<PublicAnnouncement, sqlx::Error> {
    Ok(PublicAnnouncement {
        id: r.0,
        announcement_no: r.1,
        title: r.2,
        period_start: r.3,
        period_end: r.4,
        stage: r.5.as_deref().map(stage_of).transpose()?,
        category_code: r.6,
        category_name: r.7,
        published_at: rfc3339(r.8.unwrap_or_default()),
        qualified_count: r.9,
        unqualified_count: r.10,
    })
}

/// Published announcements, newest first, and their number.
pub async fn published(
    conn: &mut AnyConnection,
    offset: i64,
    limit: u32,
) -> Result<(Vec<PublicAnnouncement>, i64), sqlx::Error> {
    let (total,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM announcements WHERE state = 'published'")
            .fetch_one(&mut *conn)
            .await?;
    let rows: Vec<PublicRow> = sqlx::query_as(&format!(
        "SELECT {PUBLIC_COLUMNS} FROM announcements a \
         LEFT JOIN food_categories c ON c.code = a.category_code \
         WHERE a.state = 'published' ORDER BY a.published_at DESC, a.id LIMIT $1 OFFSET $2"
    ))
    .bind(i64::from(limit))
    .bind(offset)
    .fetch_all(conn)
    .await?;
    Ok((
        rows.into_iter().map(public_of).collect::<Result<_, _>>()?,
        total,
    ))
}

/// One published announcement (a draft is not found).
pub async fn published_one(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<PublicAnnouncement>, sqlx::Error> {
    let row: Option<PublicRow> = sqlx::query_as(&format!(
        "SELECT {PUBLIC_COLUMNS} FROM announcements a \
         LEFT JOIN food_categories c ON c.code = a.category_code \
         WHERE a.id = $1 AND a.state = 'published'"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(public_of).transpose()
}

#[derive(FromRow)]
struct SampleRow {
    sample_id: String,
    position: i64,
    verdict: String,
    sample_no: String,
    premises_name: String,
    premises_licensed_name: String,
    premises_address: String,
    town: String,
    sample_name: String,
    brand: String,
    specification: String,
    production_date_or_batch: String,
    producer_name: String,
    producer_address: String,
    category_code: String,
    category_name: String,
    stage: String,
    lab_name: String,
    report_no: String,
}

/// One table of an announcement: (sample id, row) in table order.
pub type Table = Vec<(String, PublicSample)>;

/// The rows of a published announcement: (合格, 不合格), each in table order, the unqualified
/// ones with their failed items. Empty for a draft.
pub async fn published_rows(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<(Table, Table), sqlx::Error> {
    let rows: Vec<SampleRow> = sqlx::query_as(
        "SELECT r.sample_id, r.position, r.verdict, r.sample_no, r.premises_name, r.premises_licensed_name, \
         r.premises_address, r.town, r.sample_name, r.brand, r.specification, r.production_date_or_batch, \
         r.producer_name, r.producer_address, r.category_code, r.category_name, r.stage, r.lab_name, \
         r.report_no FROM announcement_samples r JOIN announcements a ON a.id = r.announcement_id \
         WHERE r.announcement_id = $1 AND a.state = 'published' ORDER BY r.verdict, r.position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    type ItemRow = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let items: Vec<ItemRow> = sqlx::query_as(
        "SELECT sample_id, name, value, unit, limit_text, standard FROM announcement_items \
         WHERE announcement_id = $1 ORDER BY sample_id, position",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    let mut by_sample: HashMap<String, Vec<PublicFailedItem>> = HashMap::new();
    for i in items {
        by_sample.entry(i.0).or_default().push(PublicFailedItem {
            name: i.1,
            value: i.2,
            unit: i.3,
            limit: i.4,
            standard: i.5,
        });
    }
    let (mut qualified, mut unqualified) = (Vec::new(), Vec::new());
    for r in rows {
        let verdict = verdict_of(&r.verdict)?;
        let s = PublicSample {
            position: r.position,
            verdict,
            failed_items: by_sample.remove(&r.sample_id).unwrap_or_default(),
            sample_no: r.sample_no,
            premises_name: r.premises_name,
            premises_licensed_name: r.premises_licensed_name,
            premises_address: r.premises_address,
            town: r.town,
            sample_name: r.sample_name,
            brand: r.brand,
            specification: r.specification,
            production_date_or_batch: r.production_date_or_batch,
            producer_name: r.producer_name,
            producer_address: r.producer_address,
            category_code: r.category_code,
            category_name: r.category_name,
            stage: stage_of(&r.stage)?,
            lab_name: r.lab_name,
            report_no: r.report_no,
        };
        match verdict {
            Verdict::Qualified => qualified.push((r.sample_id, s)),
            Verdict::Unqualified => unqualified.push((r.sample_id, s)),
        }
    }
    Ok((qualified, unqualified))
}
