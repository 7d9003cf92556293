//! `/api/v1/auth/*` and `/api/v1/me`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{request_id, ApiJson, AuthUser, ClientIp};
use super::AppState;
use crate::audit::{Actor, Ctx};
use crate::auth::{DeviceId, Role};
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::ops::accounts::{self, Credentials, Tokens};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Case-insensitive username.
    pub username: String,
    pub password: String,
    /// Stable id of the app installation (1–128 characters). The refresh token is bound to it;
    /// a new login on the same device revokes the device's earlier session.
    pub device_id: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// JWT (HS256) to send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Opaque token for `POST /api/v1/auth/refresh`. Single use: every refresh returns a new
    /// one, and presenting a used one revokes the device's session.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Lifetime of the access token, seconds.
    pub expires_in: u64,
    /// Lifetime of the refresh token, seconds.
    pub refresh_expires_in: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
    /// The `device_id` given at login. With it, a retry of the refresh token just used (its
    /// answer was lost) within `refresh_retry_grace_secs` gets the same new refresh token
    /// instead of revoking the session; a different device_id revokes the session.
    #[serde(default)]
    pub device_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LogoutRequest {
    pub refresh_token: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// User id (UUID).
    pub id: String,
    pub username: String,
    /// Full name.
    pub name: String,
    pub role: Role,
    /// 执法证号, the enforcement badge number (inspectors).
    pub badge_no: Option<String>,
    /// Mobile phone.
    pub phone: Option<String>,
}

impl From<Tokens> for TokenResponse {
    fn from(t: Tokens) -> Self {
        TokenResponse {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            token_type: "Bearer".into(),
            expires_in: t.expires_in,
            refresh_expires_in: t.refresh_expires_in,
        }
    }
}

/// The context of a request made without an access token: nobody proven yet, the device it
/// claims, and the request id.
fn anonymous(headers: &HeaderMap, device: Option<&DeviceId>) -> Ctx {
    Ctx::new(
        Actor {
            device_id: device.map(|d| d.as_str().to_owned()),
            ..Actor::default()
        },
        request_id(headers),
    )
}

fn invalid_device(m: String) -> AppError {
    AppError::unprocessable("invalid_body", m)
}

/// Log in with username and password.
///
/// Failed attempts are throttled per username and per client address: past the limit the
/// answer is 429 with `Retry-After` (seconds), whether or not the password is right.
/// Logins to an existing account are recorded in the audit log, failed ones too (never the
/// password).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "`invalid_credentials` or `account_disabled`", body = ErrorEnvelope),
        (status = 422, description = "`invalid_body`: missing fields or bad device_id", body = ErrorEnvelope),
        (status = 429, description = "`too_many_requests`; see `Retry-After`", body = ErrorEnvelope),
    ))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> AppResult<Json<TokenResponse>> {
    let device = DeviceId::parse(&req.device_id).map_err(invalid_device)?;
    let ctx = anonymous(&headers, Some(&device));
    let credentials = Credentials {
        username: req.username,
        password: req.password,
        device,
        client_ip: ip,
    };
    Ok(Json(
        accounts::login(&state, &ctx, credentials).await?.into(),
    ))
}

/// Exchange a refresh token for a new access token and a new refresh token.
///
/// The presented refresh token is used up. Presenting it again (a replay, or a stolen copy)
/// revokes every token of that device's session, access tokens included. One exception: the
/// same device (`device_id` sent) retrying within `refresh_retry_grace_secs` of the rotation,
/// before using the new refresh token, gets the same new refresh token again (its first answer
/// was lost). A `device_id` other than the token's own revokes the session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "`invalid_refresh_token` or `refresh_token_reused`", body = ErrorEnvelope),
        (status = 422, description = "`invalid_body`: missing fields or bad device_id", body = ErrorEnvelope),
    ))]
async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> AppResult<Json<TokenResponse>> {
    let device = req
        .device_id
        .as_deref()
        .map(DeviceId::parse)
        .transpose()
        .map_err(invalid_device)?;
    let ctx = anonymous(&headers, device.as_ref());
    let tokens = accounts::refresh(&state, &ctx, &req.refresh_token, device.as_ref()).await?;
    Ok(Json(tokens.into()))
}

/// Log out: revokes the session (token family) of the given refresh token, and with it the
/// session's access tokens. Always 204.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    request_body = LogoutRequest,
    responses((status = 204, description = "Logged out (also when the token was unknown)")))]
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LogoutRequest>,
) -> AppResult<StatusCode> {
    accounts::logout(&state.db, &anonymous(&headers, None), &req.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who am I.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Me),
        (status = 401, description = "`missing_token`, `invalid_token`, `token_expired`, `account_disabled`", body = ErrorEnvelope),
    ))]
async fn me(user: AuthUser) -> Json<Me> {
    Json(Me {
        id: user.id,
        username: user.username,
        name: user.name,
        role: user.role,
        badge_no: user.badge_no,
        phone: user.phone,
    })
}
