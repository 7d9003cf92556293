//! The establishment registry.

use sqlx::{AnyConnection, FromRow};

use crate::establishment::{
    Category, Establishment, EstablishmentInput, EstablishmentStatus, QuantGrade, RiskGrade,
    StoredLocation, Warning,
};

/// A registry row as stored; decoded into [`Establishment`] before it leaves the store.
#[derive(Debug, Clone, FromRow)]
struct EstablishmentRow {
    pub id: String,
    pub sign_name: String,
    pub licensed_name: String,
    pub uscc: Option<String>,
    pub license_no: Option<String>,
    pub category: String,
    pub address: String,
    pub town: String,
    pub risk_grade: String,
    pub quant_grade: Option<String>,
    pub status: String,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub raw_lng: Option<f64>,
    pub raw_lat: Option<f64>,
    pub crs: Option<String>,
    pub lng: Option<f64>,
    pub lat: Option<f64>,
    pub warnings: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn bad(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("establishments.{column}: unexpected value {value:?}").into())
}

impl TryFrom<EstablishmentRow> for Establishment {
    type Error = sqlx::Error;
    fn try_from(r: EstablishmentRow) -> Result<Establishment, sqlx::Error> {
        let location = match (r.raw_lng, r.raw_lat, r.crs.as_deref(), r.lng, r.lat) {
            (Some(lng), Some(lat), Some(crs), Some(wgs84_lng), Some(wgs84_lat)) => {
                Some(StoredLocation {
                    lng,
                    lat,
                    crs: crs.parse().map_err(|_| bad("crs", crs))?,
                    wgs84_lng,
                    wgs84_lat,
                })
            }
            _ => None,
        };
        Ok(Establishment {
            category: Category::parse(&r.category).ok_or_else(|| bad("category", &r.category))?,
            risk_grade: RiskGrade::parse(&r.risk_grade)
                .ok_or_else(|| bad("risk_grade", &r.risk_grade))?,
            quant_grade: match r.quant_grade.as_deref() {
                Some(q) => Some(QuantGrade::parse(q).ok_or_else(|| bad("quant_grade", q))?),
                None => None,
            },
            status: EstablishmentStatus::parse(&r.status)
                .ok_or_else(|| bad("status", &r.status))?,
            warnings: serde_json::from_str(&r.warnings)
                .map_err(|e| sqlx::Error::Decode(e.into()))?,
            location,
            id: r.id,
            sign_name: r.sign_name,
            licensed_name: r.licensed_name,
            uscc: r.uscc,
            license_no: r.license_no,
            address: r.address,
            town: r.town,
            contact_name: r.contact_name,
            contact_phone: r.contact_phone,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str = "id, sign_name, licensed_name, uscc, license_no, category, address, town, \
    risk_grade, quant_grade, status, contact_name, contact_phone, raw_lng, raw_lat, crs, lng, lat, \
    warnings, created_at, updated_at";

/// Columns written by an upsert, in bind order (`created_at` is kept on update).
const WRITE_COLUMNS: [&str; 23] = [
    "id",
    "sign_name",
    "licensed_name",
    "uscc",
    "license_no",
    "category",
    "address",
    "town",
    "risk_grade",
    "quant_grade",
    "status",
    "contact_name",
    "contact_phone",
    "raw_lng",
    "raw_lat",
    "crs",
    "lng",
    "lat",
    "warnings",
    "search_text",
    "created_at",
    "updated_at",
    "seq",
];

/// Rows per multi-row statement: 22 parameters each stays under SQLite's 32,766 and
/// PostgreSQL's 65,535 parameter limits.
const CHUNK: usize = 1000;

/// The lower-cased text that name/code substring search runs over.
pub fn search_text(input: &EstablishmentInput) -> String {
    let mut s = String::with_capacity(128);
    for part in [
        Some(input.sign_name.as_str()),
        Some(input.licensed_name.as_str()),
        input.uscc.as_ref().map(|u| u.as_str()),
        input.license_no.as_ref().map(|l| l.as_str()),
    ]
    .into_iter()
    .flatten()
    {
        s.push_str(&part.to_lowercase());
        s.push('\n');
    }
    s
}

/// One row to write: a known id (update) or a fresh one (insert).
pub struct Upsert<'a> {
    pub id: &'a str,
    pub input: &'a EstablishmentInput,
    pub warnings: &'a [Warning],
}

/// Inserts new rows or replaces existing ones by id, in chunks, inside the caller's
/// transaction. A uscc/license_no taken by another id fails with a unique violation.
pub async fn upsert_many(
    conn: &mut AnyConnection,
    rows: &[Upsert<'_>],
    now: i64,
) -> Result<(), sqlx::Error> {
    let backend = super::backend_of(conn);
    // Devices pull registry changes of their tasks' establishments by this sequence.
    let seq = super::sync::next_seq(conn).await?;
    let updates = WRITE_COLUMNS
        .iter()
        .filter(|c| !matches!(**c, "id" | "created_at"))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO establishments ({}) VALUES {} ON CONFLICT (id) DO UPDATE SET {updates}",
            WRITE_COLUMNS.join(", "),
            super::placeholders(backend, chunk.len(), WRITE_COLUMNS.len())
        );
        let mut q = sqlx::query(&sql);
        for row in chunk {
            let i = row.input;
            let loc = i.location.as_ref();
            q = q
                .bind(row.id)
                .bind(i.sign_name.as_str())
                .bind(i.licensed_name.as_str())
                .bind(i.uscc.as_ref().map(|u| u.as_str().to_string()))
                .bind(i.license_no.as_ref().map(|l| l.as_str().to_string()))
                .bind(i.category.code())
                .bind(i.address.as_str())
                .bind(i.town.as_str())
                .bind(i.risk_grade.as_str())
                .bind(i.quant_grade.map(|g| g.as_str()))
                .bind(i.status.as_str())
                .bind(i.contact_name.as_deref())
                .bind(i.contact_phone.as_deref())
                .bind(super::OptF64(loc.map(|l| l.raw().x())))
                .bind(super::OptF64(loc.map(|l| l.raw().y())))
                .bind(loc.map(|l| l.crs().as_str()))
                .bind(super::OptF64(loc.map(|l| l.wgs84().x())))
                .bind(super::OptF64(loc.map(|l| l.wgs84().y())))
                .bind(serde_json::to_string(row.warnings).unwrap_or_else(|_| "[]".into()))
                .bind(search_text(i))
                .bind(now)
                .bind(now)
                .bind(seq);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Replaces an existing row; returns false when there is none.
pub async fn update(
    conn: &mut AnyConnection,
    id: &str,
    input: &EstablishmentInput,
    warnings: &[Warning],
    now: i64,
) -> Result<bool, sqlx::Error> {
    let exists: Option<(String,)> = sqlx::query_as("SELECT id FROM establishments WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_none() {
        return Ok(false);
    }
    upsert_many(
        conn,
        &[Upsert {
            id,
            input,
            warnings,
        }],
        now,
    )
    .await?;
    Ok(true)
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<Establishment>, sqlx::Error> {
    let row: Option<EstablishmentRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM establishments WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Establishment::try_from).transpose()
}

/// An existing registry entry holding one of the given codes.
#[derive(Debug, Clone, FromRow)]
pub struct CodeOwner {
    pub id: String,
    pub uscc: Option<String>,
    pub license_no: Option<String>,
}

/// The entries owning any of `usccs` or `license_nos`, queried in chunks.
pub async fn owners_of_codes(
    conn: &mut AnyConnection,
    usccs: &[String],
    license_nos: &[String],
) -> Result<Vec<CodeOwner>, sqlx::Error> {
    let mut out = Vec::new();
    for (column, codes) in [("uscc", usccs), ("license_no", license_nos)] {
        for chunk in codes.chunks(CHUNK) {
            // `(p1, p2, ...)`: one row of placeholders is an IN list.
            let list = super::placeholders(super::backend_of(conn), 1, chunk.len());
            let sql =
                format!("SELECT id, uscc, license_no FROM establishments WHERE {column} IN {list}");
            let mut q = sqlx::query_as::<_, CodeOwner>(&sql);
            for c in chunk {
                q = q.bind(c.as_str());
            }
            out.extend(q.fetch_all(&mut *conn).await?);
        }
    }
    Ok(out)
}

/// Search filters; all optional and combined with AND.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Lower-cased substring of names or codes.
    pub q: Option<String>,
    pub uscc: Option<String>,
    pub license_no: Option<String>,
    pub town: Option<String>,
    pub category: Option<String>,
    pub risk_grades: Vec<String>,
    pub status: Option<String>,
    /// WGS-84 centre (lng, lat) and radius in metres.
    pub near: Option<(f64, f64, f64)>,
    pub page: u32,
    pub page_size: u32,
}

enum Param {
    Text(String),
    Real(f64),
}

fn bind_params<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    params: &[Param],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for p in params {
        q = match p {
            Param::Text(t) => q.bind(t.clone()),
            Param::Real(f) => q.bind(*f),
        };
    }
    q
}

/// Metres per degree of latitude on the mean sphere (geo's haversine radius × π/180).
const M_PER_DEG: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

/// One page of matches and the total count. With `near`, results are ordered by distance;
/// otherwise by sign name.
pub async fn search(
    conn: &mut AnyConnection,
    s: &Search,
) -> Result<(Vec<Establishment>, i64), sqlx::Error> {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let push = |params: &mut Vec<Param>, p: Param| {
        params.push(p);
        format!("${}", params.len())
    };
    if let Some(q) = &s.q {
        let escaped = q
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let p = push(&mut params, Param::Text(format!("%{escaped}%")));
        clauses.push(format!("search_text LIKE {p} ESCAPE '\\'"));
    }
    for (col, v) in [
        ("uscc", &s.uscc),
        ("license_no", &s.license_no),
        ("town", &s.town),
        ("category", &s.category),
        ("status", &s.status),
    ] {
        if let Some(v) = v {
            let p = push(&mut params, Param::Text(v.clone()));
            clauses.push(format!("{col} = {p}"));
        }
    }
    if !s.risk_grades.is_empty() {
        let list: Vec<String> = s
            .risk_grades
            .iter()
            .map(|g| push(&mut params, Param::Text(g.clone())))
            .collect();
        clauses.push(format!("risk_grade IN ({})", list.join(",")));
    }
    let mut order = "sign_name, id".to_string();
    if let Some((lng0, lat0, radius)) = s.near {
        // Index-friendly bounding box first, then an equirectangular distance test (plain
        // arithmetic, so it runs on both backends): within 0.1% of haversine at district scale.
        let (min_lng, min_lat, max_lng, max_lat) =
            crate::geo::bbox_around(geo_types::Point::new(lng0, lat0), radius);
        let (a, b, c, d) = (
            push(&mut params, Param::Real(min_lat)),
            push(&mut params, Param::Real(max_lat)),
            push(&mut params, Param::Real(min_lng)),
            push(&mut params, Param::Real(max_lng)),
        );
        clauses.push(format!(
            "lat BETWEEN {a} AND {b} AND lng BETWEEN {c} AND {d}"
        ));
        let k = push(&mut params, Param::Real(lat0.to_radians().cos()));
        let x0 = push(&mut params, Param::Real(lng0));
        let y0 = push(&mut params, Param::Real(lat0));
        let dist2 =
            format!("(((lng - {x0}) * {k}) * ((lng - {x0}) * {k}) + (lat - {y0}) * (lat - {y0}))");
        let r2 = push(&mut params, Param::Real((radius / M_PER_DEG).powi(2)));
        clauses.push(format!("{dist2} <= {r2}"));
        order = format!("{dist2}, id");
    }
    let where_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let page_size = s.page_size.clamp(1, 500);
    let offset = i64::from(s.page.max(1) - 1) * i64::from(page_size);
    // COUNT(*) OVER () counts all matches in the same scan that yields the page. With a
    // substring filter the matches are materialised first: otherwise PostgreSQL walks the
    // sign_name index over the whole table (random heap reads) to avoid a small sort.
    let sql = if s.q.is_some() {
        format!(
            "WITH m AS MATERIALIZED (SELECT {COLUMNS} FROM establishments {where_sql}) \
             SELECT m.*, COUNT(*) OVER () AS total_count FROM m \
             ORDER BY {order} LIMIT {page_size} OFFSET {offset}"
        )
    } else {
        format!(
            "SELECT {COLUMNS}, COUNT(*) OVER () AS total_count FROM establishments {where_sql} \
             ORDER BY {order} LIMIT {page_size} OFFSET {offset}"
        )
    };
    let rows = bind_params(sqlx::query(&sql), &params)
        .fetch_all(&mut *conn)
        .await?;
    use sqlx::Row;
    let mut total = 0i64;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        total = row.try_get("total_count")?;
        out.push(EstablishmentRow::from_row(row)?.try_into()?);
    }
    if rows.is_empty() && offset > 0 {
        // Past the last page: the window gave no count, ask for it.
        let sql = format!("SELECT COUNT(*) FROM establishments {where_sql}");
        let count: i64 = bind_params(sqlx::query(&sql), &params)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        total = count;
    }
    Ok((out, total))
}

pub async fn count(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM establishments")
        .fetch_one(conn)
        .await?;
    Ok(n)
}

/// The rows of the given ids (any order), queried in chunks.
pub async fn by_ids(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<Vec<Establishment>, sqlx::Error> {
    let mut out = Vec::with_capacity(ids.len());
    let backend = super::backend_of(conn);
    for chunk in ids.chunks(500) {
        let list = super::placeholders(backend, 1, chunk.len());
        let sql = format!("SELECT {COLUMNS} FROM establishments WHERE id IN {list}");
        let mut q = sqlx::query_as::<_, EstablishmentRow>(&sql);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        for row in q.fetch_all(&mut *conn).await? {
            out.push(row.try_into()?);
        }
    }
    Ok(out)
}
