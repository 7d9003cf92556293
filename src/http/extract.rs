//! Extractors: JSON/query/path that reject with the error envelope, the authenticated user and
//! role checks, the client address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::AppState;
use crate::auth::token::TokenError;
use crate::auth::Role;
use crate::error::AppError;
use crate::store;

/// `axum::Json` whose rejections are envelopes: 400 bad syntax, 422 wrong shape, 413 too
/// large, 415 wrong content type.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

pub fn json_rejection(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::JsonDataError(e) => AppError::unprocessable("invalid_body", e.body_text()),
        JsonRejection::JsonSyntaxError(e) => AppError::bad_request("invalid_json", e.body_text()),
        JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType(
            "expected a request body with Content-Type: application/json".into(),
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            AppError::PayloadTooLarge("request body exceeds the size limit".into())
        }
        other => AppError::bad_request("bad_request", other.body_text()),
    }
}

pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| AppError::bad_request("bad_request", e.body_text()))
    }
}

pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| AppError::bad_request("bad_request", e.body_text()))
    }
}

/// The caller, authenticated by a bearer access token and re-checked against the database on
/// every request (a disabled account or revoked tokens are refused at once).
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub username: String,
    pub name: String,
    pub role: Role,
    pub badge_no: Option<String>,
    pub phone: Option<String>,
    /// The device of the session (from login), when the token carries one.
    pub device_id: Option<String>,
}

impl AuthUser {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), AppError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(AppError::forbidden(format!(
                "this action needs the role {}",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            AppError::unauthorized(
                "missing_token",
                "an Authorization: Bearer token is required",
            )
        })?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                AppError::unauthorized(
                    "invalid_token",
                    "the Authorization header must be `Bearer <token>`",
                )
            })?;
        let claims = state.keys.verify(token).map_err(|e| match e {
            TokenError::Expired => {
                AppError::unauthorized("token_expired", "the access token has expired")
            }
            TokenError::Invalid => {
                AppError::unauthorized("invalid_token", "the access token is not valid")
            }
        })?;
        let user = store::users::by_id(&state.db, &claims.sub)
            .await?
            .ok_or_else(|| {
                AppError::unauthorized("invalid_token", "the access token is not valid")
            })?;
        if user.disabled {
            return Err(AppError::unauthorized(
                "account_disabled",
                "the account has been disabled",
            ));
        }
        if claims.iat_ms < user.tokens_not_before {
            return Err(AppError::unauthorized(
                "invalid_token",
                "the access token has been revoked",
            ));
        }
        // Every access token names its session; a revoked session (logout, refresh-token
        // reuse, a new login on the device) takes its access tokens with it. One indexed
        // lookup by primary key.
        let live = match claims.sid.as_deref() {
            Some(sid) => store::tokens::session_live(&state.db, sid, &user.id).await?,
            None => false,
        };
        if !live {
            return Err(AppError::unauthorized(
                "invalid_token",
                "the session of this access token has ended; refresh or log in again",
            ));
        }
        Ok(AuthUser {
            id: user.id,
            username: user.username,
            name: user.name,
            role: user.role,
            badge_no: user.badge_no,
            phone: user.phone,
            device_id: claims.did,
        })
    }
}

/// The client's address: the socket peer, or the first `X-Forwarded-For` hop when configured
/// to trust a reverse proxy.
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = AppError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.config.trust_forwarded_for {
            if let Some(ip) = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
            {
                return Ok(ClientIp(Some(ip)));
            }
        }
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}
