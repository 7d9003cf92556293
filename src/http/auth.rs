//! `/api/v1/auth/*` and `/api/v1/me`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, AuthUser, ClientIp};
use super::AppState;
use crate::auth::token::{hash_refresh_token, new_refresh_token};
use crate::auth::{password, DeviceId, Role, Username};
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::store::{
    self, now_ms,
    throttle::{Outcome, Verdict},
    tokens::Rotation,
};

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

/// Expiry (Unix ms) of a refresh token issued now.
fn refresh_expiry(state: &AppState) -> i64 {
    now_ms() + (state.config.refresh_token_ttl_days * 86_400) as i64 * 1000
}

/// The login/refresh answer: a fresh access token for the device, with `refresh_token`.
fn token_response(
    state: &AppState,
    user_id: &str,
    role: Role,
    device: &str,
    session: &str,
    refresh_token: String,
) -> AppResult<TokenResponse> {
    let access = state.keys.issue_for_session(
        user_id,
        role,
        Some((device, session)),
        now_ms(),
        state.config.access_token_ttl_secs,
    )?;
    Ok(TokenResponse {
        access_token: access,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: state.config.access_token_ttl_secs,
        refresh_expires_in: state.config.refresh_token_ttl_days * 86_400,
    })
}

/// Reserves a login attempt with the throttle before the password is checked. Blocked only by
/// attempts still in flight (parallel logins), it waits for them to settle, a few seconds at
/// most; blocked by settled failures, it is 429.
async fn reserve_attempt(
    state: &AppState,
    limits: &[(&str, u32)],
    window_ms: i64,
) -> AppResult<store::throttle::Reservation> {
    const POLL: std::time::Duration = std::time::Duration::from_millis(20);
    const MAX_POLLS: u32 = 250;
    for _ in 0..MAX_POLLS {
        match store::throttle::reserve(&state.db, limits, window_ms).await? {
            Ok(reservation) => return Ok(reservation),
            Err(Verdict::Refuse { retry_after_secs }) => {
                return Err(AppError::TooManyRequests {
                    message: "too many failed logins; try again later".into(),
                    retry_after_secs,
                })
            }
            Err(Verdict::Wait | Verdict::Allow) => tokio::time::sleep(POLL).await,
        }
    }
    Err(AppError::TooManyRequests {
        message: "too many logins in progress for this account; try again".into(),
        retry_after_secs: 1,
    })
}

/// Log in with username and password.
///
/// Failed attempts are throttled per username and per client address: past the limit the
/// answer is 429 with `Retry-After` (seconds), whether or not the password is right.
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
    ApiJson(req): ApiJson<LoginRequest>,
) -> AppResult<Json<TokenResponse>> {
    let device =
        DeviceId::parse(&req.device_id).map_err(|m| AppError::unprocessable("invalid_body", m))?;
    // An invalid username cannot exist; it still counts as a failed attempt.
    let username = Username::parse(&req.username)
        .map(|u| u.as_str().to_string())
        .unwrap_or_else(|_| req.username.trim().to_lowercase());
    let user_key = format!("user:{username}");
    let ip_key = format!(
        "ip:{}",
        ip.map(|i| i.to_string())
            .unwrap_or_else(|| "unknown".into())
    );
    let window_ms = (state.config.login_window_secs * 1000) as i64;
    let cfg = &state.config;
    let limits = [
        (user_key.as_str(), cfg.login_max_failures_per_user),
        (ip_key.as_str(), cfg.login_max_failures_per_ip),
    ];
    let reservation = reserve_attempt(&state, &limits, window_ms).await?;
    let user = store::users::by_username(&state.db, &username).await?;
    let ok =
        password::verify_password(req.password, user.as_ref().map(|u| u.password_hash.clone()))
            .await?;
    let (outcome, result) = match (ok, user) {
        (true, Some(user)) if user.disabled => (
            Outcome::Neutral,
            Err(AppError::unauthorized(
                "account_disabled",
                "the account has been disabled",
            )),
        ),
        (true, Some(user)) => (Outcome::Succeeded, Ok(user)),
        _ => (
            Outcome::Failed,
            Err(AppError::unauthorized(
                "invalid_credentials",
                "wrong username or password",
            )),
        ),
    };
    store::throttle::settle(&state.db, reservation, outcome, window_ms).await?;
    let user = result?;
    let refresh = new_refresh_token();
    let session = store::tokens::start_family(
        &state.db,
        &user.id,
        device.as_str(),
        &hash_refresh_token(&refresh),
        refresh_expiry(&state),
    )
    .await?;
    Ok(Json(token_response(
        &state,
        &user.id,
        user.role,
        device.as_str(),
        &session,
        refresh,
    )?))
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
    ApiJson(req): ApiJson<RefreshRequest>,
) -> AppResult<Json<TokenResponse>> {
    let device = req
        .device_id
        .as_deref()
        .map(DeviceId::parse)
        .transpose()
        .map_err(|m| AppError::unprocessable("invalid_body", m))?;
    let presented = req.refresh_token.trim();
    // The successor is derived from the presented token, so a retry names the same one.
    let successor = state.keys.successor_refresh_token(presented);
    let grace_ms = (state.config.refresh_retry_grace_secs * 1000) as i64;
    let rotation = store::tokens::rotate(
        &state.db,
        &store::tokens::Presentation {
            token_hash: &hash_refresh_token(presented),
            successor_hash: &hash_refresh_token(&successor),
            device_id: device.as_ref().map(DeviceId::as_str),
        },
        grace_ms,
        refresh_expiry(&state),
    )
    .await?;
    match rotation {
        Rotation::Issued {
            user_id,
            device_id,
            session_id,
        } => {
            // The role is re-read after rotation.
            let user = store::users::by_id(&state.db, &user_id)
                .await?
                .ok_or_else(|| {
                    AppError::unauthorized(
                        "invalid_refresh_token",
                        "the refresh token is not valid",
                    )
                })?;
            Ok(Json(token_response(
                &state,
                &user.id,
                user.role,
                &device_id,
                &session_id,
                successor,
            )?))
        }
        Rotation::Reused => Err(AppError::unauthorized(
            "refresh_token_reused",
            "this refresh token was already used; the session is revoked, log in again",
        )),
        Rotation::WrongDevice => Err(AppError::unauthorized(
            "invalid_refresh_token",
            "the refresh token belongs to another device; the session is revoked, log in again",
        )),
        Rotation::Invalid => Err(AppError::unauthorized(
            "invalid_refresh_token",
            "the refresh token is unknown, expired or revoked",
        )),
    }
}

/// Log out: revokes the session (token family) of the given refresh token, and with it the
/// session's access tokens. Always 204.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    request_body = LogoutRequest,
    responses((status = 204, description = "Logged out (also when the token was unknown)")))]
async fn logout(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LogoutRequest>,
) -> AppResult<StatusCode> {
    store::tokens::revoke_by_token(&state.db, &hash_refresh_token(req.refresh_token.trim()))
        .await?;
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
