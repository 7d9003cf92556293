//! `POST /api/v1/inspections/{id}/review`: the food-safety section's decision on a submitted
//! inspection (approve, return with comments, reject with a reason).

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, Authorized, Office};
use super::{rfc3339, AppState};
use crate::checklist::rule::ResultCode;
use crate::error::{AppResult, ErrorEnvelope};
use crate::ops::review::Reviewed;
use crate::review::{Decision, ItemComment, ReviewRecord, ReviewRequest, ReviewState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(review_inspection))
}

/// One decision of an inspection's review history.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewEntry {
    pub id: String,
    /// The submission round it decided (1 = the first submission).
    pub round: i64,
    pub decision: Decision,
    /// The general comment; for `rejected`, the reason.
    pub comment: Option<String>,
    pub item_comments: Vec<ItemComment>,
    pub override_result: Option<ResultCode>,
    pub override_reason: Option<String>,
    /// The section's own note (reviewers and admins only; never synced, printed or published).
    pub internal_note: Option<String>,
    pub reviewer_id: String,
    pub reviewer_name: String,
    /// RFC 3339.
    pub decided_at: String,
}

impl From<ReviewRecord> for ReviewEntry {
    fn from(r: ReviewRecord) -> ReviewEntry {
        ReviewEntry {
            id: r.id,
            round: r.round,
            decision: r.decision,
            comment: r.comment,
            item_comments: r.item_comments,
            override_result: r.override_result,
            override_reason: r.override_reason,
            internal_note: r.internal_note,
            reviewer_id: r.reviewer_id,
            reviewer_name: r.reviewer_name,
            decided_at: rfc3339(r.decided_at),
        }
    }
}

/// An inspection's review after a decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    pub inspection_id: String,
    pub task_id: String,
    /// `approved`, `returned` or `rejected` after a decision (`submitted` while waiting).
    pub review_state: Option<ReviewState>,
    /// Submissions so far (1 = first); a returned inspection resubmitted is round 2.
    pub review_round: i64,
    /// The result computed by the checklist version's rule at submission; kept beside an
    /// override.
    pub computed_result: Option<ResultCode>,
    /// The reviewer's overriding result, if any.
    pub override_result: Option<ResultCode>,
    /// Why the computed result was overridden.
    pub override_reason: Option<String>,
    /// The result that stands: `override_result` if set, else `computed_result`.
    pub effective_result: Option<ResultCode>,
    /// User id of the reviewer who decided.
    pub reviewed_by: Option<String>,
    /// RFC 3339.
    pub reviewed_at: Option<String>,
    /// The follow-up (整改 order) opened by approving a 基本符合 / 不符合 result.
    pub followup_id: Option<String>,
    /// The decision just recorded.
    pub review: ReviewEntry,
}

impl From<Reviewed> for ReviewView {
    fn from(r: Reviewed) -> ReviewView {
        let i = r.inspection;
        ReviewView {
            inspection_id: i.inspection_id,
            task_id: i.task_id,
            review_state: i.state,
            review_round: i.round,
            computed_result: i.computed_result,
            override_result: i.override_result,
            override_reason: i.override_reason,
            effective_result: i.effective_result,
            reviewed_by: i.reviewed_by,
            reviewed_at: i.reviewed_at.map(rfc3339),
            followup_id: r.followup_id,
            review: r.review.into(),
        }
    }
}

/// Decide a submitted inspection (reviewer, admin).
///
/// - `approved`: final. An `override_result` (with `override_reason`) replaces the computed
///   result as the one that stands; both stay recorded and shown. A 基本符合 / 不符合 result
///   opens a follow-up (`followup` is its order).
/// - `returned`: needs `comment` or `item_comments`. The inspection's lock lifts and the task
///   goes back to `in_progress`; the team's devices pull the comments (sync table `reviews`),
///   fix the inspection offline and submit it again (a new round).
/// - `rejected`: needs `reason`. The inspection is voided (stays locked, `rejected`) and the
///   task goes back to `assigned`, to be redone with a new inspection.
///
/// Every decision adds a history row (never changed), bumps the sync cursor for the team's
/// devices and is an audit event (`inspection_reviewed`). Of two reviewers deciding at once,
/// one wins and the other gets 409 `review_conflict`.
#[utoipa::path(post, path = "/api/v1/inspections/{id}/review", tag = "review", security(("bearer" = [])),
    params(("id" = String, Path, description = "Inspection id")),
    request_body = ReviewRequest,
    responses(
        (status = 200, body = ReviewView),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "Only reviewers and admins decide", body = ErrorEnvelope),
        (status = 404, description = "No such inspection", body = ErrorEnvelope),
        (status = 409, description = "`review_conflict`: the inspection is not waiting for review (not submitted, already decided, returned and not yet resubmitted, or decided by another reviewer meanwhile)", body = ErrorEnvelope),
        (status = 422, description = "`comment_required` (returned without comments), `unknown_item` (an item comment on an item the checklist version lacks), `reason_required` (rejected without a reason), `override_reason_required`, `validation_failed` (texts too long, override or follow-up with the wrong decision, ...), `invalid_body`, `control_character`", body = ErrorEnvelope)))]
async fn review_inspection(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ReviewRequest>,
) -> AppResult<Json<ReviewView>> {
    let settings = crate::followup::Settings::from_config(&state.config);
    let reviewed = crate::ops::review::decide(&state.db, &user.ctx(), &id, &req, &settings).await?;
    Ok(Json(reviewed.into()))
}
