//! `/api/v1/tasks`: inspection tasks. Inspectors see only their own team's tasks.

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{
    Admins, ApiJson, ApiPath, ApiQuery, AuthUser, Authorized, Inspectors, Office, Staff,
};
use super::{rfc3339, AppState};
use crate::auth::Role;
use crate::checklist::rule::ResultCode;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::plan::TaskState;
use crate::plan::TeamMember;
use crate::review::detail::effective_result;
use crate::review::ReviewState;
use crate::store::{self, plans::TaskRow};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tasks))
        .routes(routes!(get_task))
        .routes(routes!(start_task))
        .routes(routes!(cancel_task))
        .routes(routes!(reassign_task))
}

/// What an inspector needs to find and identify the establishment (no contact data).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaskEstablishment {
    pub id: String,
    pub sign_name: String,
    pub licensed_name: String,
    pub address: String,
    pub town: String,
    pub category: String,
    pub risk_grade: String,
    /// As registered (see `crs`).
    pub lng: Option<f64>,
    pub lat: Option<f64>,
    /// `wgs84`, `gcj02` or `bd09`.
    pub crs: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaskView {
    pub id: String,
    pub plan_id: String,
    pub round_title: String,
    /// The draw that made it; null for a recheck task (复查 of a follow-up).
    pub draw_id: Option<String>,
    /// `assigned` → `in_progress` → `submitted`; or `cancelled` (see `cancel_reason`).
    pub state: TaskState,
    pub cancel_reason: Option<String>,
    /// `YYYY-MM-DD`.
    pub due_date: String,
    /// Not submitted or cancelled, and past the due date.
    pub overdue: bool,
    /// Item codes failed at this establishment's previous inspection: they must be checked.
    pub must_check_items: Vec<String>,
    /// The checklist the inspection must use (exact version).
    pub template_id: String,
    pub template_version: i64,
    pub establishment: TaskEstablishment,
    /// The team, in draw order.
    pub team: Vec<TeamMember>,
    pub submitted_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The task's latest inspection's result and review state; null before any inspection
    /// was synced.
    pub result: Option<TaskResult>,
}

/// The result of a task's latest inspection, as the task list shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaskResult {
    pub inspection_id: String,
    /// Null while the team works on it; `submitted`, `approved`, `returned`, `rejected`.
    pub review_state: Option<ReviewState>,
    /// The server's result at submission.
    pub computed_result: Option<ResultCode>,
    /// A reviewer's override (its reason is in the inspection detail).
    pub override_result: Option<ResultCode>,
    /// `override_result`, else `computed_result`.
    pub effective_result: Option<ResultCode>,
}

fn view(t: TaskRow, team: Vec<TeamMember>, today: &str) -> TaskView {
    let state = t.state;
    TaskView {
        overdue: matches!(state, TaskState::Assigned | TaskState::InProgress)
            && t.due_date.as_str() < today,
        must_check_items: serde_json::from_str(&t.must_check_items).unwrap_or_default(),
        establishment: TaskEstablishment {
            id: t.establishment_id,
            sign_name: t.sign_name,
            licensed_name: t.licensed_name,
            address: t.address,
            town: t.town,
            category: t.category,
            risk_grade: t.risk_grade,
            lng: t.raw_lng,
            lat: t.raw_lat,
            crs: t.crs,
        },
        id: t.id,
        plan_id: t.plan_id,
        round_title: t.round_title,
        draw_id: t.draw_id,
        state,
        cancel_reason: t.cancel_reason,
        due_date: t.due_date,
        template_id: t.template_id,
        template_version: t.template_version,
        team,
        submitted_at: t.submitted_at.map(rfc3339),
        created_at: rfc3339(t.created_at),
        updated_at: rfc3339(t.updated_at),
        result: None,
    }
}

async fn with_teams(state: &AppState, rows: Vec<TaskRow>) -> AppResult<Vec<TaskView>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut teams: HashMap<String, Vec<TeamMember>> = HashMap::new();
    let mut conn = state.db.acquire().await?;
    for (task, inspector, name, badge, _) in store::plans::members_of(&mut conn, &ids).await? {
        teams
            .entry(task)
            .or_default()
            .push(TeamMember::officer(inspector, name, badge));
    }
    let mut results: HashMap<String, TaskResult> = HashMap::new();
    for r in store::queues::task_results(&mut conn, &ids).await? {
        results.insert(
            r.task_id,
            TaskResult {
                inspection_id: r.inspection_id,
                review_state: r.review_state,
                computed_result: r.computed_result,
                override_result: r.override_result,
                effective_result: effective_result(r.computed_result, r.override_result),
            },
        );
    }
    let today = state.config.time_zone.today();
    Ok(rows
        .into_iter()
        .map(|r| {
            let team = teams.remove(&r.id).unwrap_or_default();
            let result = results.remove(&r.id);
            TaskView {
                result,
                ..view(r, team, &today)
            }
        })
        .collect())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskPage {
    pub items: Vec<TaskView>,
    pub total_count: i64,
    pub page: u32,
    pub page_size: u32,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskParams {
    pub plan_id: Option<String>,
    /// `assigned`, `in_progress`, `submitted` or `cancelled`.
    pub state: Option<String>,
    /// Also list tasks of superseded draws (admin, reviewer; default false).
    pub include_superseded: Option<bool>,
    pub page: Option<u32>,
    /// 1–500 (default 100).
    pub page_size: Option<u32>,
}

/// Tasks: an inspector's own team's tasks; every task for admins and reviewers.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", security(("bearer" = [])), params(TaskParams),
    responses((status = 200, body = TaskPage), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
async fn list_tasks(
    State(state): State<AppState>,
    user: Authorized<Staff>,
    ApiQuery(p): ApiQuery<TaskParams>,
) -> AppResult<Json<TaskPage>> {
    user.require(&[Role::Admin, Role::Reviewer, Role::Inspector])?;
    let task_state = match &p.state {
        Some(s) => Some(TaskState::parse(s).ok_or_else(|| {
            AppError::bad_request("bad_request", format!("unknown task state {s:?}"))
        })?),
        None => None,
    };
    let page_size = p.page_size.unwrap_or(100);
    if !(1..=500).contains(&page_size) {
        return Err(AppError::bad_request(
            "bad_request",
            "page_size must be between 1 and 500",
        ));
    }
    let page = p.page.unwrap_or(1).max(1);
    let is_inspector = user.role == Role::Inspector;
    let filter = store::plans::TaskFilter {
        plan_id: p.plan_id,
        state: task_state,
        member: is_inspector.then(|| user.id.clone()),
        current_only: is_inspector || !p.include_superseded.unwrap_or(false),
        page,
        page_size,
    };
    let mut conn = state.db.acquire().await?;
    let (rows, total) = store::plans::list_tasks(&mut conn, &filter).await?;
    drop(conn);
    Ok(Json(TaskPage {
        items: with_teams(&state, rows).await?,
        total_count: total,
        page,
        page_size,
    }))
}

/// Loads a task the caller may see: any for admins and reviewers, only their team's for
/// inspectors (404 otherwise, so task ids of other teams reveal nothing).
async fn visible_task(state: &AppState, user: &AuthUser, id: &str) -> AppResult<TaskRow> {
    user.require(&[Role::Admin, Role::Reviewer, Role::Inspector])?;
    let mut conn = state.db.acquire().await?;
    let task = store::plans::get_task(&mut conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("no such task"))?;
    if user.role == Role::Inspector && !store::plans::is_member(&mut conn, id, &user.id).await? {
        return Err(AppError::not_found("no such task"));
    }
    Ok(task)
}

/// One task.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Task id")),
    responses((status = 200, body = TaskView), (status = 403, body = ErrorEnvelope), (status = 404, description = "No such task, or not the caller's team's", body = ErrorEnvelope)))]
async fn get_task(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<TaskView>> {
    let task = visible_task(&state, &user, &id).await?;
    let mut views = with_teams(&state, vec![task]).await?;
    views
        .pop()
        .map(Json)
        .ok_or_else(|| AppError::not_found("no such task"))
}

/// Start a task (an inspector of its team): `assigned` → `in_progress`. Syncing an inspection
/// for the task does the same.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/start", tag = "tasks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Task id")),
    responses((status = 200, body = TaskView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`invalid_state`", body = ErrorEnvelope)))]
async fn start_task(
    State(state): State<AppState>,
    user: Authorized<Inspectors>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<TaskView>> {
    user.require(&[Role::Inspector])?;
    crate::ops::tasks::start(&state.db, &user.ctx(), &id).await?;
    get_task(State(state), user.0, ApiPath(id)).await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CancelRequest {
    /// Why, e.g. 已停业 (the shop has closed). 1–500 characters.
    pub reason: String,
}

/// Cancel a task with a reason (admin).
#[utoipa::path(post, path = "/api/v1/tasks/{id}/cancel", tag = "tasks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Task id")),
    request_body = CancelRequest,
    responses((status = 200, body = TaskView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`invalid_state`: submitted or already cancelled", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed`: no reason", body = ErrorEnvelope)))]
async fn cancel_task(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<CancelRequest>,
) -> AppResult<Json<TaskView>> {
    user.require(&[Role::Admin])?;
    crate::ops::tasks::cancel(&state.db, &user.ctx(), &id, &req.reason).await?;
    get_task(State(state), user.0, ApiPath(id)).await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReassignRequest {
    /// The new team: user ids of at least two distinct, enabled inspectors without a declared
    /// conflict (回避) at the establishment, in the team's order (the first leads).
    pub team: Vec<String>,
    /// Why, e.g. 原检查组检查结果被驳回，另派检查组. 1–500 characters; kept in the audit log.
    pub reason: String,
}

/// Give a task to another team (admin, reviewer). Allowed while the task is `assigned` and
/// every inspection it has is rejected: after a reviewer rejected the inspection, or before the
/// team started. By sync, the new members' devices receive the task (and its rejected
/// inspections, read-only) as new; the removed members' devices are told to delete the task and
/// its records, and pushes from them for it are refused `not_your_task`; members who stay see
/// the new `team` on the task. A recheck task's follow-up records the new team.
#[utoipa::path(put, path = "/api/v1/tasks/{id}/team", tag = "tasks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Task id")),
    request_body = ReassignRequest,
    responses((status = 200, description = "The task with its new team", body = TaskView),
        (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`invalid_state`: the task is not `assigned`; `task_has_inspection`: an inspection of it is not rejected", body = ErrorEnvelope),
        (status = 422, description = "`team_too_small`, `inspector_not_active`, `inspector_conflict`, `team_unchanged`, `validation_failed` (reason)", body = ErrorEnvelope)))]
async fn reassign_task(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ReassignRequest>,
) -> AppResult<Json<TaskView>> {
    user.require(&[Role::Admin, Role::Reviewer])?;
    crate::ops::tasks::reassign(&state.db, &user.ctx(), &id, &req.team, &req.reason).await?;
    get_task(State(state), user.0, ApiPath(id)).await
}
