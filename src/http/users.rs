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
use crate::auth::{check_password_policy, password, Role, Username};
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::store::{self, users::User};

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
    _: Authorized<Admins>,
    ApiJson(req): ApiJson<CreateUser>,
) -> AppResult<(StatusCode, Json<UserView>)> {
    let username = Username::parse(&req.username)
        .map_err(|m| AppError::unprocessable("validation_failed", m))?;
    check_password_policy(&req.password)
        .map_err(|m| AppError::unprocessable("validation_failed", m))?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::unprocessable(
            "validation_failed",
            "name must be 1 to 100 characters",
        ));
    }
    let badge_no = req
        .badge_no
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty());
    if req.role == Role::Inspector && badge_no.is_none() {
        return Err(AppError::unprocessable(
            "validation_failed",
            "inspectors need a badge_no (执法证号)",
        ));
    }
    let hash = password::hash_password(req.password).await?;
    let new = store::users::NewUser {
        username: username.as_str(),
        name,
        role: req.role,
        badge_no,
        phone: req
            .phone
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty()),
        password_hash: &hash,
    };
    match store::users::create(&state.db, new).await {
        Ok(created) => Ok((StatusCode::CREATED, Json(created.into()))),
        Err(e) if store::is_unique_violation(&e) => Err(AppError::conflict(
            "duplicate",
            "a user with that username or badge number already exists",
        )),
        Err(e) => Err(e.into()),
    }
}

async fn set_disabled(
    state: &AppState,
    actor: &AuthUser,
    id: &str,
    disabled: bool,
) -> AppResult<StatusCode> {
    actor.require(&[Role::Admin])?;
    let target = store::users::by_id(&state.db, id)
        .await?
        .ok_or_else(|| AppError::not_found("no such user"))?;
    if disabled && target.id == actor.id {
        return Err(AppError::conflict(
            "conflict",
            "an admin cannot disable their own account",
        ));
    }
    if disabled {
        store::users::disable(&state.db, &target.username, Some(&actor.id)).await?;
    } else {
        store::users::enable(&state.db, &target.username, Some(&actor.id)).await?;
    }
    Ok(StatusCode::NO_CONTENT)
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
    set_disabled(&state, &user, &id, true).await
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
    set_disabled(&state, &user, &id, false).await
}
