//! Extractors: JSON/query/path that reject with the error envelope, the authenticated user and
//! role checks, the client address.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::AppState;
use crate::auth::token::TokenError;
use crate::auth::Role;
use crate::error::AppError;
use crate::store;
use crate::text;

/// `axum::Json` whose rejections are envelopes: 400 bad syntax, 422 wrong shape, 413 too
/// large, 415 wrong content type, 422 `control_character` when any string (or key) holds a
/// control character other than tab, newline and carriage return (see [`crate::text`]).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(AppError::UnsupportedMediaType(
                "expected a request body with Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| json_rejection(e.into()))?;
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes).map_err(json_rejection)?;
        // Checked on the bytes once they are known to be valid JSON: no second copy of the body.
        refuse_controls_in_json(&bytes)?;
        Ok(ApiJson(value))
    }
}

/// `application/json` or any `application/*+json`, as `axum::Json` accepts.
pub(crate) fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", sub)) => sub == "json" || sub.ends_with("+json"),
        _ => false,
    }
}

/// 422 `control_character` when a JSON document holds a forbidden character in a string. For
/// handlers that parse a JSON body themselves instead of through [`ApiJson`].
pub fn refuse_controls_in_json(json: &[u8]) -> Result<(), AppError> {
    match text::json_find_forbidden(json) {
        None => Ok(()),
        Some((offset, c)) => Err(control_character(
            c,
            &format!("in the string at byte {offset} of the body"),
        )),
    }
}

/// 422 `control_character` when `value` (a text field named `what`) holds a forbidden character.
pub fn refuse_controls(what: &str, value: &str) -> Result<(), AppError> {
    match text::find_forbidden(value) {
        None => Ok(()),
        Some(c) => Err(control_character(c, &format!("in {what}"))),
    }
}

fn control_character(c: char, place: &str) -> AppError {
    AppError::unprocessable(
        "control_character",
        format!(
            "the control character {} {place} is not allowed in text (only tab, newline and \
             carriage return are)",
            text::describe(c)
        ),
    )
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

/// `axum::extract::Query` with envelope rejections; every decoded key and value must pass the
/// text rule (422 `control_character`).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let q = axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e: QueryRejection| AppError::bad_request("bad_request", e.body_text()))?;
        if let Ok(axum::extract::Query(pairs)) =
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
        {
            for (k, v) in &pairs {
                refuse_controls(&format!("the query parameter {k:?}"), k)?;
                refuse_controls(&format!("the query parameter {k:?}"), v)?;
            }
        }
        Ok(ApiQuery(q.0))
    }
}

/// `axum::extract::Path` with envelope rejections. A path segment holding a control character
/// names nothing that can exist: 404.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Ok(raw) = RawPathParams::from_request_parts(parts, state).await {
            if raw.iter().any(|(_, v)| text::find_forbidden(v).is_some()) {
                return Err(AppError::not_found("no such resource"));
            }
        }
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
    /// The request's `x-request-id` (set or propagated by the router), for audit entries.
    pub request_id: Option<String>,
}

impl AuthUser {
    /// The use-case context of this caller's request: who (user, role, device) and which
    /// request, as audit entries record it.
    pub fn ctx(&self) -> crate::audit::Ctx {
        crate::audit::Ctx::new(
            crate::audit::Actor::user(&self.id, self.role, self.device_id.as_deref()),
            self.request_id.clone(),
        )
    }

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
            request_id: request_id(&parts.headers),
        })
    }
}

/// The request id the router set or propagated (`x-request-id`).
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(100).collect())
}

/// The roles a handler admits, checked by [`Authorized`] before any other extractor reads the
/// query or the body: a caller with the wrong role gets 403 whatever they sent.
pub trait Roles {
    const ROLES: &'static [Role];
}

/// Admins only.
pub struct Admins;
impl Roles for Admins {
    const ROLES: &'static [Role] = &[Role::Admin];
}

/// Admins and reviewers.
pub struct Office;
impl Roles for Office {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Reviewer];
}

/// Admins, reviewers and inspectors (not labs).
pub struct Staff;
impl Roles for Staff {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Reviewer, Role::Inspector];
}

/// Inspectors only.
pub struct Inspectors;
impl Roles for Inspectors {
    const ROLES: &'static [Role] = &[Role::Inspector];
}

/// An [`AuthUser`] whose role is one of `R::ROLES` (else 403). Put it before the path, query
/// and body extractors of the handler. Derefs to the user.
pub struct Authorized<R>(pub AuthUser, std::marker::PhantomData<R>);

impl<R> std::ops::Deref for Authorized<R> {
    type Target = AuthUser;
    fn deref(&self) -> &AuthUser {
        &self.0
    }
}

impl<R: Roles> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = AppError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        user.require(R::ROLES)?;
        Ok(Authorized(user, std::marker::PhantomData))
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
