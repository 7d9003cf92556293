//! The HTTP edge: router, extractors, handlers. Handlers parse, authorize, call the domain or
//! the store, and shape the response.

pub mod announcements;
pub mod audit;
pub mod auth;
pub mod calendar;
pub mod checklists;
pub mod encoding;
pub mod establishments;
pub mod extract;
pub mod followups;
pub mod health;
pub mod inspections;
pub mod lists;
pub mod photos;
pub mod plans;
pub mod public;
pub mod public_announcements;
pub mod public_cache;
pub mod public_data;
pub mod public_pages;
pub mod record;
pub mod review;
pub mod review_queues;
pub mod sample_attachments;
pub mod sample_facts;
pub mod sampling;
pub mod sampling_plans;
mod spec_rules;
pub mod stats;
pub mod sync;
pub mod tasks;
pub mod uploads;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderName, StatusCode};
use axum::response::Response;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::config::Config;
use crate::error::envelope;

pub use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "foodcheck API",
        description = include_str!("../../api-spec/intro.md"),
        license(name = "MIT OR Apache-2.0"),
    ),
    modifiers(&SecurityAddon),
    tags(
        (name = "auth", description = "Login, tokens and the current user"),
        (name = "checklists", description = "Checklist templates (检查要点表): versions (draft → published, immutable once published) and evaluation of answers by the version's result rule"),
        (name = "health", description = "Liveness and readiness probes"),
        (name = "users", description = "Account management (admin)"),
        (name = "establishments", description = "The registry of food businesses"),
        (name = "plans", description = "随机查餐厅 rounds: plans, auditable draws (双随机), conflicts of interest (回避)"),
        (name = "tasks", description = "Inspection tasks: one per drawn establishment, for its team"),
        (name = "sync", description = "Offline sync for inspectors' apps (WatermelonDB protocol); see api-spec/sync.md"),
        (name = "uploads", description = "Photo bytes by the tus 1.0 resumable upload protocol"),
        (name = "audit", description = "The tamper-evident audit log: entries, one record's history, Merkle inclusion and consistency proofs against signed checkpoints"),
        (name = "review", description = "The food-safety section's review: decisions on submitted inspections (approve, return with comments, reject with a reason), inspection detail, work queues and counts, the printable result record (监督检查结果记录表)"),
        (name = "followups", description = "整改 → 复查: follow-ups opened by approving 基本符合/不符合 inspections, with working-day deadlines and recheck tasks"),
        (name = "lists", description = "The red/black list (红黑榜): draft issues composed from approved inspections, publication with an audit checkpoint, revisions, and each entry's lifecycle (rectified, revoked)"),
        (name = "calendar", description = "The working-day calendar (工作日, 调休): bundled years and years admins add"),
        (name = "stats", description = "Campaign statistics counted from the records (JSON, XLSX) and the 3·15 活动统计表: campaigns, reporting units, each unit's form, its prefill, the total"),
        (name = "sampling", description = "食品安全抽检: sampling plans (drawn like inspection plans) and their tasks with teams of samplers, labs (检验机构) and lab accounts, the food category tree, samples (抽样单), the chain of custody, lab results and the legal deadlines"),
        (name = "public", description = "Public, unauthenticated data (一公开): never personal data"),
    )
)]
struct ApiDoc;

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Access token from POST /api/v1/auth/login or /refresh",
                    ))
                    .build(),
            ),
        );
    }
}

fn api(import_limit: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(establishments::router(import_limit))
        .merge(health::router())
        .merge(auth::router())
        .merge(users::router())
        .merge(checklists::router())
        .merge(plans::router())
        .merge(tasks::router())
        .merge(public::router())
        .merge(public_data::router())
        .merge(public_pages::router())
        .merge(sync::router())
        .merge(uploads::router())
        .merge(photos::router())
        .merge(audit::router())
        .merge(review::router())
        .merge(followups::router())
        .merge(calendar::router())
        .merge(inspections::router())
        .merge(record::router())
        .merge(review_queues::router())
        .merge(lists::router())
        .merge(stats::router())
        .merge(sampling::router(import_limit))
        .merge(sample_facts::router())
        .merge(announcements::router())
        .merge(public_announcements::router())
        .merge(sampling_plans::router())
        .merge(sample_attachments::router())
}

pub use crate::clock::rfc3339;

/// The OpenAPI document generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut spec) = api(Config::default().max_import_body_bytes).split_for_parts();
    spec.info.version = env!("CARGO_PKG_VERSION").to_string();
    spec_rules::add_shape_responses(&mut spec);
    let mut description = spec.info.description.take().unwrap_or_default();
    description.push_str("\n\n## Error codes\n\n| code | HTTP status | meaning |\n|---|---|---|\n");
    for (code, status, meaning) in crate::error::ERROR_CODES {
        description.push_str(&format!("| `{code}` | {status} | {meaning} |\n"));
    }
    spec.info.description = Some(description);
    spec
}

/// The OpenAPI document as committed in `api-spec/openapi.json`.
pub fn openapi_json() -> String {
    let mut s = openapi().to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}

/// A request body that fails once its deadline passes, however the bytes trickle in (a
/// per-read timeout would let 1 byte/s through), and says so in `timed_out`.
struct DeadlineBody {
    inner: axum::body::Body,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    timed_out: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl http_body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::future::Future as _;
        use std::task::Poll;
        if let Poll::Ready(frame) = std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.timed_out
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Poll::Ready(Some(Err(BodyTimedOut.into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Every request body must arrive within `body_read_timeout_secs` of the headers. Whatever the
/// handler made of the failed read (400, 422...), the answer is then 408 `request_timeout` with
/// `Connection: close`, so a slow client cannot hold the connection.
async fn body_deadline(
    axum::extract::State(timeout): axum::extract::State<Duration>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = timed_out.clone();
    let req = req.map(|inner| {
        axum::body::Body::new(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timed_out: flag,
        })
    });
    let res = next.run(req).await;
    if !timed_out.load(std::sync::atomic::Ordering::Relaxed) {
        return res;
    }
    let mut res = envelope(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        &format!(
            "the request body did not arrive within {} s",
            timeout.as_secs()
        ),
    );
    res.headers_mut().insert(
        header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    res
}

pub fn router(state: AppState) -> Router {
    let (router, _) = api(state.config.max_import_body_bytes).split_for_parts();
    let spec = Arc::new(openapi());
    let request_id = HeaderName::from_static("x-request-id");
    router
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let spec = spec.clone();
                async move { axum::Json(spec.as_ref().clone()) }
            }),
        )
        .fallback(|| async { envelope(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            envelope(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that method",
            )
        })
        .with_state(state.clone())
        .layer(axum::middleware::from_fn(public_cache::layer))
        .layer(DefaultBodyLimit::max(state.config.max_json_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            Duration::from_secs(state.config.body_read_timeout_secs),
            body_deadline,
        ))
        .layer(CatchPanicLayer::custom(|_| -> Response {
            tracing::error!("handler panicked");
            envelope(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "internal server error")
        }))
        // Textual answers compressed when the client asks (see `encoding`), errors included.
        .layer(encoding::compression())
        .layer(axum::middleware::from_fn(encoding::weak_etag_when_compressed))
        .layer(axum::middleware::from_fn(encoding::refuse_request_codings))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_else(|| "unmatched".to_owned());
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    tracing::info_span!("request", method = %req.method(), route = %route, request_id = %id)
                })
                .on_response(|res: &Response, latency: Duration, _span: &tracing::Span| {
                    tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_secs_f64() * 1000.0, "response");
                }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
}
