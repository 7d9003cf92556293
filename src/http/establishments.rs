//! `/api/v1/establishments`: the registry (admin writes; admin and reviewer read).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Admins, ApiJson, ApiPath, ApiQuery, AuthUser, Authorized, Office};
use super::{rfc3339, AppState};
use crate::auth::Role;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::establishment::{
    Category, Establishment, EstablishmentStatus, RawEstablishment, RiskGrade, Warning,
};
use crate::geo::{Crs, Location};
use crate::ops::{self, ImportFailure, ImportReport};
use crate::store;

pub fn router(import_limit: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_establishments, create_establishment))
        .routes(routes!(get_establishment, update_establishment))
        .routes(routes!(import_template))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(import_establishments))
                .layer(DefaultBodyLimit::max(import_limit)),
        )
}

/// A point with its coordinate system.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LocationBody {
    /// Longitude in degrees, −180..180.
    pub lng: f64,
    /// Latitude in degrees, −90..90.
    pub lat: f64,
    /// `wgs84` (GPS, iOS, WeChat), `gcj02` (AMap/Tencent, most Chinese map apps) or `bd09`
    /// (Baidu maps).
    pub crs: String,
}

/// An establishment as written by create and update (all fields; update replaces the record).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct EstablishmentBody {
    /// 牌匾名称: the name on the shop sign.
    pub sign_name: Option<String>,
    /// 营业执照名称: the legal name on the business licence.
    pub licensed_name: Option<String>,
    /// 统一社会信用代码 (18 characters, GB 32100-2015). A failing check character is stored
    /// with a warning. Either uscc or license_no is required.
    pub uscc: Option<String>,
    /// 食品经营许可证编号 (`JY` + 14 digits) or 仅销售预包装食品备案编号 (`YB` + 14 digits).
    pub license_no: Option<String>,
    /// 业态 code (see `Category`), or its Chinese label.
    pub category: Option<String>,
    /// 经营地址.
    pub address: Option<String>,
    /// 街道/乡镇.
    pub town: Option<String>,
    /// 风险等级 `A`–`D` (D is the highest risk).
    pub risk_grade: Option<String>,
    /// 量化等级 `A`/`B`/`C`, optional.
    pub quant_grade: Option<String>,
    /// `open` (default), `suspended` or `closed`.
    pub status: Option<String>,
    /// Contact person (personal data: never published).
    pub contact_name: Option<String>,
    /// Contact phone (personal data: never published).
    pub contact_phone: Option<String>,
    pub location: Option<LocationBody>,
}

impl EstablishmentBody {
    fn into_raw(self) -> RawEstablishment {
        let (lng, lat, crs) = match self.location {
            Some(l) => (Some(l.lng), Some(l.lat), Some(l.crs)),
            None => (None, None, None),
        };
        RawEstablishment {
            sign_name: self.sign_name,
            licensed_name: self.licensed_name,
            uscc: self.uscc,
            license_no: self.license_no,
            category: self.category,
            address: self.address,
            town: self.town,
            risk_grade: self.risk_grade,
            quant_grade: self.quant_grade,
            status: self.status,
            contact_name: self.contact_name,
            contact_phone: self.contact_phone,
            lng,
            lat,
            crs,
        }
    }
}

/// A stored location: as given, and normalised to WGS-84.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LocationView {
    /// Longitude as given, degrees.
    pub lng: f64,
    /// Latitude as given, degrees.
    pub lat: f64,
    /// Coordinate system of `lng`/`lat`: `wgs84`, `gcj02` or `bd09`.
    pub crs: String,
    /// Normalised WGS-84 longitude (exact GCJ-02 inverse; BD-09 via GCJ-02).
    pub wgs84_lng: f64,
    /// Normalised WGS-84 latitude.
    pub wgs84_lat: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EstablishmentView {
    pub id: String,
    /// 牌匾名称.
    pub sign_name: String,
    /// 营业执照名称.
    pub licensed_name: String,
    /// 统一社会信用代码.
    pub uscc: Option<String>,
    /// 许可证编号 (JY...) or 备案编号 (YB...).
    pub license_no: Option<String>,
    /// 业态 code.
    pub category: String,
    /// 业态 in Chinese, e.g. 小型餐馆.
    pub category_label: String,
    pub address: String,
    pub town: String,
    /// `A`–`D`.
    pub risk_grade: String,
    /// `A`/`B`/`C` or null.
    pub quant_grade: Option<String>,
    /// `open`, `suspended` or `closed`.
    pub status: String,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub location: Option<LocationView>,
    /// Non-fatal findings stored with the record, e.g. `uscc_check_failed`.
    pub warnings: Vec<Warning>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Haversine distance in metres from the search centre (radius searches only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<f64>,
}

impl From<Establishment> for EstablishmentView {
    fn from(e: Establishment) -> Self {
        EstablishmentView {
            id: e.id,
            sign_name: e.sign_name,
            licensed_name: e.licensed_name,
            uscc: e.uscc,
            license_no: e.license_no,
            category: e.category.code().to_string(),
            category_label: e.category.label_zh().to_string(),
            address: e.address,
            town: e.town,
            risk_grade: e.risk_grade.as_str().to_string(),
            quant_grade: e.quant_grade.map(|q| q.as_str().to_string()),
            status: e.status.as_str().to_string(),
            contact_name: e.contact_name,
            contact_phone: e.contact_phone,
            location: e.location.map(|l| LocationView {
                lng: l.lng,
                lat: l.lat,
                crs: l.crs.as_str().to_string(),
                wgs84_lng: l.wgs84_lng,
                wgs84_lat: l.wgs84_lat,
            }),
            warnings: e.warnings,
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
            distance_m: None,
        }
    }
}

/// A page of results.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EstablishmentPage {
    pub items: Vec<EstablishmentView>,
    /// Matches in total, over all pages.
    pub total_count: i64,
    /// Page number, from 1.
    pub page: u32,
    pub page_size: u32,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Substring of 牌匾名称, 营业执照名称, uscc or license_no (case-insensitive).
    pub q: Option<String>,
    /// Exact 统一社会信用代码.
    pub uscc: Option<String>,
    /// Exact 许可证/备案编号.
    pub license_no: Option<String>,
    /// Exact 街道/乡镇.
    pub town: Option<String>,
    /// 业态 code or Chinese label.
    pub category: Option<String>,
    /// One or more risk grades, comma-separated, e.g. `C,D`.
    pub risk_grade: Option<String>,
    /// `open`, `suspended` or `closed`.
    pub status: Option<String>,
    /// Longitude of the search centre (with `near_lat` and `radius_m`).
    pub near_lng: Option<f64>,
    /// Latitude of the search centre.
    pub near_lat: Option<f64>,
    /// Coordinate system of the centre; default `wgs84`.
    pub near_crs: Option<String>,
    /// Radius in metres, 1–50,000. Results are then ordered by distance.
    pub radius_m: Option<f64>,
    /// Page number from 1 (default 1).
    pub page: Option<u32>,
    /// 1–500 (default 50).
    pub page_size: Option<u32>,
}

/// Register an establishment (admin).
#[utoipa::path(post, path = "/api/v1/establishments", tag = "establishments", security(("bearer" = [])),
    request_body = EstablishmentBody,
    responses(
        (status = 201, description = "Created; `warnings` lists non-fatal findings", body = EstablishmentView),
        (status = 403, body = ErrorEnvelope),
        (status = 409, description = "`duplicate`: uscc or license_no already registered", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed`: `details` is a list of `{field, code, message}`", body = ErrorEnvelope)))]
async fn create_establishment(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiJson(body): ApiJson<EstablishmentBody>,
) -> AppResult<(StatusCode, Json<EstablishmentView>)> {
    let created = ops::establishments::create(&state.db, &user.ctx(), body.into_raw()).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Replace an establishment's record (admin).
#[utoipa::path(put, path = "/api/v1/establishments/{id}", tag = "establishments", security(("bearer" = [])),
    params(("id" = String, Path, description = "Establishment id")),
    request_body = EstablishmentBody,
    responses(
        (status = 200, body = EstablishmentView),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`duplicate`", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed`", body = ErrorEnvelope)))]
async fn update_establishment(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<EstablishmentBody>,
) -> AppResult<Json<EstablishmentView>> {
    let updated = ops::establishments::update(&state.db, &user.ctx(), &id, body.into_raw()).await?;
    Ok(Json(updated.into()))
}

/// Read one establishment (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/establishments/{id}", tag = "establishments", security(("bearer" = [])),
    params(("id" = String, Path, description = "Establishment id")),
    responses((status = 200, body = EstablishmentView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn get_establishment(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<EstablishmentView>> {
    // Inspectors read establishments through their tasks only.
    user.require(&[Role::Admin, Role::Reviewer])?;
    let mut conn = state.db.acquire().await?;
    let row = store::establishments::get(&mut conn, &id)
        .await?
        .ok_or_else(|| AppError::not_found("no such establishment"))?;
    Ok(Json(row.into()))
}

fn bad_query(message: impl Into<String>) -> AppError {
    AppError::bad_request("bad_request", message)
}

/// Search the registry (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/establishments", tag = "establishments", security(("bearer" = [])),
    params(SearchParams),
    responses(
        (status = 200, body = EstablishmentPage),
        (status = 400, description = "`bad_request`: an invalid filter", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope)))]
async fn list_establishments(
    State(state): State<AppState>,
    _: Authorized<Office>,
    ApiQuery(p): ApiQuery<SearchParams>,
) -> AppResult<Json<EstablishmentPage>> {
    let nonempty = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let category = match nonempty(p.category) {
        Some(c) => Some(
            Category::parse(&c)
                .ok_or_else(|| bad_query(format!("unknown category {c:?}")))?
                .code()
                .to_string(),
        ),
        None => None,
    };
    let status = match nonempty(p.status) {
        Some(s) => Some(
            EstablishmentStatus::parse(&s)
                .ok_or_else(|| bad_query(format!("unknown status {s:?}")))?
                .as_str()
                .to_string(),
        ),
        None => None,
    };
    let mut risk_grades = Vec::new();
    for g in nonempty(p.risk_grade).iter().flat_map(|s| s.split(',')) {
        let grade =
            RiskGrade::parse(g).ok_or_else(|| bad_query(format!("unknown risk grade {g:?}")))?;
        risk_grades.push(grade.as_str().to_string());
    }
    let near = match (p.near_lng, p.near_lat, p.radius_m) {
        (None, None, None) => None,
        (Some(lng), Some(lat), Some(radius)) => {
            if !(radius.is_finite() && (1.0..=50_000.0).contains(&radius)) {
                return Err(bad_query("radius_m must be between 1 and 50000"));
            }
            let crs: Crs = match nonempty(p.near_crs) {
                Some(c) => c
                    .parse()
                    .map_err(|e: crate::geo::GeoError| bad_query(e.to_string()))?,
                None => Crs::Wgs84,
            };
            let loc = Location::new(lng, lat, crs).map_err(|e| bad_query(e.to_string()))?;
            Some((loc.wgs84().x(), loc.wgs84().y(), radius))
        }
        _ => return Err(bad_query("near_lng, near_lat and radius_m go together")),
    };
    let page = p.page.unwrap_or(1).max(1);
    let page_size = p.page_size.unwrap_or(50);
    if !(1..=500).contains(&page_size) {
        return Err(bad_query("page_size must be between 1 and 500"));
    }
    let search = store::establishments::Search {
        q: nonempty(p.q).map(|q| q.to_lowercase()),
        uscc: nonempty(p.uscc).map(|s| s.to_uppercase()),
        license_no: nonempty(p.license_no).map(|s| s.to_uppercase()),
        town: nonempty(p.town),
        category,
        risk_grades,
        status,
        near,
        page,
        page_size,
    };
    let mut conn = state.db.acquire().await?;
    let (rows, total) = store::establishments::search(&mut conn, &search).await?;
    let items = rows
        .into_iter()
        .map(|r| {
            let point = r
                .location
                .map(|l| geo_types::Point::new(l.wgs84_lng, l.wgs84_lat));
            let mut v = EstablishmentView::from(r);
            if let (Some((lng, lat, _)), Some(p)) = (near, point) {
                v.distance_m = Some(
                    (crate::geo::distance_m(geo_types::Point::new(lng, lat), p) * 10.0).round()
                        / 10.0,
                );
            }
            v
        })
        .collect();
    Ok(Json(EstablishmentPage {
        items,
        total_count: total,
        page,
        page_size,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// `true`: validate and report only, write nothing.
    pub dry_run: Option<bool>,
}

/// The raw request body, with the size-limit rejection as an envelope.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::PayloadTooLarge("the file exceeds the import size limit".into())
                } else {
                    AppError::bad_request("bad_request", e.body_text())
                }
            })
    }
}

/// Bulk import from CSV (UTF-8 with or without BOM, or GB18030) or XLSX (admin).
///
/// Headers in Chinese or English (see the template). Rows are matched by uscc, else by
/// license_no: matches are updated, others created. The whole import is one transaction: any
/// error → 422 `import_failed` with the report in `details` and nothing written.
#[utoipa::path(post, path = "/api/v1/establishments/import", tag = "establishments", security(("bearer" = [])),
    params(ImportParams),
    request_body(content = Vec<u8>, description = "The CSV or XLSX file as the raw body; the format is sniffed from the bytes",
        content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Imported (or validated, on a dry run)", body = ImportReport),
        (status = 403, body = ErrorEnvelope),
        (status = 413, description = "`payload_too_large`: the body is over `max_import_body_bytes`, or an XLSX unpacks to more than the import limits (512 MiB in all, 128 MiB or 2,000,000 shared strings, 1 MiB in one tag or text)", body = ErrorEnvelope),
        (status = 415, description = "`unsupported_media_type`: neither CSV nor XLSX", body = ErrorEnvelope),
        (status = 422, description = "`import_failed` (`details` is the ImportReport) or `invalid_table` (missing columns, empty file)", body = ErrorEnvelope)))]
async fn import_establishments(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiQuery(params): ApiQuery<ImportParams>,
    RawBody(body): RawBody,
) -> AppResult<Json<ImportReport>> {
    let dry_run = params.dry_run.unwrap_or(false);
    match ops::import_establishments(&state.db, &user.ctx(), body.to_vec(), dry_run, &|_, _| {})
        .await
    {
        Ok(report) => Ok(Json(report)),
        Err(ImportFailure::Rows(report)) => Err(AppError::unprocessable_with(
            "import_failed",
            format!(
                "{} problem(s) found; nothing was written",
                report.errors_total
            ),
            report,
        )),
        Err(ImportFailure::File(e)) => Err(match e {
            crate::establishment::import::ImportError::UnsupportedFormat(m) => {
                AppError::UnsupportedMediaType(m)
            }
            e @ crate::establishment::import::ImportError::TooLarge(_) => {
                AppError::PayloadTooLarge(e.to_string())
            }
            crate::establishment::import::ImportError::Template(m) => {
                AppError::Internal(anyhow::anyhow!(m))
            }
            other => AppError::unprocessable("invalid_table", other.to_string()),
        }),
        Err(ImportFailure::Failed(e)) => Err(e.into()),
    }
}

/// The import template (XLSX with headers, notes and drop-downs) (admin).
#[utoipa::path(get, path = "/api/v1/establishments/import-template.xlsx", tag = "establishments", security(("bearer" = [])),
    responses(
        (status = 200, description = "XLSX workbook", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 403, body = ErrorEnvelope)))]
async fn import_template(user: AuthUser) -> AppResult<impl IntoResponse> {
    user.require(&[Role::Admin])?;
    let bytes = tokio::task::spawn_blocking(crate::establishment::import::template_xlsx)
        .await
        .map_err(|e| AppError::Internal(e.into()))?
        .map_err(|e| AppError::Internal(anyhow::anyhow!(e.to_string())))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"establishments-import-template.xlsx\"",
            ),
        ],
        bytes,
    ))
}
