//! Liveness and readiness.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::error::{AppError, AppResult, ErrorEnvelope};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` (alive) or `ready` (database reachable).
    pub status: String,
    /// `sqlite` or `postgres` (readyz only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// Alive: the process answers HTTP.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        database: None,
    })
}

/// Ready: the database answers. 503 otherwise, so a load balancer stops sending traffic.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Health), (status = 503, description = "`unavailable`", body = ErrorEnvelope)))]
async fn readyz(State(state): State<AppState>) -> AppResult<Json<Health>> {
    if state.db.ping().await {
        Ok(Json(Health {
            status: "ready".into(),
            database: Some(state.db.backend().name().into()),
        }))
    } else {
        Err(AppError::Unavailable(
            "the database is not reachable".into(),
        ))
    }
}
