//! The one error type of the HTTP edge. Every error response is the envelope
//! `{"error": {"code": "snake_case_code", "message": "human-readable"}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The error envelope every 4xx/5xx response carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// Error details. `code` is stable and machine-readable; `message` is for people and may change.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case error code, e.g. `invalid_token`, `validation_failed`. The full list is in
    /// the API description.
    pub code: String,
    /// Human-readable explanation (English).
    pub message: String,
    /// Extra structured detail for some codes (e.g. per-field problems of `validation_failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request is syntactically wrong (bad JSON, bad query string).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no credentials, or credentials that are not valid (expired, tampered, revoked).
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// 403: authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 404 with its own code (e.g. `unknown_queue`): the path names a kind of thing that does
    /// not exist, as opposed to a missing record.
    #[error("{message}")]
    NotFoundCode { code: &'static str, message: String },
    /// 409: the request conflicts with the current state (duplicates, already drawn...).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 413
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 415: the body's `Content-Encoding` is not one the endpoint decodes.
    #[error("{0}")]
    UnsupportedContentEncoding(String),
    /// 422: well-formed but semantically invalid. `details` lists the problems.
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        details: Option<serde_json::Value>,
    },
    /// 429 with Retry-After (seconds).
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// 503
    #[error("{0}")]
    Unavailable(String),
    /// 412: a required protocol precondition (e.g. `Tus-Resumable`) is missing.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 460 (tus checksum extension): the chunk does not match its `Upload-Checksum`.
    #[error("the chunk does not match its Upload-Checksum; it was discarded")]
    ChecksumMismatch,
    /// 500: logged with its cause; the client sees no internals.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            code,
            message: message.into(),
        }
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Unauthorized {
            code,
            message: message.into(),
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden(message.into())
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        AppError::NotFound(message.into())
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Conflict {
            code,
            message: message.into(),
        }
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Unprocessable {
            code,
            message: message.into(),
            details: None,
        }
    }
    pub fn unprocessable_with(
        code: &'static str,
        message: impl Into<String>,
        details: impl Serialize,
    ) -> Self {
        AppError::Unprocessable {
            code,
            message: message.into(),
            details: serde_json::to_value(details).ok(),
        }
    }

    /// 422 `validation_failed` listing every field problem in `details`.
    pub fn validation_failed(errors: Vec<crate::establishment::FieldError>) -> Self {
        let message = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        AppError::unprocessable_with("validation_failed", message, errors)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) | AppError::NotFoundCode { .. } => StatusCode::NOT_FOUND,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) | AppError::UnsupportedContentEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            AppError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            AppError::ChecksumMismatch => {
                StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST)
            }
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { code, .. }
            | AppError::Unauthorized { code, .. }
            | AppError::Conflict { code, .. }
            | AppError::NotFoundCode { code, .. }
            | AppError::Unprocessable { code, .. } => code,
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::UnsupportedContentEncoding(_) => "unsupported_content_encoding",
            AppError::TooManyRequests { .. } => "too_many_requests",
            AppError::Unavailable(_) => "unavailable",
            AppError::PreconditionFailed(_) => "precondition_failed",
            AppError::ChecksumMismatch => "checksum_mismatch",
            AppError::Internal(_) => "internal_error",
        }
    }
}

/// Builds an envelope response outside the `AppError` path (fallbacks, panics).
pub fn envelope(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorEnvelope {
        error: ErrorBody {
            code: code.to_string(),
            message: message.to_string(),
            details: None,
        },
    };
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let (message, details) = match &self {
            AppError::Internal(cause) => {
                // The cause goes to the log only; clients see a generic message.
                tracing::error!(error = ?cause, "internal error");
                ("internal server error".to_string(), None)
            }
            AppError::Unprocessable { details, .. } => (self.to_string(), details.clone()),
            _ => (self.to_string(), None),
        };
        let retry_after = match &self {
            AppError::TooManyRequests {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            AppError::Unavailable(_) => Some(5),
            _ => None,
        };
        let body = ErrorEnvelope {
            error: ErrorBody {
                code: code.to_string(),
                message,
                details,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"foodcheck\""),
            );
        }
        response
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // Overload, not a bug: tell the client to come back.
            sqlx::Error::PoolTimedOut => {
                AppError::Unavailable("the server is busy; retry shortly".into())
            }
            e => AppError::Internal(anyhow::Error::new(e)),
        }
    }
}

/// The edge's mapping of use-case errors to statuses and codes.
impl From<crate::ops::Error> for AppError {
    fn from(e: crate::ops::Error) -> Self {
        use crate::ops::Error as E;
        match e {
            E::Invalid {
                code,
                message,
                details,
            } => AppError::Unprocessable {
                code,
                message,
                details,
            },
            E::BadRequest { code, message } => AppError::BadRequest { code, message },
            E::Unauthenticated { code, message } => AppError::Unauthorized { code, message },
            E::Forbidden(m) => AppError::Forbidden(m),
            E::NotFound(m) => AppError::NotFound(m),
            E::Conflict { code, message } => AppError::Conflict { code, message },
            E::TooLarge(m) => AppError::PayloadTooLarge(m),
            E::Throttled {
                message,
                retry_after_secs,
            } => AppError::TooManyRequests {
                message,
                retry_after_secs,
            },
            E::Unavailable(m) => AppError::Unavailable(m),
            E::Internal(cause) => AppError::Internal(cause),
        }
    }
}

/// Stable error codes and what they mean; rendered into the API description so mobile teams
/// have one list to code against.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    ("bad_request", 400, "The request is malformed (query string, path or headers)."),
    ("invalid_json", 400, "The body is not valid JSON."),
    ("invalid_body", 422, "The JSON is valid but has missing fields or wrong types."),
    ("control_character", 422, "A text field (JSON string or key, query parameter, tus metadata value) holds a control character other than tab, newline and carriage return (U+0000–U+001F, U+007F–U+009F). A path segment holding one is answered 404."),
    ("unsupported_media_type", 415, "The body's content type or sniffed format is not accepted."),
    ("unsupported_content_encoding", 415, "The body's `Content-Encoding` is not accepted: `POST /api/v1/sync` takes `gzip`, `br`, `zstd` or none; other endpoints take none."),
    ("invalid_compressed_body", 400, "The body is not valid data in its `Content-Encoding` (corrupt or truncated gzip, br or zstd)."),
    ("payload_too_large", 413, "The body exceeds the size limit of this endpoint (for a compressed body, also once decompressed)."),
    ("request_timeout", 408, "The request body did not arrive within `body_read_timeout_secs` (default 300 s); the connection is closed. A client whose headers are not complete within `header_read_timeout_secs` (default 30 s) is disconnected without an answer."),
    ("missing_token", 401, "No `Authorization: Bearer` token was sent."),
    ("invalid_token", 401, "The access token is malformed, tampered with, signed with another key or algorithm, or revoked."),
    ("token_expired", 401, "The access token has expired; use the refresh token."),
    ("invalid_credentials", 401, "Wrong username or password, or the account is disabled."),
    ("invalid_refresh_token", 401, "The refresh token is unknown, expired or revoked."),
    ("refresh_token_reused", 401, "An already-rotated refresh token was presented; the device's whole token family is revoked. Log in again."),
    ("account_disabled", 401, "The account has been disabled."),
    ("forbidden", 403, "Authenticated, but the role or ownership does not allow this."),
    ("not_found", 404, "No such resource or route."),
    ("method_not_allowed", 405, "The route exists but not with this method."),
    ("conflict", 409, "The request conflicts with the current state."),
    ("duplicate", 409, "A record with the same unique identifier already exists."),
    ("already_drawn", 409, "The plan has been drawn; a redraw needs a `reason`."),
    ("draw_in_progress", 409, "Tasks of the current draw are in progress or submitted; it can no longer be redrawn."),
    ("invalid_state", 409, "The record's state does not allow this transition (e.g. starting a cancelled task)."),
    ("draw_impossible", 422, "The draw cannot be made with these inputs (e.g. a quota exceeds the candidates of its grade)."),
    ("sync_conflict", 409, "A pushed record changed on the server after `last_pulled_at`; nothing was applied. Pull, merge and push again."),
    ("invalid_cursor", 400, "`last_pulled_at` is missing (push), negative, not a number or ahead of the server; or a review queue `cursor` is not one this API returned for that queue."),
    ("unsupported_schema_version", 400, "The app's sync schema version is not served; update the app."),
    ("unknown_table", 422, "A push names a table that does not sync."),
    ("unknown_column", 422, "A pushed record has a column the table does not have."),
    ("invalid_id", 422, "A pushed id is not a UUID."),
    ("duplicate_id", 422, "One push lists the same record id twice."),
    ("precondition_failed", 412, "A protocol precondition is missing (tus: `Tus-Resumable: 1.0.0`)."),
    ("checksum_mismatch", 460, "tus: the chunk does not match its `Upload-Checksum`; it was discarded and the offset is unchanged."),
    ("offset_mismatch", 409, "tus: `Upload-Offset` is not the upload's current offset; HEAD the upload and resume from there."),
    ("sha256_mismatch", 409, "The uploaded file (or the declared sha256) is not the photo record's; the upload is discarded."),
    ("size_mismatch", 409, "`Upload-Length` is not the photo record's `byte_size`."),
    ("open_uploads_limit", 409, "tus: the caller's unfinished uploads already reserve the configured maximum (`max_open_upload_bytes_per_user`); finish or terminate one first."),
    ("checksum_algorithm_unsupported", 400, "tus: `Upload-Checksum` names an algorithm other than sha1 or sha256."),
    ("not_ready", 409, "A photo rendition is still being made; retry later."),
    ("import_failed", 422, "A bulk import has row errors; `details` is the import report (`errors` with row, column, code, message). Nothing was written."),
    ("invalid_table", 422, "An uploaded table cannot be read: missing required columns, duplicate columns, no rows, too many rows."),
    ("draft_exists", 409, "The checklist template already has a draft version; edit or publish that draft instead of starting another."),
    ("version_published", 409, "The checklist version is published and immutable; create a new version to change it."),
    ("out_of_range", 422, "An audit proof asks for an entry or tree size the log does not have (entry ≥ size, size above the integrated tree, `from` 0 or above `to`)."),
    ("no_checkpoint", 409, "No audit checkpoint has been signed yet; pass an explicit tree size or retry shortly."),
    ("review_conflict", 409, "The inspection is not waiting for review: not submitted, already decided, returned and not yet resubmitted, or decided by another reviewer meanwhile."),
    ("comment_required", 422, "Returning an inspection needs a general comment or at least one item comment."),
    ("unknown_item", 422, "An item comment names an item code that is not in the inspection's checklist version."),
    ("reason_required", 422, "Rejecting an inspection needs a reason."),
    ("override_reason_required", 422, "Overriding the computed result needs an `override_reason`."),
    ("followup_markers_not_allowed", 422, "立即停止经营 (`stop_operating`) and 立案 (`case_opened`) are recorded for a 不符合 approval only."),
    ("invalid_rectification_period", 422, "A 整改 period must be 1 to 120 working days."),
    ("recheck_team_too_small", 422, "A recheck team needs at least two distinct inspectors."),
    ("recheck_inspector_not_active", 422, "A recheck team member is not an enabled inspector account."),
    ("recheck_inspector_conflict", 422, "A recheck team member has a declared conflict of interest (回避) at the establishment."),
    ("calendar_year_missing", 422, "A working-day deadline falls in a year the calendar has no data for; the message names the year. An admin adds it with `PUT /api/v1/calendar/years/{year}`."),
    ("invalid_calendar", 422, "Calendar year data is refused: not a date, a date outside the year, a make-up working day that is not a weekend day, a date both off and a working day, or a year outside 1949–9999."),
    ("unknown_queue", 404, "`GET /api/v1/review/queues/{queue}` names no queue (`waiting`, `returned`, `overdue_tasks`, `flagged`, `rectifications_due`, `rechecks_due`)."),
    ("invalid_filter", 400, "A review queue filter or page parameter is unknown or out of range (`result`, `flag`, `within_days`, `limit`, a value over 200 characters)."),
    ("not_approved", 409, "The printable result record exists only for approved inspections."),
    ("unknown_lab", 422, "A sample or lab account names a lab that does not exist."),
    ("not_a_lab_account", 422, "Only `lab` accounts belong to a lab."),
    ("unknown_establishment", 422, "A sample names an establishment that is not in the registry."),
    ("sample_no_taken", 409, "The national 抽样单编号 is already another sample's (also when two submissions race: one wins)."),
    ("sample_id_conflict", 409, "A sample with this client id was submitted with another body; a submitted 抽样单 cannot change."),
    ("custody_out_of_order", 409, "A custody event comes before its predecessor (sealed → dispatched → received → testing → reported)."),
    ("custody_already_recorded", 409, "This custody kind is already recorded for the sample."),
    ("custody_time_before_previous", 409, "The custody event's time is before the previous event's."),
    ("custody_event_edited", 409, "This custody event id is recorded with other content; custody events cannot be edited."),
    ("custody_wrong_role", 422, "Samplers record sealed and dispatched; the sample's lab records received, testing and reported."),
    ("result_exists", 409, "The sample's lab result is already recorded with other content; it is not replaced."),
    ("overall_verdict_mismatch", 422, "The lab's stated 检验结论 does not follow from the item verdicts; the message names the 不合格 items."),
    ("invalid_result_items", 422, "A lab report has no items, too many, or an item with a missing, too long or control-character text (`details` per item)."),
    ("invalid_report_no", 422, "The 报告编号 is not 1–64 characters with a digit."),
    ("unknown_task", 422, "A sample names a sampling task that does not exist or is not the submitter's team's (the two are answered alike)."),
    ("task_cancelled", 409, "A sample names a sampling task a redraw cancelled."),
    ("task_has_samples", 409, "Samples were submitted against the sampling task; its team can no longer change."),
    ("team_too_small", 422, "A team (inspection task reassignment, sampling task) needs at least two distinct people."),
    ("team_unchanged", 422, "The proposed team is the task's current team."),
    ("sampler_not_active", 422, "A sampling team member is not an enabled inspector account."),
    ("sampler_conflict", 422, "A sampling team member has a declared conflict of interest (回避) at the premises."),
    ("validation_failed", 422, "Semantically invalid input; `details` lists every problem."),
    ("too_many_requests", 429, "Throttled; retry after the number of seconds in `Retry-After`."),
    ("unavailable", 503, "A dependency (the database) is unreachable."),
    ("internal_error", 500, "An unexpected server error. Logged; no internals are shown."),
];
