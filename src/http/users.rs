//! `/api/v1/users`: account management for admins (the CLI does the same from the shell).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Admins, ApiJson, ApiPath, AuthUser, Authorized};
use super::AppState;
use crate::auth::{NewUser, Role, User};
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::ops::accounts::{self, Target};
use crate::store;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    /// User id (UUID).
    pub id: String,
    pub username: String,
    pub name: String,
    pub role: Role,
    /// 执法证号 (inspectors).
    pub badge_no: Option<String>,
    pub phone: Option<String>,
    /// A disabled account cannot log in and all its tokens are revoked.
    pub disabled: bool,
    /// RFC 3339.
    pub created_at: String,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id,
            username: u.username,
            name: u.name,
            role: u.role,
            badge_no: u.badge_no,
            phone: u.phone,
            disabled: u.disabled,
            created_at: crate::http::rfc3339(u.created_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUser {
    /// 3–64 characters: ASCII letters, digits, `.`, `_`, `-`; stored lower-case.
    pub username: String,
    /// At least 10 characters.
    pub password: String,
    pub role: Role,
    pub name: String,
    /// Required for inspectors; unique.
    pub badge_no: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<UserView>,
}

/// List accounts (admin).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserList), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
async fn list_users(State(state): State<AppState>, user: AuthUser) -> AppResult<Json<UserList>> {
    user.require(&[Role::Admin])?;
    let items = store::users::list(&state.db)
        .await?
        .into_iter()
        .map(UserView::from)
        .collect();
    Ok(Json(UserList { items }))
}

/// Create an account (admin).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, body = UserView),
        (status = 403, body = ErrorEnvelope),
        (status = 409, description = "`duplicate`: username or badge number taken", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed`", body = ErrorEnvelope)))]
async fn create_user(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiJson(req): ApiJson<CreateUser>,
) -> AppResult<(StatusCode, Json<UserView>)> {
    let new = NewUser::parse(
        &req.username,
        req.role,
        &req.name,
        req.badge_no.as_deref(),
        req.phone.as_deref(),
    )
    .map_err(|m| AppError::unprocessable("validation_failed", m))?;
    let created = accounts::create_user(&state.db, &user.ctx(), &new, req.password).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Disable an account and revoke all its tokens at once (admin).
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 204), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`conflict`: an admin cannot disable their own account", body = ErrorEnvelope)))]
async fn disable_user(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<StatusCode> {
    accounts::disable_user(&state.db, &user.ctx(), Target::Id(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Re-enable an account (admin). Tokens revoked by disabling stay revoked.
#[utoipa::path(post, path = "/api/v1/users/{id}/enable", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 204), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn enable_user(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<StatusCode> {
    accounts::enable_user(&state.db, &user.ctx(), Target::Id(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
