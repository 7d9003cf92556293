//! `GET /api/v1/inspections/{id}`: one inspection in one call, for reviewers (and an inspector
//! of the task's team).

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiPath, AuthUser, Authorized, Staff};
use super::AppState;
use crate::auth::Role;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::review::detail::{InspectionDetail, Reader};
use crate::store;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_inspection))
}

/// Loads the detail the caller may read: any inspection for admins and reviewers; for an
/// inspector only one of a task whose team they are on (404 otherwise, exactly as a missing
/// id, so ids of other teams reveal nothing).
pub(crate) async fn visible_detail(
    state: &AppState,
    user: &AuthUser,
    id: &str,
) -> AppResult<InspectionDetail> {
    user.require(&[Role::Admin, Role::Reviewer, Role::Inspector])?;
    let missing = || AppError::not_found("no such inspection");
    let mut conn = state.db.acquire().await?;
    let reader = if user.role == Role::Inspector {
        let task = store::inspection_detail::task_of(&mut conn, id)
            .await?
            .ok_or_else(missing)?;
        if !store::plans::is_member(&mut conn, &task, &user.id).await? {
            return Err(missing());
        }
        Reader::Inspector
    } else {
        Reader::Office
    };
    let parts = store::inspection_detail::load(&mut conn, id)
        .await?
        .ok_or_else(missing)?;
    Ok(InspectionDetail::build(parts, reader))
}

/// One inspection with everything a reviewer needs: answers with the checklist's wording
/// (failed items first), the computed result with its counts and rule edition, the override
/// and effective result, photos with their links, EXIF and flags, the inspection point and the
/// establishment's location with the distance, the team with badges, the establishment's
/// earlier results and the review history (`internal_note` only for reviewers and admins).
#[utoipa::path(get, path = "/api/v1/inspections/{id}", tag = "review", security(("bearer" = [])),
    params(("id" = String, Path, description = "Inspection id")),
    responses((status = 200, body = InspectionDetail),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "`forbidden`: not an admin, reviewer or inspector", body = ErrorEnvelope),
        (status = 404, description = "`not_found`: no such inspection, or not the caller's team's", body = ErrorEnvelope)))]
async fn get_inspection(
    State(state): State<AppState>,
    user: Authorized<Staff>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<InspectionDetail>> {
    Ok(Json(visible_detail(&state, &user, &id).await?))
}
