//! `/api/v1/sampling-plans` (食品安全抽检 plans and their draws) and `/api/v1/sampling-tasks`,
//! `/api/v1/me/sampling-tasks` (their tasks). A sampling plan is a plan of kind `sampling`:
//! its draw is verified, exported and published through the plans' routes
//! (`POST /api/v1/plans/{id}/draw/verify`, `GET /api/v1/plans/{id}/draw/record`,
//! `/public/v1/plans/{id}/draw…`, `/public/plans/{id}/draw`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, ApiQuery, Authorized, Inspectors, Office, Staff};
use super::plans::DrawSummary;
use super::AppState;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::ops::sampling_plans::{
    self as uc, SamplingPlanView, SamplingTaskPage, SamplingTaskView,
};
use crate::plan::draw;
use crate::sampling::plan::{RawSamplingPlan, SamplingTaskState};
use crate::store::sampling_plans::TaskFilter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plans, create_plan))
        .routes(routes!(get_plan))
        .routes(routes!(draw_plan))
        .routes(routes!(list_tasks))
        .routes(routes!(get_task))
        .routes(routes!(assign_team))
        .routes(routes!(my_tasks))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
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

#[derive(Debug, Serialize, ToSchema)]
pub struct SamplingPlanPage {
    pub items: Vec<SamplingPlanView>,
    pub total_count: i64,
    pub page: u32,
    pub page_size: u32,
}

/// Sampling plans, newest first (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/sampling-plans", tag = "sampling", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = SamplingPlanPage),
        (status = 400, description = "`bad_request`: page_size out of range", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
async fn list_plans(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> AppResult<Json<SamplingPlanPage>> {
    let (page, page_size) = paging(p.page, p.page_size)?;
    let (items, total_count) = uc::list_plans(&state.db, &user.ctx(), page, page_size).await?;
    Ok(Json(SamplingPlanPage {
        items,
        total_count,
        page,
        page_size,
    }))
}

/// Create a sampling plan (admin, reviewer): title, 检验目的, 抽样环节, the lab, the period, the
/// batches per food category, the premises pool filter and the quotas per risk grade (as for
/// inspection plans; at most as many premises as batches). It can be drawn once created.
#[utoipa::path(post, path = "/api/v1/sampling-plans", tag = "sampling", security(("bearer" = [])),
    request_body = RawSamplingPlan,
    responses(
        (status = 201, body = SamplingPlanView),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (`details`: `{field, code, message}`: `invalid_title`, `invalid_date`, `invalid_period`, `invalid_batches`, `duplicate_category`, `unknown_category`, `invalid_quotas`, `more_premises_than_batches`, `out_of_range`, `unknown_lab`), `invalid_body`", body = ErrorEnvelope)))]
async fn create_plan(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiJson(raw): ApiJson<RawSamplingPlan>,
) -> AppResult<(StatusCode, Json<SamplingPlanView>)> {
    let plan = uc::create_plan(&state.db, &user.ctx(), raw).await?;
    Ok((StatusCode::CREATED, Json(plan)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SamplingPlanDetail {
    pub plan: SamplingPlanView,
    /// Every draw of the plan, oldest first; at most one is current (not superseded).
    pub draws: Vec<DrawSummary>,
}

/// A sampling plan with its draws (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/sampling-plans/{id}", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sampling plan id")),
    responses((status = 200, body = SamplingPlanDetail), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn get_plan(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<SamplingPlanDetail>> {
    let (plan, draws) = uc::get_plan(&state.db, &user.ctx(), &id).await?;
    Ok(Json(SamplingPlanDetail {
        plan,
        draws: draws.into_iter().map(DrawSummary::from).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SamplingDrawRequest {
    /// The random seed, supplied at draw time (a published lottery number, a value read out at
    /// a public drawing). 1–200 characters, used exactly as given.
    pub seed: String,
    /// Required for a redraw; the earlier draw stays on record and its tasks are cancelled.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SamplingDrawView {
    pub draw: DrawSummary,
    /// Premises drawn per risk grade.
    #[schema(value_type = Object)]
    pub allocation: std::collections::BTreeMap<draw::Grade, u32>,
    /// The tasks made, one per drawn premises in draw order, unassigned.
    pub tasks: Vec<SamplingTaskView>,
}

/// Draw a sampling plan (admin, reviewer): premises at random from the pool with the inspection
/// plans' auditable draw (algorithm `foodcheck-draw-v1`, selection only: no teams), one task
/// per drawn premises with its share of the batches and its due date on the working-day
/// calendar. Verify it with `POST /api/v1/plans/{id}/draw/verify` or
/// `foodcheck draw verify --plan ID`; it is public at `/public/v1/plans/{id}/draw`.
#[utoipa::path(post, path = "/api/v1/sampling-plans/{id}/draw", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sampling plan id")),
    request_body = SamplingDrawRequest,
    responses(
        (status = 201, body = SamplingDrawView),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`already_drawn` (no reason given), `draw_in_progress` (samples submitted against its tasks), `conflict` (concurrent draw)", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (seed), `draw_impossible` (e.g. a quota exceeds the candidates of its grade), `calendar_year_missing`, `invalid_body`", body = ErrorEnvelope)))]
async fn draw_plan(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<SamplingDrawRequest>,
) -> AppResult<(StatusCode, Json<SamplingDrawView>)> {
    let ctx = user.ctx();
    let zone = state.config.time_zone;
    let (row, record) =
        uc::draw_plan(&state.db, &ctx, zone, &id, &req.seed, req.reason.as_deref()).await?;
    let tasks = uc::list_tasks(
        &state.db,
        &ctx,
        zone,
        TaskFilter {
            plan_id: Some(id.clone()),
            page: 1,
            page_size: 500,
            ..TaskFilter::default()
        },
        false,
    )
    .await?
    .items
    .into_iter()
    .filter(|t| t.draw_id == row.id)
    .collect();
    Ok((
        StatusCode::CREATED,
        Json(SamplingDrawView {
            allocation: record.outcome.allocation.clone(),
            draw: row.into(),
            tasks,
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskParams {
    /// Only this plan's tasks.
    pub plan_id: Option<String>,
    /// Only tasks in this state.
    pub state: Option<SamplingTaskState>,
    /// From 1 (default 1).
    pub page: Option<u32>,
    /// 1–200 (default 50).
    pub page_size: Option<u32>,
}

/// Sampling tasks, earliest due first (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/sampling-tasks", tag = "sampling", security(("bearer" = [])), params(TaskParams),
    responses((status = 200, body = SamplingTaskPage),
        (status = 400, description = "`bad_request`: page_size out of range or an unknown state", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
async fn list_tasks(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiQuery(p): ApiQuery<TaskParams>,
) -> AppResult<Json<SamplingTaskPage>> {
    let (page, page_size) = paging(p.page, p.page_size)?;
    let filter = TaskFilter {
        plan_id: p.plan_id,
        state: p.state,
        member: None,
        page,
        page_size,
    };
    Ok(Json(
        uc::list_tasks(
            &state.db,
            &user.ctx(),
            state.config.time_zone,
            filter,
            false,
        )
        .await?,
    ))
}

/// The caller's own sampling tasks (an inspector: tasks whose team of samplers includes
/// them), earliest due first.
#[utoipa::path(get, path = "/api/v1/me/sampling-tasks", tag = "sampling", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = SamplingTaskPage),
        (status = 400, description = "`bad_request`: page_size out of range", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
async fn my_tasks(
    State(state): State<AppState>,
    user: Authorized<Inspectors>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> AppResult<Json<SamplingTaskPage>> {
    let (page, page_size) = paging(p.page, p.page_size)?;
    let filter = TaskFilter {
        page,
        page_size,
        ..TaskFilter::default()
    };
    Ok(Json(
        uc::list_tasks(&state.db, &user.ctx(), state.config.time_zone, filter, true).await?,
    ))
}

/// One sampling task (admin, reviewer; an inspector of its team). Another team's task is
/// answered exactly as one that does not exist.
#[utoipa::path(get, path = "/api/v1/sampling-tasks/{id}", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sampling task id")),
    responses((status = 200, body = SamplingTaskView), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn get_task(
    State(state): State<AppState>,
    user: Authorized<Staff>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<SamplingTaskView>> {
    Ok(Json(
        uc::get_task(&state.db, &user.ctx(), state.config.time_zone, &id).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamRequest {
    /// The samplers (user ids of enabled inspector accounts), at least two distinct, none with
    /// a declared conflict of interest (回避) at the task's premises; in order.
    pub sampler_ids: Vec<String>,
    /// Another lab for this task's samples (default: the task's lab, first the plan's).
    pub lab_id: Option<String>,
}

/// Assign a sampling task's team of samplers (and optionally its lab) (admin, reviewer), or
/// change it until a sample is submitted against the task. The task becomes `assigned`.
#[utoipa::path(put, path = "/api/v1/sampling-tasks/{id}/team", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sampling task id")),
    request_body = TeamRequest,
    responses(
        (status = 200, body = SamplingTaskView),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`invalid_state` (the task is cancelled), `task_has_samples` (samples were submitted against it)", body = ErrorEnvelope),
        (status = 422, description = "`team_too_small` (fewer than two distinct samplers), `sampler_not_active`, `sampler_conflict` (回避), `team_unchanged`, `validation_failed` (`lab_id`: `unknown_lab`), `invalid_body`", body = ErrorEnvelope)))]
async fn assign_team(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<TeamRequest>,
) -> AppResult<Json<SamplingTaskView>> {
    Ok(Json(
        uc::assign_team(
            &state.db,
            &user.ctx(),
            state.config.time_zone,
            &id,
            &req.sampler_ids,
            req.lab_id.as_deref(),
        )
        .await?,
    ))
}
