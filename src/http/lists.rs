//! `/api/v1/lists`: the red/black list (红黑榜) write side and internal view (admin, reviewer),
//! and `POST /api/v1/plans/{id}/publish-results` (一公开 of a round's results).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, ApiQuery, Authorized, Office};
use super::{rfc3339, AppState};
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::lists::{Candidate, IssueState};
use crate::ops::list_photos::PhotoTakedown;
use crate::ops::lists::{self as uc, Entry, EntryPatch, Issue, IssueDetail, NewEntry, NewIssue};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_issues, create_issue))
        .routes(routes!(get_issue))
        .routes(routes!(candidates))
        .routes(routes!(add_entry))
        .routes(routes!(update_entry, remove_entry))
        .routes(routes!(publish))
        .routes(routes!(revise))
        .routes(routes!(rectify))
        .routes(routes!(revoke))
        .routes(routes!(take_down_photo))
        .routes(routes!(publish_results))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuePage {
    pub items: Vec<Issue>,
    pub total_count: i64,
    pub page: u32,
    pub page_size: u32,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IssueParams {
    /// `draft` or `published`.
    pub state: Option<String>,
    /// From 1 (default 1).
    pub page: Option<u32>,
    /// 1–200 (default 50).
    pub page_size: Option<u32>,
}

fn paging(page: Option<u32>, size: Option<u32>) -> AppResult<(u32, u32)> {
    let size = size.unwrap_or(50);
    if !(1..=200).contains(&size) {
        return Err(AppError::bad_request(
            "bad_request",
            "page_size must be between 1 and 200",
        ));
    }
    Ok((page.unwrap_or(1).max(1), size))
}

/// Create a draft issue (admin, reviewer).
#[utoipa::path(post, path = "/api/v1/lists", tag = "lists", security(("bearer" = [])),
    request_body = NewIssue,
    responses((status = 201, body = Issue), (status = 403, body = ErrorEnvelope),
        (status = 409, description = "`duplicate`: an issue with this 期号 exists", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (`details`: `{field, code, message}`: `required`, `too_long`, `control_character`, `invalid_date`, `invalid_period`, `invalid_criteria`), `invalid_body`", body = ErrorEnvelope)))]
async fn create_issue(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiJson(n): ApiJson<NewIssue>,
) -> AppResult<(StatusCode, Json<Issue>)> {
    let i = uc::create(&state.db, &user.ctx(), &n).await?;
    Ok((StatusCode::CREATED, Json(i)))
}

/// Issues, newest first (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/lists", tag = "lists", security(("bearer" = [])), params(IssueParams),
    responses((status = 200, body = IssuePage),
        (status = 400, description = "`bad_request`: unknown state or page size out of range", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope)))]
async fn list_issues(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiQuery(p): ApiQuery<IssueParams>,
) -> AppResult<Json<IssuePage>> {
    let st = match &p.state {
        Some(s) => Some(IssueState::parse(s).ok_or_else(|| {
            AppError::bad_request("bad_request", format!("unknown issue state {s:?}"))
        })?),
        None => None,
    };
    let (page, page_size) = paging(p.page, p.page_size)?;
    let (items, total) = uc::list(&state.db, &user.ctx(), st, page, page_size).await?;
    Ok(Json(IssuePage {
        items,
        total_count: total,
        page,
        page_size,
    }))
}

/// One issue with its entries, their photos and lifecycle updates (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/lists/{id}", tag = "lists", security(("bearer" = [])),
    params(("id" = String, Path, description = "Issue id")),
    responses((status = 200, body = IssueDetail), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such issue", body = ErrorEnvelope)))]
async fn get_issue(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<IssueDetail>> {
    Ok(Json(uc::get(&state.db, &user.ctx(), &id).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CandidatePage {
    /// Red and black candidates of this page (establishments qualifying for neither list
    /// are left out, so a page may hold fewer than `page_size`).
    pub items: Vec<Candidate>,
    /// Establishments with an approved inspection, or a 不合格 sampling result, in the period
    /// and no entry yet.
    pub total_count: i64,
    pub page: u32,
    pub page_size: u32,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CandidateParams {
    pub page: Option<u32>,
    /// 1–200 (default 50).
    pub page_size: Option<u32>,
}

/// Proposed entries by the issue's criteria (admin, reviewer): one per establishment with an
/// approved inspection submitted, or a 不合格 sampling result reported, in the period (bureau
/// days) and no entry yet; black wins over red (a 不合格 sample makes a black candidate whose
/// basis is `sample_id` when no inspection is black, and keeps the shop off the red list for
/// the look-back window); with a suggested 上榜理由 (for a sample: the product and its failed
/// items, never a person) and, for black, 处理措施.
#[utoipa::path(get, path = "/api/v1/lists/{id}/candidates", tag = "lists", security(("bearer" = [])),
    params(("id" = String, Path, description = "Issue id"), CandidateParams),
    responses((status = 200, body = CandidatePage),
        (status = 400, description = "`bad_request`: page size out of range", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, description = "No such issue", body = ErrorEnvelope)))]
async fn candidates(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(p): ApiQuery<CandidateParams>,
) -> AppResult<Json<CandidatePage>> {
    let (page, page_size) = paging(p.page, p.page_size)?;
    let (items, total) = uc::candidates(
        &state.db,
        &user.ctx(),
        state.config.time_zone,
        &id,
        page,
        page_size,
    )
    .await?;
    Ok(Json(CandidatePage {
        items,
        total_count: total,
        page,
        page_size,
    }))
}

/// Add an entry to a draft issue (admin, reviewer). The establishment's public identity and
/// WGS-84 point are copied onto it as they are now. Its basis is exactly one of
/// `inspection_id` (an approved inspection) and `sample_id` (black only: a 不合格 sample of the
/// establishment reported in the period, no photos).
#[utoipa::path(post, path = "/api/v1/lists/{id}/entries", tag = "lists", security(("bearer" = [])),
    params(("id" = String, Path, description = "Issue id")),
    request_body = NewEntry,
    responses((status = 201, body = Entry), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such issue", body = ErrorEnvelope),
        (status = 409, description = "`issue_published`: the issue is published; `duplicate`: the establishment already has an entry", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (reason 1–500, measures required for black and refused for red, at most 6 photos), `unknown_establishment`, `basis_required` (neither or both of `inspection_id` and `sample_id`), `basis_not_found`, `basis_not_approved`, `basis_not_in_period`, `basis_does_not_qualify`, `invalid_photo`, `too_many_entries`, `invalid_body`", body = ErrorEnvelope)))]
async fn add_entry(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
    ApiJson(n): ApiJson<NewEntry>,
) -> AppResult<(StatusCode, Json<Entry>)> {
    let e = uc::add_entry(&state.db, &user.ctx(), state.config.time_zone, &id, &n).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

/// Change a draft entry's 上榜理由, 处理措施 or photos (admin, reviewer).
#[utoipa::path(patch, path = "/api/v1/lists/{id}/entries/{entry_id}", tag = "lists", security(("bearer" = [])),
    params(("id" = String, Path, description = "Issue id"), ("entry_id" = String, Path, description = "Entry id")),
    request_body = EntryPatch,
    responses((status = 200, body = Entry), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such issue or entry", body = ErrorEnvelope),
        (status = 409, description = "`issue_published`", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed`, `invalid_photo`, `invalid_body`", body = ErrorEnvelope)))]
async fn update_entry(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath((id, entry_id)): ApiPath<(String, String)>,
    ApiJson(p): ApiJson<EntryPatch>,
) -> AppResult<Json<Entry>> {
    Ok(Json(
        uc::update_entry(&state.db, &user.ctx(), &id, &entry_id, &p).await?,
    ))
}

/// Remove an entry from a draft issue (admin, reviewer).
#[utoipa::path(delete, path = "/api/v1/lists/{id}/entries/{entry_id}", tag = "lists", security(("bearer" = [])),
    params(("id" = String, Path, description = "Issue id"), ("entry_id" = String, Path, description = "Entry id")),
    responses((status = 204, description = "Removed"), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such issue or entry", body = ErrorEnvelope),
        (status = 409, description = "`issue_published`", body = ErrorEnvelope)))]
async fn remove_entry(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath((id, entry_id)): ApiPath<(String, String)>,
) -> AppResult<StatusCode> {
    uc::remove_entry(&state.db, &user.ctx(), &id, &entry_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Publish a draft issue (admin, reviewer). The audit log is integrated and a checkpoint
/// signed first; its note is stored on the issue and the publication event follows it. A
/// revision supersedes the issue it revises. Of two concurrent publishes one wins.
#[utoipa::path(post, path = "/api/v1/lists/{id}/publish", tag = "lists", security(("bearer" = [])),
    params(("id" = String, Path, description = "Issue id")),
    responses((status = 200, body = IssueDetail), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such issue", body = ErrorEnvelope),
        (status = 409, description = "`issue_published`: already published (or by a concurrent publish); `issue_superseded`: the revised issue was superseded meanwhile", body = ErrorEnvelope),
        (status = 422, description = "`empty_issue`: no entries", body = ErrorEnvelope)))]
async fn publish(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<IssueDetail>> {
    Ok(Json(
        uc::publish(&state.db, &user.ctx(), &state.audit_key, &id).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevisionRequest {
    /// Public note: what the correction changes (1–500 characters).
    pub note: String,
}

/// Start a correction of a published issue (admin, reviewer): a new draft, revision + 1, with
/// the entries, photos and lifecycle updates copied and the public note.
#[utoipa::path(post, path = "/api/v1/lists/{id}/revisions", tag = "lists", security(("bearer" = [])),
    params(("id" = String, Path, description = "Issue id")),
    request_body = RevisionRequest,
    responses((status = 201, body = IssueDetail), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such issue", body = ErrorEnvelope),
        (status = 409, description = "`issue_not_published` (a draft), `issue_superseded`, `revision_exists` (a draft revision exists), `duplicate`", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (note), `invalid_body`", body = ErrorEnvelope)))]
async fn revise(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
    ApiJson(r): ApiJson<RevisionRequest>,
) -> AppResult<(StatusCode, Json<IssueDetail>)> {
    let d = uc::revise(&state.db, &user.ctx(), &id, &r.note).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RectificationRequest {
    /// The follow-up whose recheck passed: at the entry's establishment, closed, its recheck
    /// inspection approved and submitted after the basis.
    pub followup_id: String,
    /// 整改后信息 (1–500 characters); default generated from the recheck's date.
    pub text: Option<String>,
}

/// Publish a black entry's rectification (整改后信息) (admin, reviewer).
#[utoipa::path(post, path = "/api/v1/lists/entries/{entry_id}/rectification", tag = "lists", security(("bearer" = [])),
    params(("entry_id" = String, Path, description = "Entry id")),
    request_body = RectificationRequest,
    responses((status = 200, body = Entry), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such entry", body = ErrorEnvelope),
        (status = 409, description = "`not_black`, `issue_not_published`, `issue_superseded` (use the current revision's entry), `already_rectified`", body = ErrorEnvelope),
        (status = 422, description = "`unknown_followup`, `followup_not_of_establishment`, `recheck_not_passed`, `validation_failed` (text), `invalid_body`", body = ErrorEnvelope)))]
async fn rectify(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(entry_id): ApiPath<String>,
    ApiJson(r): ApiJson<RectificationRequest>,
) -> AppResult<Json<Entry>> {
    Ok(Json(
        uc::rectify(
            &state.db,
            &user.ctx(),
            state.config.time_zone,
            &entry_id,
            &r.followup_id,
            r.text.as_deref(),
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevocationRequest {
    /// The public reason (1–500 characters).
    pub reason: String,
}

/// Revoke a red entry of a published, current issue by the section's decision (admin,
/// reviewer). A later failing approval revokes red entries by itself.
#[utoipa::path(post, path = "/api/v1/lists/entries/{entry_id}/revocation", tag = "lists", security(("bearer" = [])),
    params(("entry_id" = String, Path, description = "Entry id")),
    request_body = RevocationRequest,
    responses((status = 200, body = Entry), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such entry", body = ErrorEnvelope),
        (status = 409, description = "`not_red`, `issue_not_published`, `issue_superseded`, `already_revoked`", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (reason), `invalid_body`", body = ErrorEnvelope)))]
async fn revoke(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(entry_id): ApiPath<String>,
    ApiJson(r): ApiJson<RevocationRequest>,
) -> AppResult<Json<Entry>> {
    Ok(Json(
        uc::revoke(
            &state.db,
            &user.ctx(),
            state.config.time_zone,
            &entry_id,
            &r.reason,
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TakedownRequest {
    /// Why (1–500 characters). Internal: kept in the audit log, never shown to the public.
    pub reason: String,
}

/// Take a public photo down (admin, reviewer): from the commit on, no public read (entry
/// pages, histories, HTML pages, `/public/v1/photos/{id}/…`) shows it, in any revision, and it
/// cannot be attached to an entry again. Final. The photo stays with its inspection.
#[utoipa::path(post, path = "/api/v1/lists/photos/{photo_id}/takedown", tag = "lists", security(("bearer" = [])),
    params(("photo_id" = String, Path, description = "Photo id")),
    request_body = TakedownRequest,
    responses((status = 200, body = PhotoTakedown), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "Not a public photo (not attached to a published entry)", body = ErrorEnvelope),
        (status = 409, description = "`already_taken_down`", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (reason), `invalid_body`", body = ErrorEnvelope)))]
async fn take_down_photo(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(photo_id): ApiPath<String>,
    ApiJson(r): ApiJson<TakedownRequest>,
) -> AppResult<Json<PhotoTakedown>> {
    Ok(Json(
        crate::ops::list_photos::take_down(&state.db, &user.ctx(), &photo_id, &r.reason).await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResultsPublished {
    pub plan_id: String,
    /// RFC 3339.
    pub results_published_at: String,
}

/// Publish a plan's results (一公开; admin, reviewer): from now on the public side shows its
/// approved inspections' results (never comments, reasons or teams).
#[utoipa::path(post, path = "/api/v1/plans/{id}/publish-results", tag = "lists", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plan id")),
    responses((status = 200, body = ResultsPublished), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such plan", body = ErrorEnvelope),
        (status = 409, description = "`already_published`", body = ErrorEnvelope)))]
async fn publish_results(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<ResultsPublished>> {
    let at = uc::publish_plan_results(&state.db, &user.ctx(), &id).await?;
    Ok(Json(ResultsPublished {
        plan_id: id,
        results_published_at: rfc3339(at),
    }))
}
