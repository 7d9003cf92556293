//! `/api/v1/followups`: 整改 → 复查 follow-ups opened by approvals, and scheduling a recheck.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, Authorized, Office, Staff};
use super::{rfc3339, AppState};
use crate::checklist::rule::ResultCode;
use crate::error::{AppResult, ErrorEnvelope};
use crate::followup::{Followup, FollowupState, Settings};
use crate::ops;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_followup))
        .routes(routes!(schedule_recheck))
}

/// A follow-up: 整改 → 复查 of an inspection, or 核查处置 of a 不合格 sample. Exactly one of
/// `inspection_id` and `sample_id` is set.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FollowupView {
    pub id: String,
    /// The approved inspection that opened it; `null` for a sample's follow-up.
    pub inspection_id: Option<String>,
    /// The 不合格 sample whose bureau notification opened it (核查处置, due 90 calendar days
    /// later, closed by the sample's `disposal_done` fact); `null` for an inspection's.
    pub sample_id: Option<String>,
    pub establishment_id: String,
    /// The origin inspection's plan (the recheck task belongs to it too); `null` for a
    /// sample's follow-up.
    pub plan_id: Option<String>,
    /// The approved result: `basically_compliant` (基本符合, 书面限期整改) or `non_compliant`
    /// (不符合); `null` for a sample's follow-up (its origin is the 不合格 result).
    pub origin_result: Option<ResultCode>,
    /// `open` (waiting for its deadline) → `recheck_assigned` (the recheck task is with the
    /// team) → `closed` (every must-check item passed) or `escalated` (one did not).
    pub state: FollowupState,
    /// 整改要求 as written on the order.
    pub order_text: Option<String>,
    /// Day of the order, `YYYY-MM-DD` (the bureau's date).
    pub ordered_on: String,
    /// 整改期限 in working days (inspection follow-ups; `null` for a sample's).
    pub period_working_days: Option<u32>,
    /// The 核查处置 period in calendar days (a sample's follow-up: 90; `null` otherwise).
    pub period_calendar_days: Option<u32>,
    /// `ordered_on` + the period (working days on the bureau's calendar, or calendar days
    /// for a sample's), `YYYY-MM-DD`; an inspection's recheck task is created once this day
    /// comes.
    pub deadline: String,
    /// Item codes failed at the origin inspection: the recheck's must-check items.
    pub failed_items: Vec<String>,
    /// 立即停止经营 ordered (不符合 only).
    pub stop_operating: bool,
    /// 立案 (a case opened; 不符合 only).
    pub case_opened: bool,
    /// User ids of the recheck team, in order.
    pub recheck_team: Vec<String>,
    /// The recheck task (`tasks`, kind `recheck`), once created.
    pub recheck_task_id: Option<String>,
    /// The submitted recheck inspection that closed or escalated it.
    pub recheck_inspection_id: Option<String>,
    /// The recheck inspection's computed result.
    pub outcome_result: Option<ResultCode>,
    /// When it was closed or escalated, RFC 3339.
    pub closed_at: Option<String>,
    /// User id of the reviewer who approved (or `system`).
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
}

impl From<Followup> for FollowupView {
    fn from(f: Followup) -> Self {
        FollowupView {
            id: f.id,
            inspection_id: f.inspection_id,
            sample_id: f.sample_id,
            establishment_id: f.establishment_id,
            plan_id: f.plan_id,
            origin_result: f.origin_result,
            state: f.state,
            order_text: f.order_text,
            ordered_on: f.ordered_on.to_string(),
            period_working_days: f.period_working_days,
            period_calendar_days: f.period_calendar_days,
            deadline: f.deadline.to_string(),
            failed_items: f.failed_items,
            stop_operating: f.stop_operating,
            case_opened: f.case_opened,
            recheck_team: f.recheck_team,
            recheck_task_id: f.recheck_task_id,
            recheck_inspection_id: f.recheck_inspection_id,
            outcome_result: f.outcome_result,
            closed_at: f.closed_at.map(rfc3339),
            created_by: f.created_by,
            created_at: rfc3339(f.created_at),
            updated_at: rfc3339(f.updated_at),
        }
    }
}

/// One follow-up (admin, reviewer; inspectors of its origin or recheck team).
#[utoipa::path(get, path = "/api/v1/followups/{id}", tag = "followups", security(("bearer" = [])),
    params(("id" = String, Path, description = "Follow-up id")),
    responses((status = 200, body = FollowupView), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such follow-up, or not the caller's team's", body = ErrorEnvelope)))]
async fn get_followup(
    State(state): State<AppState>,
    user: Authorized<Staff>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<FollowupView>> {
    let f = ops::followup::get(&state.db, &user.ctx(), &id).await?;
    Ok(Json(f.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecheckRequest {
    /// Another recheck team (user ids of at least two active inspectors, none with a conflict
    /// at the establishment); default: the follow-up's `recheck_team`.
    pub recheck_team: Option<Vec<String>>,
}

/// Create the follow-up's recheck task (复查) now, before its deadline (admin, reviewer). The
/// task (kind `recheck`, the failed items as `must_check_items`, due a configured number of
/// working days from today) reaches the team's devices on their next sync pull.
#[utoipa::path(post, path = "/api/v1/followups/{id}/recheck", tag = "followups", security(("bearer" = [])),
    params(("id" = String, Path, description = "Follow-up id")),
    request_body = RecheckRequest,
    responses((status = 200, description = "The follow-up, now `recheck_assigned`", body = FollowupView),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`invalid_state`: the follow-up is not open (its recheck exists, or it is closed), or it is a sample's 核查处置 (no recheck)", body = ErrorEnvelope),
        (status = 422, description = "`recheck_team_too_small`, `recheck_inspector_not_active`, `recheck_inspector_conflict`, `calendar_year_missing`", body = ErrorEnvelope)))]
async fn schedule_recheck(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<RecheckRequest>,
) -> AppResult<Json<FollowupView>> {
    let settings = Settings::from_config(&state.config);
    let f =
        ops::followup::schedule_recheck(&state.db, &user.ctx(), &settings, &id, req.recheck_team)
            .await?;
    Ok(Json(f.into()))
}
