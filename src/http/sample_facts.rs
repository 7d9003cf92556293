//! `POST /api/v1/samples/{id}/facts`: the later facts of a 不合格 sample, one at a time. A thin
//! handler over `ops::sample_facts` (the rule is `sampling::facts::decide`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, Authorized, Roles};
use super::AppState;
use crate::auth::Role;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::ops::sample_facts::{self as uc, NewFact, SampleFacts};

/// Admins, reviewers and lab accounts.
pub struct FactRecorders;
impl Roles for FactRecorders {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Reviewer, Role::Lab];
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(record_fact))
}

/// Record one later fact of a 不合格 sample: `bureau_notified` (不合格结论报送, after the lab's
/// report) → `served` (送达被抽样者) → `retest_requested` (复检, within the
/// `retest_or_objection` window of 7 working days after service; refused for a
/// microbiological 不合格 item, naming it) or `objection_filed` (异议, same window) →
/// `retest_received` → `retest_reported` → `disposal_done` (核查处置完成, after service and any
/// requested 复检's report). A date is never after today (the bureau's day) nor before the
/// fact it follows. The same fact with the same date again is answered 200, unchanged;
/// another date for a recorded fact is 409.
///
/// Who: admins and reviewers every fact; the sample's lab only `bureau_notified`; the 复检 lab
/// (`retest_lab_id` of the request) only `retest_received` and `retest_reported`. Other labs:
/// 404, as for a sample that does not exist.
///
/// In the same transaction: the sample's deadlines are recomputed (`GET
/// /api/v1/sampling/deadlines`), `bureau_notified` opens the sample's 核查处置 follow-up (due 90
/// calendar days later; in the reviewers' `rectifications_due` queue) and `disposal_done`
/// closes it, and the audit events are written.
#[utoipa::path(post, path = "/api/v1/samples/{id}/facts", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sample id")),
    request_body = NewFact,
    responses(
        (status = 201, description = "Recorded: the sample's facts and deadlines", body = SampleFacts),
        (status = 200, description = "The same fact with the same date again: unchanged", body = SampleFacts),
        (status = 403, description = "`forbidden`: not an admin, reviewer or lab account, or a lab recording a fact that is not the lab's", body = ErrorEnvelope),
        (status = 404, description = "No such sample, or not one sent to (or to be retested by) the caller's lab", body = ErrorEnvelope),
        (status = 409, description = "`sample_not_unqualified` (no 不合格 result), `fact_out_of_order` (its predecessor is not recorded), `fact_already_recorded` (another date), `retest_not_available`", body = ErrorEnvelope),
        (status = 422, description = "`fact_in_future`, `fact_before_predecessor`, `retest_window_closed`, `objection_window_closed`, `retest_microbiological` (微生物项目不予复检; the message names the items), `retest_item_not_failed`, `retest_items_not_allowed`, `unknown_lab`, `validation_failed` (`note`: `too_long`; `retest_lab_id`: `not_allowed`, `retest_lab_same`), `calendar_year_missing`, `invalid_body`", body = ErrorEnvelope)))]
async fn record_fact(
    State(state): State<AppState>,
    user: Authorized<FactRecorders>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> AppResult<(StatusCode, Json<SampleFacts>)> {
    let ctx = user.ctx();
    uc::ensure_recorder(&state.db, &ctx, &id).await?;
    let n: NewFact = serde_json::from_value(body)
        .map_err(|e| AppError::unprocessable("invalid_body", e.to_string()))?;
    let (view, recorded) =
        uc::record_fact(&state.db, &ctx, state.config.time_zone, &id, &n).await?;
    let status = if recorded {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}
