//! `/api/v1/review`: the reviewer's work queues with filters and cursor paging, and their
//! counts for a dashboard (admin, reviewer).

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiPath, ApiQuery, Authorized, Office};
use super::AppState;
use crate::auth::Role;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::plan::TeamMember;
use crate::review::queues::{
    self, page_limit, Cursor, Queue, QueueCounts, QueueFilter, QueuePage, RawFilter, Refusal,
};
use crate::store;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(queue_page))
        .routes(routes!(queue_counts))
}

/// Filters shared by the queues and the counts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilterParams {
    /// Only this plan.
    pub plan_id: Option<String>,
    /// A round (期): the plan's `round_title`, or the plan id.
    pub round: Option<String>,
    /// 街道/乡镇 of the establishment.
    pub town: Option<String>,
    /// A team member's user id (for rechecks: the recheck team's).
    pub member: Option<String>,
    /// Effective result (`compliant`, `basically_compliant`, `non_compliant`): the override,
    /// else the computed one. With `result` or `flag`, `overdue_tasks` is empty.
    pub result: Option<String>,
    /// A flag on the inspection or one of its photos: `outside_radius`,
    /// `captured_outside_inspection`, `no_location`, `declared_result_differs`.
    pub flag: Option<String>,
    /// `rectifications_due`: deadlines up to this many days from today (0–366, default 7);
    /// passed deadlines are always included (`overdue`).
    pub within_days: Option<u32>,
}

/// A queue's page parameters and filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueParams {
    /// `next_cursor` of the previous page (opaque).
    pub cursor: Option<String>,
    /// Entries per page, 1–200 (default 50).
    pub limit: Option<u32>,
    pub plan_id: Option<String>,
    pub round: Option<String>,
    pub town: Option<String>,
    pub member: Option<String>,
    pub result: Option<String>,
    pub flag: Option<String>,
    pub within_days: Option<u32>,
}

fn refused((code, message): Refusal) -> AppError {
    AppError::bad_request(code, message)
}

fn filter(raw: RawFilter) -> AppResult<QueueFilter> {
    raw.validate().map_err(refused)
}

/// One page of a queue. Entries: inspections (`waiting`: submitted, oldest submission first;
/// `returned`: returned and not resubmitted; `flagged`: waiting inspections flagged themselves
/// or by a photo), tasks (`overdue_tasks`: neither submitted nor cancelled, past the due date in
/// the bureau's zone, most overdue first) or follow-ups (`rectifications_due`: open 整改 orders
/// due within `within_days` or passed; `rechecks_due`: recheck task assigned, not submitted).
#[utoipa::path(get, path = "/api/v1/review/queues/{queue}", tag = "review", security(("bearer" = [])),
    params(("queue" = String, Path, description = "`waiting`, `returned`, `overdue_tasks`, `flagged`, `rectifications_due`, `rechecks_due`"), QueueParams),
    responses((status = 200, body = QueuePage),
        (status = 400, description = "`invalid_filter` (unknown `result` or `flag`, `limit` or `within_days` out of range), `invalid_cursor`, `bad_request`", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "`forbidden`: not an admin or reviewer", body = ErrorEnvelope),
        (status = 404, description = "`unknown_queue`", body = ErrorEnvelope)))]
async fn queue_page(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(p): ApiQuery<QueueParams>,
) -> AppResult<Json<QueuePage>> {
    user.require(&[Role::Admin, Role::Reviewer])?;
    let queue = Queue::parse(&name).ok_or_else(|| AppError::NotFoundCode {
        code: "unknown_queue",
        message: format!(
            "no queue {name:?}; queues: {}",
            Queue::ALL.map(|q| q.as_str()).join(", ")
        ),
    })?;
    let limit = page_limit(p.limit).map_err(refused)?;
    let f = filter(RawFilter {
        plan_id: p.plan_id,
        round: p.round,
        town: p.town,
        member: p.member,
        result: p.result,
        flag: p.flag,
        within_days: p.within_days,
    })?;
    let after = match p.cursor.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(c) => Some(Cursor::decode(c, queue).map_err(refused)?),
    };
    let today = state.config.time_zone.today();
    let horizon = queues::horizon(&today, f.within_days);
    let mut conn = state.db.acquire().await?;
    let mut entries = store::queues::page(
        &mut conn,
        queue,
        &f,
        &today,
        &horizon,
        after.as_ref(),
        limit + 1,
    )
    .await?;
    // Teams of the page's tasks in one query.
    let tasks: Vec<String> = entries.iter().filter_map(|e| e.task_id.clone()).collect();
    let mut teams: HashMap<String, Vec<TeamMember>> = HashMap::new();
    for (task, inspector, name, badge, _) in store::plans::members_of(&mut conn, &tasks).await? {
        teams
            .entry(task)
            .or_default()
            .push(TeamMember::officer(inspector, name, badge));
    }
    for e in &mut entries {
        e.team = e
            .task_id
            .as_ref()
            .and_then(|t| teams.get(t))
            .cloned()
            .unwrap_or_default();
    }
    Ok(Json(queues::page(queue, entries, limit)))
}

/// Entries per queue with the same filters, for a dashboard.
#[utoipa::path(get, path = "/api/v1/review/counts", tag = "review", security(("bearer" = [])),
    params(FilterParams),
    responses((status = 200, body = QueueCounts),
        (status = 400, description = "`invalid_filter`, `bad_request`", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "`forbidden`: not an admin or reviewer", body = ErrorEnvelope)))]
async fn queue_counts(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiQuery(p): ApiQuery<FilterParams>,
) -> AppResult<Json<QueueCounts>> {
    user.require(&[Role::Admin, Role::Reviewer])?;
    let f = filter(RawFilter {
        plan_id: p.plan_id,
        round: p.round,
        town: p.town,
        member: p.member,
        result: p.result,
        flag: p.flag,
        within_days: p.within_days,
    })?;
    let today = state.config.time_zone.today();
    let horizon = queues::horizon(&today, f.within_days);
    let mut conn = state.db.acquire().await?;
    let pairs = store::queues::counts(&mut conn, &f, &today, &horizon).await?;
    Ok(Json(QueueCounts::from_pairs(&pairs)))
}
