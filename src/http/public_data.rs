//! `/public/v1` open data (一公开), no login: published red/black list issues and their
//! entries, establishments' public histories, published round results, the index of drawn
//! plans with their pools, and the photos made public with entries. Built from
//! [`crate::public`] types only (they cannot hold personal or internal data). Every list has
//! the paging meta `{total_count, page, page_size, total_pages, extract_date}`; ETag/304,
//! Cache-Control and CORS are added for every `/public` response by [`super::public_cache`].

use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiPath, ApiQuery};
use super::AppState;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::public::cache::Page;
use crate::public::{
    self, ListType, PageMeta, PublicEntry, PublicEstablishment, PublicHistory, PublicIssue,
    PublicPlan, PublicResult,
};
use crate::store::public as q;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_issues))
        .routes(routes!(get_issue))
        .routes(routes!(issue_entries))
        .routes(routes!(all_entries))
        .routes(routes!(establishment_history))
        .routes(routes!(list_plans))
        .routes(routes!(plan_results))
        .routes(routes!(draw_pool))
        .routes(routes!(public_photo))
        .routes(routes!(export_issue))
        .routes(routes!(export_history))
}

/// The extract date: today in the bureau.
fn today(state: &AppState) -> String {
    state.config.time_zone.today()
}

/// (page, page size, offset) of the requested page; 400 `invalid_paging` out of range.
pub(super) fn paging(page: Option<u32>, size: Option<u32>) -> AppResult<(u32, u32, i64)> {
    public::paging(page, size).map_err(|m| AppError::bad_request("invalid_paging", m))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// From 1 (default 1).
    pub page: Option<u32>,
    /// 1–200 (default 50).
    pub page_size: Option<u32>,
}

impl PageParams {
    /// (page, page size, offset), as [`paging`].
    pub(super) fn paging(&self) -> AppResult<(u32, u32, i64)> {
        paging(self.page, self.page_size)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicIssuePage {
    pub meta: PageMeta,
    pub items: Vec<PublicIssue>,
}

/// Published red/black list issues, newest first (every revision; a corrected one shows
/// `superseded_by`).
#[utoipa::path(get, path = "/public/v1/lists", tag = "public", params(PageParams),
    responses((status = 200, body = PublicIssuePage), (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, description = "`invalid_paging`", body = ErrorEnvelope)))]
async fn list_issues(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(p): ApiQuery<PageParams>,
) -> AppResult<Response> {
    let (page, size, offset) = paging(p.page, p.page_size)?;
    let mut conn = state.db.acquire().await?;
    let key = PageKey::read(&state, &mut conn, &uri, &p).await?;
    if let Some(hit) = key.hit(&state) {
        return Ok(hit);
    }
    let (items, total) = q::issues(&mut conn, offset, size).await?;
    let meta = PageMeta::new(total, page, size, key.day.clone());
    key.store(&state, &PublicIssuePage { meta, items })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicIssueView {
    #[serde(flatten)]
    pub issue: PublicIssue,
    /// Results reflect conditions at the time of inspection.
    pub disclaimer: &'static str,
    pub licence: &'static str,
    pub entries_url: String,
    pub page_url: String,
}

/// One published issue (a draft or unknown id is 404).
#[utoipa::path(get, path = "/public/v1/lists/{id}", tag = "public",
    params(("id" = String, Path, description = "Issue id")),
    responses((status = 200, body = PublicIssueView), (status = 304, description = "Not modified"),
        (status = 404, description = "No such published issue", body = ErrorEnvelope)))]
async fn get_issue(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Response> {
    let mut conn = state.db.acquire().await?;
    let key = PageKey::read(&state, &mut conn, &uri, &()).await?;
    if let Some(hit) = key.hit(&state) {
        return Ok(hit);
    }
    let issue = q::issue(&mut conn, &id)
        .await?
        .ok_or_else(|| AppError::not_found("no such published issue"))?;
    key.store(
        &state,
        &PublicIssueView {
            entries_url: format!("/public/v1/lists/{}/entries", issue.id),
            page_url: format!("/public/lists/{}", issue.id),
            issue,
            disclaimer: public::DISCLAIMER,
            licence: public::LICENCE,
        },
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntryParams {
    /// `red` or `black`.
    pub list_type: Option<String>,
    /// 街道/乡镇, exactly.
    pub town: Option<String>,
    /// 业态 code, exactly.
    pub category: Option<String>,
    /// Issues whose period ends on or after this day (`YYYY-MM-DD`).
    pub from: Option<String>,
    /// Issues whose period starts on or before this day (`YYYY-MM-DD`).
    pub to: Option<String>,
    pub page: Option<u32>,
    /// 1–200 (default 50).
    pub page_size: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicEntryPage {
    pub meta: PageMeta,
    pub items: Vec<PublicEntry>,
}

fn entry_filter(p: &EntryParams) -> AppResult<q::EntryFilter> {
    let list_type = p
        .list_type
        .as_deref()
        .map(|s| {
            ListType::parse(s)
                .ok_or_else(|| AppError::bad_request("invalid_filter", "list_type is red or black"))
        })
        .transpose()?;
    let date = |v: &Option<String>, name: &str| -> AppResult<Option<String>> {
        v.as_deref()
            .map(|s| {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map(|d| d.to_string())
                    .map_err(|_| {
                        AppError::bad_request("invalid_filter", format!("{name} is YYYY-MM-DD"))
                    })
            })
            .transpose()
    };
    let text = |v: &Option<String>| v.as_deref().map(str::trim).map(String::from);
    Ok(q::EntryFilter {
        list_type,
        town: text(&p.town),
        category: text(&p.category),
        from: date(&p.from, "from")?,
        to: date(&p.to, "to")?,
        ..q::EntryFilter::default()
    })
}

/// The entries of one published issue, black before red, in list order; filters as
/// `/public/v1/entries`.
#[utoipa::path(get, path = "/public/v1/lists/{id}/entries", tag = "public",
    params(("id" = String, Path, description = "Issue id"), EntryParams),
    responses((status = 200, body = PublicEntryPage), (status = 304, description = "Not modified"),
        (status = 400, description = "`invalid_filter`, `invalid_paging`", body = ErrorEnvelope),
        (status = 404, description = "No such published issue", body = ErrorEnvelope)))]
async fn issue_entries(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    ApiPath(id): ApiPath<String>,
    ApiQuery(p): ApiQuery<EntryParams>,
) -> AppResult<Response> {
    let (page, size, offset) = paging(p.page, p.page_size)?;
    let filter = q::EntryFilter {
        issue_id: Some(id.clone()),
        ..entry_filter(&p)?
    };
    let mut conn = state.db.acquire().await?;
    let key = PageKey::read(&state, &mut conn, &uri, &p).await?;
    if let Some(hit) = key.hit(&state) {
        return Ok(hit);
    }
    if q::issue(&mut conn, &id).await?.is_none() {
        return Err(AppError::not_found("no such published issue"));
    }
    let (items, total) = q::entries(&mut conn, &filter, offset, size).await?;
    let meta = PageMeta::new(total, page, size, key.day.clone());
    key.store(&state, &PublicEntryPage { meta, items })
}

/// Where a rendered list page is cached ([`crate::public::cache`]): the path and the parsed
/// parameters (so parameters the route ignores make no new page), under the public version
/// read before any data.
struct PageKey {
    uri: String,
    version: i64,
    day: String,
}

impl PageKey {
    async fn read(
        state: &AppState,
        conn: &mut sqlx::AnyConnection,
        uri: &axum::http::Uri,
        params: &impl std::fmt::Debug,
    ) -> AppResult<PageKey> {
        let version = q::version(conn).await?;
        Ok(PageKey {
            uri: format!("{} {params:?}", uri.path()),
            version,
            day: today(state),
        })
    }

    fn hit(&self, state: &AppState) -> Option<Response> {
        state
            .public_pages
            .get(self.version, &self.day, &self.uri)
            .map(json_page)
    }

    fn store<T: Serialize>(self, state: &AppState, body: &T) -> AppResult<Response> {
        let bytes = serde_json::to_vec(body).map_err(|e| AppError::Internal(e.into()))?;
        // Exactly the body's bytes: the vector grew by doubling, and a cached page would keep
        // its spare capacity (up to as much again) out of the cache's count.
        let page = Page::new(bytes.into_boxed_slice().into());
        state
            .public_pages
            .put(self.version, &self.day, self.uri, page.clone());
        Ok(json_page(page))
    }
}

/// A cached page as a response; its ETag is the body's, as the public layer would give it.
fn json_page(page: Page) -> Response {
    let mut res = Body::from(page.body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&page.etag) {
        h.insert(header::ETAG, v);
    }
    res
}

/// Entries of the current revision of every published issue, by list type, town, category and
/// period.
#[utoipa::path(get, path = "/public/v1/entries", tag = "public", params(EntryParams),
    responses((status = 200, body = PublicEntryPage), (status = 304, description = "Not modified"),
        (status = 400, description = "`invalid_filter`, `invalid_paging`", body = ErrorEnvelope)))]
async fn all_entries(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(p): ApiQuery<EntryParams>,
) -> AppResult<Response> {
    let (page, size, offset) = paging(p.page, p.page_size)?;
    let filter = entry_filter(&p)?;
    let mut conn = state.db.acquire().await?;
    let key = PageKey::read(&state, &mut conn, &uri, &p).await?;
    if let Some(hit) = key.hit(&state) {
        return Ok(hit);
    }
    let (items, total) = q::entries(&mut conn, &filter, offset, size).await?;
    let meta = PageMeta::new(total, page, size, key.day.clone());
    key.store(&state, &PublicEntryPage { meta, items })
}

/// An establishment's public history: published inspection results (routine and rechecks),
/// its entries in published issues with their lifecycle, and its rectification orders. 404
/// when nothing about it is published.
#[utoipa::path(get, path = "/public/v1/establishments/{id}", tag = "public",
    params(("id" = String, Path, description = "Establishment id")),
    responses((status = 200, body = PublicHistory), (status = 304, description = "Not modified"),
        (status = 404, description = "Nothing published about this establishment", body = ErrorEnvelope)))]
async fn establishment_history(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<PublicHistory>> {
    let mut conn = state.db.acquire().await?;
    q::history(&mut conn, &id, state.config.time_zone)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::not_found("nothing is published about this establishment"))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicPlanPage {
    pub meta: PageMeta,
    pub items: Vec<PublicPlan>,
}

/// Drawn plans (rounds), newest draw first, with links to their draw and, once published,
/// their results.
#[utoipa::path(get, path = "/public/v1/plans", tag = "public", params(PageParams),
    responses((status = 200, body = PublicPlanPage), (status = 304, description = "Not modified"),
        (status = 400, description = "`invalid_paging`", body = ErrorEnvelope)))]
async fn list_plans(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> AppResult<Json<PublicPlanPage>> {
    let (page, size, offset) = paging(p.page, p.page_size)?;
    let mut conn = state.db.acquire().await?;
    let (items, total) = q::plans(&mut conn, offset, size).await?;
    Ok(Json(PublicPlanPage {
        meta: PageMeta::new(total, page, size, today(&state)),
        items,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicResultPage {
    pub meta: PageMeta,
    pub items: Vec<PublicResult>,
}

/// A round's published results: its approved inspections (and rechecks), newest first. 404
/// until the section publishes the round's results.
#[utoipa::path(get, path = "/public/v1/plans/{id}/results", tag = "public",
    params(("id" = String, Path, description = "Plan id"), PageParams),
    responses((status = 200, body = PublicResultPage), (status = 304, description = "Not modified"),
        (status = 400, description = "`invalid_paging`", body = ErrorEnvelope),
        (status = 404, description = "No such plan, or its results are not published", body = ErrorEnvelope)))]
async fn plan_results(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> AppResult<Json<PublicResultPage>> {
    let (page, size, offset) = paging(p.page, p.page_size)?;
    let mut conn = state.db.acquire().await?;
    if q::results_published(&mut conn, &id).await? != Some(true) {
        return Err(AppError::not_found(
            "no such plan, or its results are not published",
        ));
    }
    let (items, total) = q::results(
        &mut conn,
        &q::ResultScope::Plan(&id),
        state.config.time_zone,
        offset,
        size,
    )
    .await?;
    Ok(Json(PublicResultPage {
        meta: PageMeta::new(total, page, size, today(&state)),
        items,
    }))
}

/// A pool entry with its public identity.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicPoolEntry {
    /// Position in the canonical pool (ascending id), from 1.
    pub position: usize,
    /// The grade the draw used.
    pub grade: String,
    /// Its public identity as the registry holds it now (null if it left the registry).
    pub establishment: Option<PublicEstablishment>,
    pub establishment_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicPoolPage {
    pub meta: PageMeta,
    /// SHA-256 of the whole canonical pool (as in the draw record).
    pub pool_hash: String,
    pub items: Vec<PublicPoolEntry>,
}

/// The candidate pool of a plan's current draw, in canonical order, with each candidate's
/// public identity (牌匾名称, 营业执照名称, licence number, town, risk grade), so anyone can check
/// the pool against the shops they know and re-run the selection from public data. The
/// selection rests only on the record's ids and grades (the pool hash covers them); names and
/// addresses are the registry's current ones, so a shop renamed after the draw is found under
/// the name on its sign today.
#[utoipa::path(get, path = "/public/v1/plans/{id}/draw/pool", tag = "public",
    params(("id" = String, Path, description = "Plan id"), PageParams),
    responses((status = 200, body = PublicPoolPage), (status = 304, description = "Not modified"),
        (status = 400, description = "`invalid_paging`", body = ErrorEnvelope),
        (status = 404, description = "No such plan, or not drawn yet", body = ErrorEnvelope)))]
async fn draw_pool(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> AppResult<Json<PublicPoolPage>> {
    let (page, size, offset) = paging(p.page, p.page_size)?;
    let (_, record) = super::public::load(&state, &id).await?;
    let pool = &record.input.pool;
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(pool.len());
    let end = (start + size as usize).min(pool.len());
    let slice = &pool[start..end];
    let ids: Vec<String> = slice.iter().map(|c| c.id.to_string()).collect();
    let mut conn = state.db.acquire().await?;
    let mut known: std::collections::HashMap<String, PublicEstablishment> =
        q::establishments(&mut conn, &ids)
            .await?
            .into_iter()
            .map(|e| (e.id.clone(), e))
            .collect();
    let items = slice
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let id = c.id.to_string();
            PublicPoolEntry {
                position: start + i + 1,
                grade: c.grade.letter().to_string(),
                establishment: known.remove(&id),
                establishment_id: id,
            }
        })
        .collect();
    Ok(Json(PublicPoolPage {
        meta: PageMeta::new(pool.len() as i64, page, size, today(&state)),
        pool_hash: record.outcome.pool_hash.clone(),
        items,
    }))
}

/// A photo made public with a list entry, as its EXIF-free rendition (`preview` 1600 px or
/// `thumbnail` 320 px JPEG). Any other photo is 404, whatever its id.
#[utoipa::path(get, path = "/public/v1/photos/{id}/{variant}", tag = "public",
    params(("id" = String, Path, description = "Photo id"), ("variant" = String, Path, description = "`preview` or `thumbnail`")),
    responses((status = 200, description = "image/jpeg"), (status = 304, description = "Not modified"),
        (status = 404, description = "No such public photo", body = ErrorEnvelope)))]
async fn public_photo(
    State(state): State<AppState>,
    ApiPath((id, variant)): ApiPath<(String, String)>,
) -> AppResult<Response> {
    if !matches!(variant.as_str(), "preview" | "thumbnail") {
        return Err(AppError::not_found("the variant is preview or thumbnail"));
    }
    let mut conn = state.db.acquire().await?;
    let sha256 = q::public_photo(&mut conn, &id)
        .await?
        .ok_or_else(|| AppError::not_found("no such public photo"))?;
    drop(conn);
    let key = crate::photo::files::rendition_key(&sha256, &variant);
    let len = state
        .storage
        .size(&key)
        .await
        .ok_or_else(|| AppError::not_found("no such public photo"))?;
    let body = Body::from_stream(
        state
            .storage
            .stream(&key, 0, len)
            .await
            .map_err(AppError::Internal)?,
    );
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    // The validator is derived from the original's hash, never the hash itself: the
    // original (with the phone's EXIF) stays internal, and its digest would identify it.
    let tag = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(format!("public-photo:{sha256}:{variant}"));
        hex::encode(&d[..16])
    };
    if let Ok(v) = HeaderValue::from_str(&format!("\"{tag}\"")) {
        h.insert(header::ETAG, v);
    }
    // An hour, not longer: a photo taken down stays in caches downstream until they expire.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(res)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `csv` (UTF-8 with BOM, RFC 4180, formula-like text neutralised), `xlsx` (红榜, 黑榜 and a
    /// 说明 sheet), `json`, `geojson` (WGS-84 FeatureCollection) or `lives` (a LIVES ZIP:
    /// businesses, inspections, violations, feed_info, legend).
    pub format: String,
}

/// A published issue's entries as a file, streamed from the database: the first bytes leave
/// before the last row is read, in every format (an XLSX's fixed parts go first, then its
/// sheets row by row), so memory stays flat whatever the issue's size.
#[utoipa::path(get, path = "/public/v1/lists/{id}/export", tag = "public",
    params(("id" = String, Path, description = "Issue id"), ExportParams),
    responses((status = 200, description = "The file, with Content-Disposition"),
        (status = 400, description = "`invalid_format`", body = ErrorEnvelope),
        (status = 404, description = "No such published issue", body = ErrorEnvelope),
        (status = 503, description = "`unavailable`: too many downloads are running (Retry-After)", body = ErrorEnvelope)))]
async fn export_issue(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(p): ApiQuery<ExportParams>,
) -> AppResult<Response> {
    let format = crate::export::ExportFormat::parse(&p.format).ok_or_else(|| {
        AppError::bad_request(
            "invalid_format",
            "format is csv, xlsx, json, geojson or lives",
        )
    })?;
    let (_, meta) = crate::ops::exports::issue(&state.db, &id, state.config.time_zone).await?;
    let db = state.db.clone();
    let rt = tokio::runtime::Handle::current();
    let file_name = format!("{}-r{}.{}", id, meta.revision, format.extension());
    download(&state, format, &file_name, move |out| {
        crate::ops::exports::write_issue(&rt, &db, &meta, &id, format, out, None)
    })
}

/// An establishment's published history as a file (the same inspections as its public history,
/// uncapped, oldest first, each with its failed items), streamed from the database.
#[utoipa::path(get, path = "/public/v1/establishments/{id}/export", tag = "public",
    params(("id" = String, Path, description = "Establishment id"), HistoryExportParams),
    responses((status = 200, description = "The file, with Content-Disposition"),
        (status = 400, description = "`invalid_format`", body = ErrorEnvelope),
        (status = 404, description = "No published history for this establishment", body = ErrorEnvelope),
        (status = 503, description = "`unavailable`: too many downloads are running (Retry-After)", body = ErrorEnvelope)))]
async fn export_history(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(p): ApiQuery<HistoryExportParams>,
) -> AppResult<Response> {
    let format = crate::export::ExportFormat::parse(&p.format)
        .filter(|f| crate::ops::exports::HISTORY_FORMATS.contains(f))
        .ok_or_else(|| {
            AppError::bad_request("invalid_format", "format is csv, xlsx, json or lives")
        })?;
    let zone = state.config.time_zone;
    let est = crate::ops::exports::history_subject(&state.db, &id, zone).await?;
    let db = state.db.clone();
    let rt = tokio::runtime::Handle::current();
    let file_name = format!("{}-history.{}", est.id, format.extension());
    download(&state, format, &file_name, move |out| {
        crate::ops::exports::write_history(&rt, &db, &est, zone, format, out)
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryExportParams {
    /// `csv` (UTF-8 with BOM: 主体编号, 检查日期, 检查结果, 检查类型, 不符合项编号, 不符合项内容),
    /// `xlsx` (检查记录 and 说明 sheets), `json` (`{meta: {establishment, disclaimer, licence},
    /// items}`) or `lives` (a LIVES ZIP with the one business). Not `geojson`: the public record
    /// of an establishment has no location.
    pub format: String,
}

/// A streamed download: `write` runs on a blocking thread into the response body. 503
/// `unavailable` (with Retry-After) while the instance's download permits are all in use.
fn download<F>(
    state: &AppState,
    format: crate::export::ExportFormat,
    file_name: &str,
    write: F,
) -> AppResult<Response>
where
    F: FnOnce(&mut crate::export::stream::ChannelWriter) -> crate::ops::Result<()> + Send + 'static,
{
    let permit = state.downloads.clone().try_acquire_owned().map_err(|_| {
        AppError::Unavailable("too many downloads are running; retry shortly".into())
    })?;
    let rx = crate::export::stream::spawn_writer(move |out| {
        let _permit = permit;
        write(out).map_err(|e| crate::export::ExportError::Io(std::io::Error::other(e.to_string())))
    });
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok(attachment(format, file_name, Body::from_stream(chunks)))
}

/// A 200 file download: `body` as `format`'s content type, to be saved as `file_name`.
pub(super) fn attachment(
    format: crate::export::ExportFormat,
    file_name: &str,
    body: Body,
) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}
