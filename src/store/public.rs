//! SQL of what the public sees (`crate::public`). Every statement selects public columns only
//! and only published records: issues in state `published` (and their entries, photos and
//! updates), approved inspections of plans whose results are published, drawn plans. Every
//! list is paged or capped; child rows are fetched by the page's ids.

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::{backend_of, batch, placeholders, Backend};
use crate::checklist::rule::ResultCode;
use crate::clock::BureauZone;
use crate::followup::FollowupState;
use crate::public::{
    InspectionType, ListType, PublicEntry, PublicEstablishment, PublicIssue, PublicPhoto,
    PublicPlan, PublicRectification, PublicResult, PublicUpdate,
};

use crate::clock::rfc3339;

fn decode(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("{what} is {value:?}").into())
}

fn result_of(s: &str) -> Result<ResultCode, sqlx::Error> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| decode("a result", s))
}

/// Most rows of one establishment's history of each kind (a shop has a handful a year).
const HISTORY_CAP: i64 = 200;

type IssueRow = (
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<String>,
    i64,
    i64,
);

/// A published issue's columns; its entry counts were stored at publication (migration 0024).
const ISSUE_COLUMNS: &str =
    "i.id, i.issue_no, i.revision, i.revises_id, i.revision_note, i.superseded_by, \
    i.title, i.theme, i.district, i.period_start, i.period_end, i.published_at, i.checkpoint, \
    COALESCE(i.red_count, 0), COALESCE(i.black_count, 0)";

fn issue_of(r: IssueRow) -> PublicIssue {
    PublicIssue {
        id: r.0,
        issue_no: r.1,
        revision: r.2,
        revises_id: r.3,
        revision_note: r.4,
        superseded_by: r.5,
        title: r.6,
        theme: r.7,
        district: r.8,
        period_start: r.9,
        period_end: r.10,
        published_at: r.11.map(rfc3339).unwrap_or_default(),
        audit_checkpoint: r.12,
        red_count: r.13,
        black_count: r.14,
    }
}

/// The public version: changes (at commit) with every write to list issues, entries, entry
/// photos or lifecycle updates (migration 0026's triggers).
pub async fn version(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    Ok(
        sqlx::query_as::<_, (i64,)>("SELECT n FROM public_version WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?
            .0,
    )
}

/// Published issues, newest publication first, and how many there are.
pub async fn issues(
    conn: &mut AnyConnection,
    offset: i64,
    limit: u32,
) -> Result<(Vec<PublicIssue>, i64), sqlx::Error> {
    let (total,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM list_issues WHERE state = 'published'")
            .fetch_one(&mut *conn)
            .await?;
    let rows: Vec<IssueRow> = sqlx::query_as(&format!(
        "SELECT {ISSUE_COLUMNS} FROM list_issues i WHERE i.state = 'published' \
         ORDER BY i.published_at DESC, i.id LIMIT $1 OFFSET $2"
    ))
    .bind(i64::from(limit))
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    Ok((rows.into_iter().map(issue_of).collect(), total))
}

/// One published issue (a draft is not found).
pub async fn issue(conn: &mut AnyConnection, id: &str) -> Result<Option<PublicIssue>, sqlx::Error> {
    let row: Option<IssueRow> = sqlx::query_as(&format!(
        "SELECT {ISSUE_COLUMNS} FROM list_issues i WHERE i.id = $1 AND i.state = 'published'"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(issue_of))
}

/// Which published entries to list.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    /// One issue (any revision); else the current revision of every issue.
    pub issue_id: Option<String>,
    pub establishment_id: Option<String>,
    pub list_type: Option<ListType>,
    pub town: Option<String>,
    pub category: Option<String>,
    /// Issues whose period overlaps `from..=to` (`YYYY-MM-DD`).
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: String,
    issue_id: String,
    issue_no: String,
    list_type: String,
    position: i64,
    establishment_id: String,
    sign_name: String,
    licensed_name: String,
    license_no: Option<String>,
    address: String,
    town: String,
    category: String,
    inspected_on: Option<String>,
    result: Option<String>,
    reason: String,
    measures: Option<String>,
    lng: Option<f64>,
    lat: Option<f64>,
}

/// The filter as SQL: conditions on the issue (`i`), conditions on the entry (`e`, without the
/// join), and the parameters they bind in order.
struct EntryWhere {
    issue: String,
    entry: String,
    params: Vec<String>,
    /// How many of `params` the issue conditions bind (they come first).
    issue_params: usize,
    /// Whether the entry conditions are at most the list type (stored counts answer them).
    counted: bool,
}

fn entry_where(f: &EntryFilter) -> EntryWhere {
    fn bind(cond: &mut Vec<String>, params: &mut Vec<String>, sql: &str, v: &str) {
        params.push(v.to_string());
        cond.push(sql.replace('?', &format!("${}", params.len())));
    }
    let mut issue = vec!["i.state = 'published'".to_string()];
    let mut entry = vec!["1 = 1".to_string()];
    let mut params = Vec::new();
    match &f.issue_id {
        Some(id) => bind(&mut issue, &mut params, "i.id = ?", id),
        None => issue.push("i.superseded_by IS NULL".into()),
    }
    if let Some(v) = &f.from {
        bind(&mut issue, &mut params, "i.period_end >= ?", v);
    }
    if let Some(v) = &f.to {
        bind(&mut issue, &mut params, "i.period_start <= ?", v);
    }
    let issue_params = params.len();
    if let Some(t) = f.list_type {
        bind(&mut entry, &mut params, "e.list_type = ?", t.as_str());
    }
    let counted = f.establishment_id.is_none() && f.town.is_none() && f.category.is_none();
    for (sql, v) in [
        ("e.establishment_id = ?", &f.establishment_id),
        ("e.town = ?", &f.town),
        ("e.category = ?", &f.category),
    ] {
        if let Some(v) = v {
            bind(&mut entry, &mut params, sql, v);
        }
    }
    EntryWhere {
        issue: issue.join(" AND "),
        entry: entry.join(" AND "),
        params,
        issue_params,
        counted,
    }
}

/// Published entries by the filter: black before red, then by position; and their count.
///
/// Both queries walk the matching issues and, per issue, its entries through an index that
/// starts with the issue (migration 0024), whatever the statistics say: the count is a sum
/// over issues (of the counts stored at publication when the filter is at most the list
/// type), and a page reads issues newest first and each one's entries in list order, so it
/// stops after its rows instead of sorting every match.
pub async fn entries(
    conn: &mut AnyConnection,
    f: &EntryFilter,
    offset: i64,
    limit: u32,
) -> Result<(Vec<PublicEntry>, i64), sqlx::Error> {
    let w = entry_where(f);
    let per_issue = match (w.counted, f.list_type) {
        (true, Some(ListType::Red)) => "COALESCE(i.red_count, 0)".to_string(),
        (true, Some(ListType::Black)) => "COALESCE(i.black_count, 0)".to_string(),
        (true, None) => "COALESCE(i.red_count, 0) + COALESCE(i.black_count, 0)".to_string(),
        (false, _) => format!(
            "(SELECT COUNT(*) FROM list_entries e WHERE e.issue_id = i.id AND {})",
            w.entry
        ),
    };
    let count_sql = format!(
        // PostgreSQL sums BIGINTs as NUMERIC: cast back.
        "SELECT CAST(COALESCE(SUM({per_issue}), 0) AS BIGINT) FROM list_issues i WHERE {}",
        w.issue
    );
    // The issue's parameters come first; stored counts use no entry parameter.
    let bound = if w.counted {
        w.issue_params
    } else {
        w.params.len()
    };
    let mut q = sqlx::query_as::<_, (i64,)>(&count_sql);
    for p in &w.params[..bound] {
        q = q.bind(p.as_str());
    }
    let total = q.fetch_one(&mut *conn).await?.0;
    let n = w.params.len();
    let sql = format!(
        "SELECT e.id, e.issue_id, i.issue_no, e.list_type, e.position, e.establishment_id, e.sign_name, \
         e.licensed_name, e.license_no, e.address, e.town, e.category, e.inspected_on, e.result, e.reason, \
         e.measures, e.lng, e.lat \
         FROM list_issues i JOIN list_entries e ON e.issue_id = i.id WHERE {} AND {} \
         ORDER BY i.published_at DESC, i.id, e.list_type, e.position, e.id LIMIT ${} OFFSET ${}",
        w.issue,
        w.entry,
        n + 1,
        n + 2
    );
    let mut q = sqlx::query_as::<_, EntryRow>(&sql);
    for p in &w.params {
        q = q.bind(p.as_str());
    }
    let rows = q
        .bind(i64::from(limit))
        .bind(offset)
        .fetch_all(&mut *conn)
        .await?;
    Ok((with_children(conn, rows).await?, total))
}

/// The page's entries with their photos and lifecycle updates (two queries by id).
async fn with_children(
    conn: &mut AnyConnection,
    rows: Vec<EntryRow>,
) -> Result<Vec<PublicEntry>, sqlx::Error> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut photos: HashMap<String, Vec<PublicPhoto>> = HashMap::new();
    let mut updates: HashMap<(String, String), PublicUpdate> = HashMap::new();
    let backend = backend_of(conn);
    for chunk in ids.chunks(500) {
        let list = placeholders(backend, 1, chunk.len());
        let sql = format!(
            "SELECT lp.entry_id, lp.photo_id FROM list_entry_photos lp WHERE lp.entry_id IN {list} \
             AND NOT EXISTS (SELECT 1 FROM public_photo_takedowns t WHERE t.photo_id = lp.photo_id) \
             ORDER BY lp.entry_id, lp.position"
        );
        let mut q = sqlx::query_as::<_, (String, String)>(&sql);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        for (entry, photo) in q.fetch_all(&mut *conn).await? {
            photos.entry(entry).or_default().push(PublicPhoto {
                preview_url: format!("/public/v1/photos/{photo}/preview"),
                thumbnail_url: format!("/public/v1/photos/{photo}/thumbnail"),
                id: photo,
            });
        }
        let sql = format!(
            "SELECT entry_id, kind, occurred_on, text, created_at FROM list_entry_updates WHERE entry_id IN {list}"
        );
        let mut q = sqlx::query_as::<_, (String, String, String, String, i64)>(&sql);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        for (entry, kind, on, text, at) in q.fetch_all(&mut *conn).await? {
            updates.insert(
                (entry, kind),
                PublicUpdate {
                    occurred_on: on,
                    text,
                    published_at: rfc3339(at),
                },
            );
        }
    }
    rows.into_iter()
        .map(|r| {
            let list_type = ListType::parse(&r.list_type)
                .ok_or_else(|| decode("an entry's list_type", &r.list_type))?;
            let result = r.result.as_deref().map(result_of).transpose()?;
            Ok(PublicEntry {
                photos: photos.remove(&r.id).unwrap_or_default(),
                rectification: updates.remove(&(r.id.clone(), "rectified".into())),
                revocation: updates.remove(&(r.id.clone(), "revoked".into())),
                id: r.id,
                issue_id: r.issue_id,
                issue_no: r.issue_no,
                list_type,
                position: r.position,
                establishment_id: r.establishment_id,
                sign_name: r.sign_name,
                licensed_name: r.licensed_name,
                license_no: r.license_no,
                address: r.address,
                town: r.town,
                category: r.category,
                inspected_on: r.inspected_on,
                result,
                reason: r.reason,
                measures: r.measures,
                lng: r.lng,
                lat: r.lat,
            })
        })
        .collect()
}

type EstablishmentRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
);

const ESTABLISHMENT_COLUMNS: &str =
    "e.id, e.sign_name, e.licensed_name, e.license_no, e.address, e.town, e.category, e.risk_grade";

fn establishment_of(r: EstablishmentRow) -> PublicEstablishment {
    PublicEstablishment {
        id: r.0,
        sign_name: r.1,
        licensed_name: r.2,
        license_no: r.3,
        address: r.4,
        town: r.5,
        category: r.6,
        risk_grade: r.7,
    }
}

/// Public identities by id (any number; 500 per statement), in no particular order.
pub async fn establishments(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<Vec<PublicEstablishment>, sqlx::Error> {
    let backend = backend_of(conn);
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT {ESTABLISHMENT_COLUMNS} FROM establishments e WHERE e.id IN {}",
            placeholders(backend, 1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, EstablishmentRow>(&sql);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        out.extend(
            q.fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(establishment_of),
        );
    }
    Ok(out)
}

/// An establishment's public history: published results, entries in published issues, and the
/// rectification orders of its published inspections (each capped, newest first). None when
/// the establishment has nothing published (an unknown id and an unpublished one look alike).
pub async fn history(
    conn: &mut AnyConnection,
    id: &str,
    zone: BureauZone,
) -> Result<Option<crate::public::PublicHistory>, sqlx::Error> {
    let Some(est) = establishments(conn, &[id.to_string()]).await?.pop() else {
        return Ok(None);
    };
    let inspections = results(
        conn,
        &ResultScope::Establishment(id),
        zone,
        0,
        HISTORY_CAP as u32,
    )
    .await?
    .0;
    let (list_entries, _) = entries(
        conn,
        &EntryFilter {
            establishment_id: Some(id.to_string()),
            ..EntryFilter::default()
        },
        0,
        HISTORY_CAP as u32,
    )
    .await?;
    let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT f.ordered_on, f.deadline, f.state, f.outcome_result FROM followups f \
         JOIN plans p ON p.id = f.plan_id JOIN inspections i ON i.id = f.inspection_id \
         WHERE f.establishment_id = $1 AND p.results_published_at IS NOT NULL AND i.review_state = 'approved' \
         ORDER BY f.ordered_on DESC, f.id LIMIT $2",
    )
    .bind(id)
    .bind(HISTORY_CAP)
    .fetch_all(&mut *conn)
    .await?;
    let rectifications = rows
        .into_iter()
        .map(|(ordered_on, deadline, state, outcome)| {
            Ok(PublicRectification {
                ordered_on,
                deadline,
                state: FollowupState::parse(&state)
                    .ok_or_else(|| decode("a follow-up state", &state))?,
                recheck_result: outcome.as_deref().map(result_of).transpose()?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    if inspections.is_empty() && list_entries.is_empty() {
        return Ok(None);
    }
    Ok(Some(crate::public::PublicHistory {
        establishment: est,
        inspections,
        list_entries,
        rectifications,
    }))
}

/// The establishment of a published history (what [`history`] would answer, without reading
/// it): one row of each part is enough to know there is one.
pub async fn history_subject(
    conn: &mut AnyConnection,
    id: &str,
    zone: BureauZone,
) -> Result<Option<PublicEstablishment>, sqlx::Error> {
    let Some(est) = establishments(conn, &[id.to_string()]).await?.pop() else {
        return Ok(None);
    };
    let (inspections, _) = results(conn, &ResultScope::Establishment(id), zone, 0, 1).await?;
    if !inspections.is_empty() {
        return Ok(Some(est));
    }
    let filter = EntryFilter {
        establishment_id: Some(id.to_string()),
        ..EntryFilter::default()
    };
    let (entries, _) = entries(conn, &filter, 0, 1).await?;
    Ok((!entries.is_empty()).then_some(est))
}

/// Whose published results.
pub enum ResultScope<'a> {
    Plan(&'a str),
    Establishment(&'a str),
}

type ResultRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
);

/// Approved inspections of plans whose results are published (the round's and its rechecks),
/// newest first, and how many there are.
pub async fn results(
    conn: &mut AnyConnection,
    scope: &ResultScope<'_>,
    zone: BureauZone,
    offset: i64,
    limit: u32,
) -> Result<(Vec<PublicResult>, i64), sqlx::Error> {
    let (cond, value) = match scope {
        ResultScope::Plan(id) => ("t.plan_id = $1", *id),
        ResultScope::Establishment(id) => ("i.establishment_id = $1", *id),
    };
    let from =
        "FROM inspections i JOIN tasks t ON t.id = i.task_id JOIN plans p ON p.id = t.plan_id \
        JOIN establishments e ON e.id = i.establishment_id";
    let filter =
        format!("{cond} AND i.review_state = 'approved' AND p.results_published_at IS NOT NULL");
    let (total,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) {from} WHERE {filter}"))
        .bind(value)
        .fetch_one(&mut *conn)
        .await?;
    let rows: Vec<ResultRow> = sqlx::query_as(&format!(
        "SELECT i.id, t.plan_id, p.round_title, t.kind, COALESCE(i.submitted_at, i.started_at), i.override_result, \
         i.computed_result, {ESTABLISHMENT_COLUMNS} {from} WHERE {filter} \
         ORDER BY COALESCE(i.submitted_at, i.started_at) DESC, i.id LIMIT $2 OFFSET $3"
    ))
    .bind(value)
    .bind(i64::from(limit))
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    let items = rows
        .into_iter()
        .map(|r| {
            let result =
                r.5.as_deref()
                    .or(r.6.as_deref())
                    .ok_or_else(|| decode("an approved inspection's result", "null"))?;
            Ok(PublicResult {
                inspection_id: r.0,
                plan_id: r.1,
                round_title: r.2,
                kind: InspectionType::of_task_kind(&r.3)
                    .ok_or_else(|| decode("a task kind", &r.3))?,
                inspected_on: chrono::DateTime::from_timestamp_millis(r.4)
                    .map(|t| zone.date_at(t).to_string())
                    .unwrap_or_default(),
                result: result_of(result)?,
                establishment: establishment_of((r.7, r.8, r.9, r.10, r.11, r.12, r.13, r.14)),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok((items, total))
}

/// Whether a plan's results are published (None: no such plan).
pub async fn results_published(
    conn: &mut AnyConnection,
    plan_id: &str,
) -> Result<Option<bool>, sqlx::Error> {
    let row: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT results_published_at FROM plans WHERE id = $1")
            .bind(plan_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|r| r.0.is_some()))
}

type PlanRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    String,
);

/// Drawn plans, newest draw first, and how many there are.
pub async fn plans(
    conn: &mut AnyConnection,
    offset: i64,
    limit: u32,
) -> Result<(Vec<PublicPlan>, i64), sqlx::Error> {
    let (total,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM plans WHERE current_draw_id IS NOT NULL")
            .fetch_one(&mut *conn)
            .await?;
    let rows: Vec<PlanRow> = sqlx::query_as(
        "SELECT p.id, p.round_title, p.theme, p.period_start, p.period_end, d.drawn_at, d.pool_size, \
         d.drawn_count, p.results_published_at, p.kind FROM plans p JOIN draws d ON d.id = p.current_draw_id \
         ORDER BY d.drawn_at DESC, p.id LIMIT $1 OFFSET $2",
    )
    .bind(i64::from(limit))
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    let items = rows
        .into_iter()
        .map(|r| PublicPlan {
            draw_url: format!("/public/v1/plans/{}/draw", r.0),
            results_url: r.8.map(|_| format!("/public/v1/plans/{}/results", r.0)),
            id: r.0,
            round_title: r.1,
            theme: r.2,
            period_start: r.3,
            period_end: r.4,
            drawn_at: rfc3339(r.5),
            pool_size: r.6,
            drawn_count: r.7,
            results_published_at: r.8.map(rfc3339),
            plan_kind: crate::plan::PlanKind::parse(&r.9).unwrap_or_default(),
        })
        .collect();
    Ok((items, total))
}

/// The SHA-256 of a processed photo attached to an entry of a published issue and not taken
/// down (only those are public; their renditions carry no EXIF).
pub async fn public_photo(
    conn: &mut AnyConnection,
    photo_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT p.sha256 FROM list_entry_photos lp JOIN list_entries e ON e.id = lp.entry_id \
         JOIN list_issues i ON i.id = e.issue_id JOIN photos p ON p.id = lp.photo_id \
         WHERE lp.photo_id = $1 AND i.state = 'published' AND p.processing_status = 'processed' \
         AND NOT EXISTS (SELECT 1 FROM public_photo_takedowns t WHERE t.photo_id = lp.photo_id) LIMIT 1",
    )
    .bind(photo_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.0))
}

/// An entry as exports write it (public columns, lifecycle joined in), read from a batch in
/// the select order of [`export_entries`].
#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct ExportEntryRow {
    pub id: String,
    pub list_type: String,
    pub position: i64,
    pub establishment_id: String,
    pub sign_name: String,
    pub licensed_name: String,
    pub license_no: Option<String>,
    pub address: String,
    pub town: String,
    pub category: String,
    pub inspected_on: Option<String>,
    pub result: Option<String>,
    pub reason: String,
    pub measures: Option<String>,
    pub rectified_text: Option<String>,
    pub rectified_on: Option<String>,
    pub revoked_text: Option<String>,
    pub revoked_on: Option<String>,
    #[serde(deserialize_with = "batch::f64_text")]
    pub lng: Option<f64>,
    #[serde(deserialize_with = "batch::f64_text")]
    pub lat: Option<f64>,
}

/// Where a batch of an issue's entries starts: after this entry in list order (list type,
/// position, id: the order of `list_entries_issue`).
#[derive(Debug, Clone)]
pub struct EntryKey {
    pub list_type: String,
    pub position: i64,
    pub id: String,
}

/// A row read in an issue's list order: where the next batch starts after it.
pub trait InListOrder {
    /// (list type, position, entry id), compared as the database orders them (text by bytes).
    fn order(&self) -> (&str, i64, &str);

    fn key(&self) -> EntryKey {
        let (list_type, position, id) = self.order();
        EntryKey {
            list_type: list_type.to_string(),
            position,
            id: id.to_string(),
        }
    }
}

impl InListOrder for ExportEntryRow {
    fn order(&self) -> (&str, i64, &str) {
        (&self.list_type, self.position, &self.id)
    }
}

impl InListOrder for ExportBasisRow {
    fn order(&self) -> (&str, i64, &str) {
        (&self.list_type, self.position, &self.entry_id)
    }
}

/// An issue's list order (the order of `list_entries_issue`).
const LIST_ORDER: &[&str] = &["e.list_type", "e.position", "e.id"];

/// Reads one batch of an issue's rows (see [`batch`]).
async fn issue_batch<T>(
    conn: &mut AnyConnection,
    columns: &str,
    select: &[batch::Col<'_>],
    joins: &str,
    issue_id: &str,
    key: Option<&EntryKey>,
    limit: i64,
) -> Result<Vec<T>, sqlx::Error>
where
    T: serde::de::DeserializeOwned
        + for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>
        + InListOrder
        + Send
        + Unpin,
{
    use sqlx::Arguments as _;
    let mut args = sqlx::any::AnyArguments::default();
    let bind = |r: Result<(), sqlx::error::BoxDynError>| r.map_err(sqlx::Error::Encode);
    bind(args.add(issue_id.to_string()))?;
    let after = match key {
        None => "",
        Some(k) => {
            bind(args.add(k.list_type.clone()))?;
            bind(args.add(k.position))?;
            bind(args.add(k.id.clone()))?;
            // A row-value comparison: both backends seek the index with it.
            " AND (e.list_type, e.position, e.id) > ($2, $3, $4)"
        }
    };
    // On SQLite the batch's entries come first, in a subquery, then the joins: joined
    // directly, SQLite (once ANALYZE has given it statistics) builds a Bloom filter over the
    // whole joined table for every batch, which made an export three times slower; a
    // subquery has no statistics, so each of its rows costs one index seek per join. It
    // carries only the `columns` the batch reads (all of them cost a quarter more).
    // PostgreSQL is given the joins directly: over such a subquery it plans hash joins that
    // scan the whole joined table per batch, while the LIMIT on the joined rows keeps it to
    // nested loops along the index.
    let from_where = match backend_of(conn) {
        Backend::Sqlite => format!(
            "FROM (SELECT {columns} FROM list_entries e WHERE e.issue_id = $1{after} \
             ORDER BY {order} LIMIT {limit}) e {joins}",
            order = LIST_ORDER.join(", ")
        ),
        Backend::Postgres => {
            format!("FROM list_entries e {joins} WHERE e.issue_id = $1{after}")
        }
    };
    let b = batch::Batch {
        select,
        from_where: &from_where,
        order: LIST_ORDER,
        limit,
    };
    batch::fetch(conn, &b, args, |a: &T, b: &T| a.order().cmp(&b.order())).await
}

/// Up to `limit` entries of one issue after `key`, black list first, in list order. Exports
/// read an issue in such batches (keyset, through the index), so the first rows come without
/// sorting the issue and no connection is held between batches. The caller checks the issue
/// is published (its entries cannot change then).
pub async fn export_entries(
    conn: &mut AnyConnection,
    issue_id: &str,
    key: Option<&EntryKey>,
    limit: i64,
) -> Result<Vec<ExportEntryRow>, sqlx::Error> {
    use batch::{col, real};
    const SELECT: &[batch::Col] = &[
        col("e.id", "id"),
        col("e.list_type", "list_type"),
        col("e.position", "position"),
        col("e.establishment_id", "establishment_id"),
        col("e.sign_name", "sign_name"),
        col("e.licensed_name", "licensed_name"),
        col("e.license_no", "license_no"),
        col("e.address", "address"),
        col("e.town", "town"),
        col("e.category", "category"),
        col("e.inspected_on", "inspected_on"),
        col("e.result", "result"),
        col("e.reason", "reason"),
        col("e.measures", "measures"),
        col("r.text", "rectified_text"),
        col("r.occurred_on", "rectified_on"),
        col("v.text", "revoked_text"),
        col("v.occurred_on", "revoked_on"),
        real("e.lng", "lng"),
        real("e.lat", "lat"),
    ];
    const COLUMNS: &str = "e.id, e.list_type, e.position, e.establishment_id, e.sign_name, \
        e.licensed_name, e.license_no, e.address, e.town, e.category, e.inspected_on, e.result, \
        e.reason, e.measures, e.lng, e.lat";
    let joins = "LEFT JOIN list_entry_updates r ON r.entry_id = e.id AND r.kind = 'rectified' \
                 LEFT JOIN list_entry_updates v ON v.entry_id = e.id AND v.kind = 'revoked'";
    issue_batch(conn, COLUMNS, SELECT, joins, issue_id, key, limit).await
}

/// The inspection an entry rests on, as LIVES' inspections.csv and violations.csv write it:
/// its date and result as listed, the task's kind, and the evaluation (failed item codes) with
/// the checklist version that names them. Public columns only, in the select order of
/// [`export_bases`].
#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct ExportBasisRow {
    pub entry_id: String,
    pub list_type: String,
    pub position: i64,
    pub establishment_id: String,
    pub inspected_on: Option<String>,
    pub result: Option<String>,
    pub task_kind: Option<String>,
    pub evaluation: Option<String>,
    pub template_id: Option<String>,
    pub template_version: Option<i64>,
}

/// Every entry's basis inspection, in the order and batches of [`export_entries`].
pub async fn export_bases(
    conn: &mut AnyConnection,
    issue_id: &str,
    key: Option<&EntryKey>,
    limit: i64,
) -> Result<Vec<ExportBasisRow>, sqlx::Error> {
    use batch::col;
    const SELECT: &[batch::Col] = &[
        col("e.id", "entry_id"),
        col("e.list_type", "list_type"),
        col("e.position", "position"),
        col("e.establishment_id", "establishment_id"),
        col("e.inspected_on", "inspected_on"),
        col("e.result", "result"),
        col("t.kind", "task_kind"),
        col("i.evaluation", "evaluation"),
        col("t.template_id", "template_id"),
        col("t.template_version", "template_version"),
    ];
    const COLUMNS: &str = "e.id, e.list_type, e.position, e.establishment_id, e.inspected_on, \
        e.result, e.inspection_id";
    let joins = "LEFT JOIN inspections i ON i.id = e.inspection_id \
                 LEFT JOIN tasks t ON t.id = i.task_id";
    issue_batch(conn, COLUMNS, SELECT, joins, issue_id, key, limit).await
}

/// A published inspection of one establishment, as its history export writes it.
#[derive(Debug, sqlx::FromRow)]
pub struct ExportHistoryRow {
    /// When it reached the server (Unix ms), dated in the bureau's zone by the caller.
    pub at: i64,
    pub result: Option<String>,
    pub task_kind: String,
    pub evaluation: Option<String>,
    pub template_id: String,
    pub template_version: i64,
}

/// The approved inspections of an establishment in plans whose results are published, oldest
/// first, as a stream (the same set as the public history's `inspections`, uncapped).
pub fn export_history<'c>(
    conn: &'c mut AnyConnection,
    establishment_id: &'c str,
) -> futures::stream::BoxStream<'c, Result<ExportHistoryRow, sqlx::Error>> {
    sqlx::query_as::<_, ExportHistoryRow>(
        "SELECT COALESCE(i.submitted_at, i.started_at) AS at, \
         COALESCE(i.override_result, i.computed_result) AS result, t.kind AS task_kind, \
         i.evaluation, t.template_id, t.template_version \
         FROM inspections i JOIN tasks t ON t.id = i.task_id JOIN plans p ON p.id = t.plan_id \
         WHERE i.establishment_id = $1 AND i.review_state = 'approved' \
         AND p.results_published_at IS NOT NULL \
         ORDER BY COALESCE(i.submitted_at, i.started_at), i.id",
    )
    .bind(establishment_id)
    .fetch(conn)
}

/// The criteria JSON of a published issue (for the exports' 说明).
pub async fn issue_criteria(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT criteria FROM list_issues WHERE id = $1 AND state = 'published'")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|r| r.0))
}
