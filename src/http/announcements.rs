//! `/api/v1/announcements`: the public sampling announcement (抽检信息公告), write side and
//! internal view (admin, reviewer): drafts with the samples they propose, exclusions with an
//! internal reason, publication.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, ApiQuery, Authorized, Office};
use super::AppState;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::ops::announcements::{
    self as uc, Announcement, AnnouncementDetail, AnnouncementState, Exclusion, NewAnnouncement,
    NewExclusion,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_announcements, create_announcement))
        .routes(routes!(get_announcement))
        .routes(routes!(exclude))
        .routes(routes!(include))
        .routes(routes!(publish))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnnouncementPage {
    pub items: Vec<Announcement>,
    pub total_count: i64,
    pub page: u32,
    pub page_size: u32,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnnouncementParams {
    /// `draft` or `published`.
    pub state: Option<String>,
    /// From 1 (default 1).
    pub page: Option<u32>,
    /// 1–200 (default 50).
    pub page_size: Option<u32>,
}

/// Create a draft announcement for a period (admin, reviewer).
#[utoipa::path(post, path = "/api/v1/announcements", tag = "sampling", security(("bearer" = [])),
    request_body = NewAnnouncement,
    responses((status = 201, body = Announcement), (status = 403, body = ErrorEnvelope),
        (status = 409, description = "`duplicate`: an announcement with this 期号 exists", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (`details`: `{field, code, message}`: `required`, `too_long`, `control_character`, `invalid_date`, `invalid_period`, `invalid_stage`, `unknown_category`), `invalid_body`", body = ErrorEnvelope)))]
async fn create_announcement(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiJson(n): ApiJson<NewAnnouncement>,
) -> AppResult<(StatusCode, Json<Announcement>)> {
    let a = uc::create(&state.db, &user.ctx(), &n).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// Announcements, newest first (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/announcements", tag = "sampling", security(("bearer" = [])),
    params(AnnouncementParams),
    responses((status = 200, body = AnnouncementPage),
        (status = 400, description = "`bad_request`: unknown state or page size out of range", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope)))]
async fn list_announcements(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiQuery(p): ApiQuery<AnnouncementParams>,
) -> AppResult<Json<AnnouncementPage>> {
    let st = match &p.state {
        Some(s) => Some(AnnouncementState::parse(s).ok_or_else(|| {
            AppError::bad_request("bad_request", format!("unknown announcement state {s:?}"))
        })?),
        None => None,
    };
    let page_size = p.page_size.unwrap_or(50);
    if !(1..=200).contains(&page_size) {
        return Err(AppError::bad_request(
            "bad_request",
            "page_size must be between 1 and 200",
        ));
    }
    let page = p.page.unwrap_or(1).max(1);
    let (items, total) = uc::list(&state.db, &user.ctx(), st, page, page_size).await?;
    Ok(Json(AnnouncementPage {
        items,
        total_count: total,
        page,
        page_size,
    }))
}

/// One announcement with its tables (admin, reviewer): for a draft, the samples it proposes
/// now (every sample with a lab result reported in the period, bureau days, within its stage
/// and category) less those excluded; for a published one, the rows copied at publication.
#[utoipa::path(get, path = "/api/v1/announcements/{id}", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "Announcement id")),
    responses((status = 200, body = AnnouncementDetail), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such announcement", body = ErrorEnvelope)))]
async fn get_announcement(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<AnnouncementDetail>> {
    Ok(Json(
        uc::get(&state.db, &user.ctx(), state.config.time_zone, &id).await?,
    ))
}

/// Leave a proposed sample out of a draft, with an internal reason (never published).
#[utoipa::path(post, path = "/api/v1/announcements/{id}/exclusions", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "Announcement id")),
    request_body = NewExclusion,
    responses((status = 201, body = Exclusion), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such announcement", body = ErrorEnvelope),
        (status = 409, description = "`announcement_published`; `duplicate`: already excluded", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (reason 1–500 characters), `not_proposed`: the draft does not propose this sample, `invalid_body`", body = ErrorEnvelope)))]
async fn exclude(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
    ApiJson(n): ApiJson<NewExclusion>,
) -> AppResult<(StatusCode, Json<Exclusion>)> {
    let e = uc::exclude(&state.db, &user.ctx(), state.config.time_zone, &id, &n).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

/// Take an excluded sample back into a draft (admin, reviewer).
#[utoipa::path(delete, path = "/api/v1/announcements/{id}/exclusions/{sample_id}", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "Announcement id"), ("sample_id" = String, Path, description = "Sample id")),
    responses((status = 204, description = "Included again"), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such announcement, or the sample is not excluded", body = ErrorEnvelope),
        (status = 409, description = "`announcement_published`", body = ErrorEnvelope)))]
async fn include(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath((id, sample_id)): ApiPath<(String, String)>,
) -> AppResult<StatusCode> {
    uc::include(&state.db, &user.ctx(), &id, &sample_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Publish a draft (admin, reviewer). The audit log is integrated and a checkpoint signed
/// first; its note is stored on the announcement. The tables are composed from the samples as
/// they are at that moment and copied into the announcement: later edits of a sample do not
/// change what was published. Of two concurrent publishes one wins.
#[utoipa::path(post, path = "/api/v1/announcements/{id}/publish", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "Announcement id")),
    responses((status = 200, body = AnnouncementDetail), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such announcement", body = ErrorEnvelope),
        (status = 409, description = "`announcement_published`: already published (or by a concurrent publish)", body = ErrorEnvelope),
        (status = 422, description = "`empty_announcement`: no sample would be published", body = ErrorEnvelope)))]
async fn publish(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<AnnouncementDetail>> {
    Ok(Json(
        uc::publish(
            &state.db,
            &user.ctx(),
            state.config.time_zone,
            &state.audit_key,
            &id,
        )
        .await?,
    ))
}
