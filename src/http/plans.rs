//! `/api/v1/plans` (随机查餐厅 rounds and their draws) and `/api/v1/conflicts` (回避).

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Admins, ApiJson, ApiPath, ApiQuery, Authorized, Office};
use super::{rfc3339, AppState};
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::ops;
use crate::plan::draw::{self, DrawRecord};
use crate::plan::{Plan, PlanStatus, PoolFilter, RawPlan};
use crate::store::{
    self,
    plans::{ConflictRow, DrawRow, Progress},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plans, create_plan))
        .routes(routes!(get_plan))
        .routes(routes!(run_draw))
        .routes(routes!(verify_draw))
        .routes(routes!(draw_record))
        .routes(routes!(list_conflicts, create_conflict))
        .routes(routes!(delete_conflict))
}

/// Task counts of the plan's current draw.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ProgressView {
    pub assigned: i64,
    pub in_progress: i64,
    pub submitted: i64,
    pub cancelled: i64,
    /// Assigned or in progress, and past the due date.
    pub overdue: i64,
}

impl From<Progress> for ProgressView {
    fn from(p: Progress) -> Self {
        ProgressView {
            assigned: p.assigned,
            in_progress: p.in_progress,
            submitted: p.submitted,
            cancelled: p.cancelled,
            overdue: p.overdue,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlanView {
    pub id: String,
    pub name: String,
    pub round_title: String,
    pub theme: String,
    /// `YYYY-MM-DD`.
    pub period_start: String,
    pub period_end: String,
    pub due_date: String,
    pub template_id: String,
    pub template_version: i64,
    pub filter: PoolFilter,
    /// `{"explicit": {...}}` or `{"weighted": {"total", "weights"}}`.
    #[schema(value_type = Object)]
    pub quotas: draw::Quotas,
    pub exclude_inspected_within_days: Option<i64>,
    pub inspector_ids: Vec<String>,
    pub team_size: i64,
    /// `draft` (not drawn yet) or `drawn`.
    pub status: PlanStatus,
    pub current_draw_id: Option<String>,
    pub progress: ProgressView,
    /// RFC 3339.
    pub created_at: String,
}

fn plan_view(p: Plan, progress: Option<Progress>) -> PlanView {
    PlanView {
        id: p.id,
        name: p.name,
        round_title: p.round_title,
        theme: p.theme,
        period_start: p.period_start.to_string(),
        period_end: p.period_end.to_string(),
        due_date: p.due_date.to_string(),
        template_id: p.template_id,
        template_version: p.template_version,
        filter: p.filter,
        quotas: p.quotas,
        exclude_inspected_within_days: p.exclude_inspected_within_days,
        inspector_ids: p.inspector_ids,
        team_size: p.team_size,
        status: p.status,
        current_draw_id: p.current_draw_id,
        progress: progress.unwrap_or_default().into(),
        created_at: rfc3339(p.created_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanPage {
    pub items: Vec<PlanView>,
    pub total_count: i64,
    pub page: u32,
    pub page_size: u32,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// From 1 (default 1).
    pub page: Option<u32>,
    /// 1–200 (default 50).
    pub page_size: Option<u32>,
}

fn paging(p: &PageParams) -> AppResult<(u32, u32)> {
    let size = p.page_size.unwrap_or(50);
    if !(1..=200).contains(&size) {
        return Err(AppError::bad_request(
            "bad_request",
            "page_size must be between 1 and 200",
        ));
    }
    Ok((p.page.unwrap_or(1).max(1), size))
}

/// Plans, newest first, with progress (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/plans", tag = "plans", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = PlanPage), (status = 403, body = ErrorEnvelope)))]
async fn list_plans(
    State(state): State<AppState>,
    _: Authorized<Office>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> AppResult<Json<PlanPage>> {
    let (page, page_size) = paging(&p)?;
    let mut conn = state.db.acquire().await?;
    let (rows, total) = store::plans::list_plans(&mut conn, page, page_size).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut progress =
        store::plans::progress(&mut conn, &ids, &state.config.time_zone.today()).await?;
    let items = rows
        .into_iter()
        .map(|r| {
            let p = progress.remove(&r.id);
            plan_view(r, p)
        })
        .collect();
    Ok(Json(PlanPage {
        items,
        total_count: total,
        page,
        page_size,
    }))
}

/// A warning about a created plan: it is stored as given, but deserves a second look.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlanWarning {
    /// `due_date_in_past` (before today, the bureau's date), `due_date_not_working_day` (a
    /// weekend day or public holiday on the working-day calendar), `calendar_year_missing` (the
    /// calendar has no data for the due date's year, so it could not be checked).
    pub code: crate::calendar::DateWarning,
    pub message: String,
}

/// The created plan, with warnings about its due date.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanCreated {
    #[serde(flatten)]
    pub plan: PlanView,
    /// Empty when nothing deserves a second look.
    pub warnings: Vec<PlanWarning>,
}

fn warning(w: crate::calendar::DateWarning, due: chrono::NaiveDate) -> PlanWarning {
    use crate::calendar::DateWarning as W;
    let message = match w {
        W::DueDateInPast => format!("the due date {due} is in the past"),
        W::DueDateNotWorkingDay => {
            format!("the due date {due} is a weekend day or public holiday")
        }
        W::CalendarYearMissing => format!(
            "the working-day calendar has no data for {}; the due date could not be checked",
            chrono::Datelike::year(&due)
        ),
    };
    PlanWarning { code: w, message }
}

/// Create a plan (admin). It can be drawn once created. A due date in the past or on a
/// non-working day is accepted with a warning.
#[utoipa::path(post, path = "/api/v1/plans", tag = "plans", security(("bearer" = [])),
    request_body = RawPlan,
    responses(
        (status = 201, body = PlanCreated),
        (status = 403, body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (`details`: `{field, code, message}`), e.g. a template version that is not published or users that are not active inspectors", body = ErrorEnvelope)))]
async fn create_plan(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiJson(raw): ApiJson<RawPlan>,
) -> AppResult<(StatusCode, Json<PlanCreated>)> {
    let plan = ops::plans::create_plan(&state.db, &user.ctx(), raw).await?;
    let settings = crate::followup::Settings::from_config(&state.config);
    let due = plan.due_date;
    let warnings = ops::followup::due_date_warnings(&state.db, &settings, due)
        .await?
        .into_iter()
        .map(|w| warning(w, due))
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(PlanCreated {
            plan: plan_view(plan, None),
            warnings,
        }),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanDetail {
    pub plan: PlanView,
    /// Every draw of the plan, oldest first; at most one is current (not superseded).
    pub draws: Vec<DrawSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DrawSummary {
    pub id: String,
    /// 1 for the first draw, 2 for the first redraw, ...
    pub seq: i64,
    pub seed: String,
    pub algorithm: String,
    /// SHA-256 of the canonical candidate pool.
    pub pool_hash: String,
    pub pool_size: i64,
    pub drawn_count: i64,
    /// Why this redraw was made (null for the first draw).
    pub reason: Option<String>,
    pub drawn_at: String,
    /// Set when a later redraw replaced this draw.
    pub superseded_at: Option<String>,
}

impl From<DrawRow> for DrawSummary {
    fn from(d: DrawRow) -> Self {
        DrawSummary {
            id: d.id,
            seq: d.seq,
            seed: d.seed,
            algorithm: d.algorithm,
            pool_hash: d.pool_hash,
            pool_size: d.pool_size,
            drawn_count: d.drawn_count,
            reason: d.reason,
            drawn_at: rfc3339(d.drawn_at),
            superseded_at: d.superseded_at.map(rfc3339),
        }
    }
}

/// A plan with its draws and progress (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/plans/{id}", tag = "plans", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plan id")),
    responses((status = 200, body = PlanDetail), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn get_plan(
    State(state): State<AppState>,
    _: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<PlanDetail>> {
    let mut conn = state.db.acquire().await?;
    let plan = store::plans::get_plan(&mut conn, &id)
        .await?
        .ok_or_else(|| AppError::not_found("no such plan"))?;
    let mut progress = store::plans::progress(
        &mut conn,
        std::slice::from_ref(&plan.id),
        &state.config.time_zone.today(),
    )
    .await?;
    let draws = store::plans::draws_of(&mut conn, &plan.id)
        .await?
        .into_iter()
        .map(DrawSummary::from)
        .collect();
    let p = progress.remove(&plan.id);
    Ok(Json(PlanDetail {
        plan: plan_view(plan, p),
        draws,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DrawRequest {
    /// The random seed, supplied at draw time: e.g. a published lottery number or a value read
    /// out at a public meeting. 1–200 characters, used exactly as given.
    pub seed: String,
    /// Required for a redraw (the plan was drawn before); the earlier draw stays on record.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TeamMember {
    pub inspector_id: String,
    pub name: String,
    /// 执法证号.
    pub badge_no: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DrawnEntry {
    /// Position in draw order, from 1.
    pub order: usize,
    pub establishment_id: String,
    pub sign_name: String,
    pub licensed_name: String,
    pub address: String,
    pub risk_grade: String,
    /// The inspectors assigned (empty when unassignable).
    pub team: Vec<TeamMember>,
    /// Why no team could be formed (回避), when that is the case.
    pub unassignable_reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DrawView {
    pub draw: DrawSummary,
    /// Establishments drawn per risk grade.
    #[schema(value_type = Object)]
    pub allocation: std::collections::BTreeMap<draw::Grade, u32>,
    pub drawn: Vec<DrawnEntry>,
    /// How many drawn establishments got no team (see `unassignable_reason`).
    pub unassignable_count: usize,
}

async fn draw_view(state: &AppState, row: DrawRow, record: &DrawRecord) -> AppResult<DrawView> {
    let ids: Vec<String> = record.outcome.drawn.iter().map(|u| u.to_string()).collect();
    let mut conn = state.db.acquire().await?;
    let rows = store::establishments::by_ids(&mut conn, &ids).await?;
    let active_ids: Vec<String> = record
        .input
        .inspectors
        .iter()
        .map(|i| i.id.to_string())
        .collect();
    let people: HashMap<String, (String, Option<String>)> =
        store::plans::active_inspectors(&mut conn, &active_ids)
            .await?
            .into_iter()
            .map(|(id, name, badge)| (id, (name, badge)))
            .collect();
    drop(conn);
    let by_id: HashMap<String, crate::establishment::Establishment> =
        rows.into_iter().map(|r| (r.id.clone(), r)).collect();
    let teams: HashMap<uuid::Uuid, &draw::Team> = record
        .outcome
        .teams
        .iter()
        .map(|t| (t.establishment_id, t))
        .collect();
    let unassignable: HashMap<uuid::Uuid, &draw::Unassignable> = record
        .outcome
        .unassignable
        .iter()
        .map(|u| (u.establishment_id, u))
        .collect();
    let drawn = record
        .outcome
        .drawn
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let e = by_id.get(&id.to_string());
            DrawnEntry {
                order: i + 1,
                establishment_id: id.to_string(),
                sign_name: e.map(|e| e.sign_name.clone()).unwrap_or_default(),
                licensed_name: e.map(|e| e.licensed_name.clone()).unwrap_or_default(),
                address: e.map(|e| e.address.clone()).unwrap_or_default(),
                risk_grade: e
                    .map(|e| e.risk_grade.as_str().to_string())
                    .unwrap_or_default(),
                team: teams
                    .get(id)
                    .map(|t| {
                        t.inspector_ids
                            .iter()
                            .map(|p| {
                                let (name, badge) =
                                    people.get(&p.to_string()).cloned().unwrap_or_default();
                                TeamMember {
                                    inspector_id: p.to_string(),
                                    name,
                                    badge_no: badge,
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                unassignable_reason: unassignable.get(id).map(|u| u.reason.clone()),
            }
        })
        .collect();
    Ok(DrawView {
        draw: row.into(),
        allocation: record.outcome.allocation.clone(),
        drawn,
        unassignable_count: record.outcome.unassignable.len(),
    })
}

/// Draw the plan (admin): establishments at random from the candidate pool, then teams at
/// random from the inspector pool, never putting an inspector on an establishment they declared
/// a conflict with, with balanced workloads. Each drawn establishment with a team becomes a
/// task. A plan is drawn once; a redraw needs a `reason`, keeps the earlier draw on record and
/// cancels its tasks (refused once field work has started).
#[utoipa::path(post, path = "/api/v1/plans/{id}/draw", tag = "plans", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plan id")),
    request_body = DrawRequest,
    responses(
        (status = 201, body = DrawView),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`already_drawn` (no reason given), `draw_in_progress` (tasks started), `conflict` (concurrent draw)", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (seed), `draw_impossible` (e.g. a quota exceeds the candidates of its grade)", body = ErrorEnvelope)))]
async fn run_draw(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<DrawRequest>,
) -> AppResult<(StatusCode, Json<DrawView>)> {
    let (row, record) = ops::draw_plan(
        &state.db,
        &user.ctx(),
        &id,
        &req.seed,
        req.reason.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(draw_view(&state, row, &record).await?),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyResult {
    pub draw_id: String,
    /// True when re-running the algorithm on the stored inputs gives exactly the stored outcome.
    pub matches: bool,
    /// What differs (empty when `matches`).
    pub differences: Vec<String>,
}

/// Recompute the current draw from its stored record and compare (admin, reviewer).
#[utoipa::path(post, path = "/api/v1/plans/{id}/draw/verify", tag = "plans", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plan id")),
    responses((status = 200, body = VerifyResult), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn verify_draw(
    State(state): State<AppState>,
    _: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<VerifyResult>> {
    let (draw_id, record) = ops::plans::current_record(&state.db, &id).await?;
    let differences = tokio::task::spawn_blocking(move || draw::verify_record(&record))
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(Json(VerifyResult {
        draw_id,
        matches: differences.is_empty(),
        differences,
    }))
}

/// The full internal draw record `{input, outcome}` (admin), for
/// `foodcheck draw verify --record FILE`. It holds inspector ids and declared conflicts, so it
/// is not public; the public record is at `/public/v1/plans/{id}/draw/record`. Each download
/// is recorded in the audit log (`personal_data_exported`).
#[utoipa::path(get, path = "/api/v1/plans/{id}/draw/record", tag = "plans", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plan id")),
    responses((status = 200, description = "DrawRecord JSON", body = Object), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn draw_record(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<DrawRecord>> {
    let record = ops::plans::export_draw_record(&state.db, &user.ctx(), &id).await?;
    Ok(Json(record))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ConflictBody {
    pub inspector_id: String,
    pub establishment_id: String,
    /// Why the inspector must step aside (e.g. 亲属关系, 曾任职). Internal only.
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConflictView {
    pub id: String,
    pub inspector_id: String,
    pub inspector_name: String,
    pub establishment_id: String,
    pub sign_name: String,
    pub reason: String,
    pub created_at: String,
}

impl From<ConflictRow> for ConflictView {
    fn from(r: ConflictRow) -> Self {
        ConflictView {
            id: r.id,
            inspector_id: r.inspector_id,
            inspector_name: r.inspector_name,
            establishment_id: r.establishment_id,
            sign_name: r.sign_name,
            reason: r.reason,
            created_at: rfc3339(r.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConflictPage {
    pub items: Vec<ConflictView>,
    pub total_count: i64,
    pub page: u32,
    pub page_size: u32,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConflictParams {
    pub inspector_id: Option<String>,
    pub establishment_id: Option<String>,
    pub page: Option<u32>,
    pub page_size: Option<u32>,
}

/// Declared conflicts of interest (admin).
#[utoipa::path(get, path = "/api/v1/conflicts", tag = "plans", security(("bearer" = [])), params(ConflictParams),
    responses((status = 200, body = ConflictPage), (status = 403, body = ErrorEnvelope)))]
async fn list_conflicts(
    State(state): State<AppState>,
    _: Authorized<Admins>,
    ApiQuery(p): ApiQuery<ConflictParams>,
) -> AppResult<Json<ConflictPage>> {
    let (page, page_size) = paging(&PageParams {
        page: p.page,
        page_size: p.page_size,
    })?;
    let mut conn = state.db.acquire().await?;
    let (rows, total) = store::plans::list_conflicts(
        &mut conn,
        p.inspector_id.as_deref(),
        p.establishment_id.as_deref(),
        page,
        page_size,
    )
    .await?;
    let items = rows.into_iter().map(ConflictView::from).collect();
    Ok(Json(ConflictPage {
        items,
        total_count: total,
        page,
        page_size,
    }))
}

/// Declare that an inspector must not inspect an establishment (回避) (admin).
#[utoipa::path(post, path = "/api/v1/conflicts", tag = "plans", security(("bearer" = [])),
    request_body = ConflictBody,
    responses(
        (status = 201, body = ConflictView),
        (status = 403, body = ErrorEnvelope),
        (status = 409, description = "`duplicate`: already declared", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed`: unknown inspector or establishment, empty reason", body = ErrorEnvelope)))]
async fn create_conflict(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiJson(b): ApiJson<ConflictBody>,
) -> AppResult<(StatusCode, Json<ConflictView>)> {
    let conflict = ops::plans::NewConflict {
        inspector_id: b.inspector_id,
        establishment_id: b.establishment_id,
        reason: b.reason,
    };
    let row = ops::plans::declare_conflict(&state.db, &user.ctx(), conflict).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Withdraw a declared conflict (admin). Draws already made keep the conflicts they used.
#[utoipa::path(delete, path = "/api/v1/conflicts/{id}", tag = "plans", security(("bearer" = [])),
    params(("id" = String, Path, description = "Conflict id")),
    responses((status = 204), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn delete_conflict(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<StatusCode> {
    ops::plans::remove_conflict(&state.db, &user.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
