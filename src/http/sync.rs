//! `/api/v1/sync` (the WatermelonDB sync protocol; see api-spec/sync.md) and
//! `/api/v1/inspections` (what reviewers read).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiQuery, AuthUser, Authorized, Inspectors, Office};
use super::AppState;
use crate::auth::Role;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::ops::sync::{self as ops, Rejected, Syncer};
use crate::photo::geofence::GeofenceConfig;
use crate::store;
use crate::sync::push::{parse_slice, TOO_LARGE};
use crate::sync::{MigrationRequest, CURRENT_SCHEMA_VERSION, OLDEST_SCHEMA_VERSION};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pull, push))
        .routes(routes!(list_inspections))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PullParams {
    /// `timestamp` of the previous pull; `null` or absent on the first sync.
    pub last_pulled_at: Option<String>,
    /// The app's schema version (current or previous).
    pub schema_version: Option<String>,
    /// WatermelonDB migration sync JSON, or `null`.
    pub migration: Option<String>,
}

fn cursor(v: Option<&str>) -> AppResult<Option<i64>> {
    match v.map(str::trim) {
        None | Some("") | Some("null") | Some("undefined") => Ok(None),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (0..(1i64 << 53)).contains(&n) => Ok(Some(n)),
            _ => Err(AppError::bad_request(
                "invalid_cursor",
                format!("last_pulled_at {s:?} is not a cursor"),
            )),
        },
    }
}

fn syncer(user: &AuthUser) -> AppResult<Syncer<'_>> {
    user.require(&[Role::Inspector])?;
    Ok(Syncer {
        user_id: &user.id,
        device_id: user.device_id.as_deref(),
    })
}

/// Pull changes since `last_pulled_at` (inspectors). The answer is `{changes, timestamp}` as in
/// the WatermelonDB protocol; see api-spec/sync.md for the tables.
///
/// Answered in zstd, br or gzip when `Accept-Encoding` asks (by its q-values, with
/// `Vary: Accept-Encoding`; answers under 1 KiB are plain); see api-spec/sync.md, *Compression*.
///
/// Streamed from the pull's snapshot: answers over about 68 KiB are sent chunked, and a failure
/// part way cuts the connection (the body ends in an error, never in a shorter answer that
/// parses); every 4xx comes before the first byte. See api-spec/sync.md, *Streaming*.
#[utoipa::path(get, path = "/api/v1/sync", tag = "sync", security(("bearer" = [])), params(PullParams),
    responses(
        (status = 200, description = "`{changes: {table: {created, updated, deleted}}, timestamp, experimentalStrategy?}`", body = Object),
        (status = 400, description = "`invalid_cursor`, `unsupported_schema_version`, `bad_request` (migration)", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "Only inspectors sync", body = ErrorEnvelope)))]
async fn pull(
    State(state): State<AppState>,
    user: Authorized<Inspectors>,
    ApiQuery(p): ApiQuery<PullParams>,
) -> AppResult<Response> {
    let who = syncer(&user)?;
    let last = cursor(p.last_pulled_at.as_deref())?;
    let version = match p.schema_version.as_deref().map(str::trim) {
        None | Some("") | Some("null") => CURRENT_SCHEMA_VERSION,
        Some(v) => v.parse::<u32>().map_err(|_| {
            AppError::bad_request(
                "unsupported_schema_version",
                format!("schema_version {v:?} is not a number"),
            )
        })?,
    };
    if !(OLDEST_SCHEMA_VERSION..=CURRENT_SCHEMA_VERSION).contains(&version) {
        return Err(AppError::bad_request(
            "unsupported_schema_version",
            format!("schema version {version} is not served; update the app (served: {OLDEST_SCHEMA_VERSION}–{CURRENT_SCHEMA_VERSION})"),
        ));
    }
    let migration = match p.migration.as_deref().map(str::trim) {
        None | Some("") | Some("null") => None,
        Some(m) => {
            let m: MigrationRequest = serde_json::from_str(m)
                .map_err(|e| AppError::bad_request("bad_request", format!("migration: {e}")))?;
            if m.from >= version || m.from < OLDEST_SCHEMA_VERSION.saturating_sub(1) {
                return Err(AppError::bad_request(
                    "bad_request",
                    "migration.from must be below schema_version",
                ));
            }
            Some(m)
        }
    };
    // Every refusal (the cursor, the schema, the migration) is made before the first byte.
    let prepared = ops::begin_pull(&state.db, &who, last, version, migration).await?;
    streamed_pull(prepared).await
}

/// The pull's answer, written from its snapshot as the client reads it (the snapshot ends
/// with the body; a client that stops reading is dropped after the writer's stall limit). A
/// failure before the first chunks are out is a 500; after them, the body ends in an error (the
/// connection is cut), never in a truncated answer that parses. An answer that fits in the
/// first chunks goes out whole, with its length (small answers then stay uncompressed).
async fn streamed_pull(prepared: ops::PreparedPull) -> AppResult<Response> {
    use crate::export::stream::{spawn_writer, Chunk};
    use crate::export::ExportError;
    let rt = tokio::runtime::Handle::current();
    let mut rx = spawn_writer(move |out| {
        prepared.write(&rt, out).map_err(|e| match e {
            // The reader went away (or stalled): the writer's own broken pipe, told apart.
            crate::ops::Error::Internal(cause) => match cause.downcast::<std::io::Error>() {
                Ok(io) => ExportError::Io(io),
                Err(cause) => ExportError::Io(std::io::Error::other(cause.to_string())),
            },
            other => ExportError::Io(std::io::Error::other(other.to_string())),
        })
    });
    let failed = |e: std::io::Error| AppError::Internal(anyhow::anyhow!("pull failed: {e}"));
    let mut head: Vec<bytes::Bytes> = Vec::new();
    let mut ended = false;
    while head.len() < 2 {
        match rx.recv().await {
            Some(Ok(chunk)) => head.push(chunk),
            Some(Err(e)) => return Err(failed(e)),
            None => {
                ended = true;
                break;
            }
        }
    }
    let json = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    if ended {
        return Ok((json, Body::from(head.concat())).into_response());
    }
    let head = futures::stream::iter(head.into_iter().map(Chunk::Ok));
    let rest = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    // Fused: the compression layer may poll once more after the end.
    Ok((json, Body::from_stream(head.chain(rest).fuse())).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PushParams {
    /// The `timestamp` of the pull this push follows (required).
    pub last_pulled_at: Option<String>,
}

/// The answer to a push: empty, or the refused records.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushResult {
    /// WatermelonDB keeps these records unsynced.
    #[serde(
        rename = "experimentalRejectedIds",
        skip_serializing_if = "Option::is_none"
    )]
    pub experimental_rejected_ids: Option<HashMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Vec<Rejected>>,
}

/// Push local changes (inspectors). All-or-nothing except for records refused by rule.
///
/// The body limit (`max_sync_body_bytes`, default 24 MiB) and record cap (`max_sync_records`,
/// default 60,000) of this endpoint are its own, sized for a week offline; see api-spec/sync.md.
///
/// The body may be compressed: `Content-Encoding: gzip` (also `br` or `zstd`). It is
/// decompressed as it arrives, and the limit bounds both the bytes sent and the decompressed
/// JSON.
#[utoipa::path(post, path = "/api/v1/sync", tag = "sync", security(("bearer" = [])),
    params(PushParams, ("Content-Encoding" = Option<String>, Header, description = "`gzip` (or `x-gzip`), `br` or `zstd` for a compressed body; none or `identity` for plain JSON")),
    request_body(content = Object, description = "`{\"changes\": {table: {created: [record], updated: [record], deleted: [id]}}}`"),
    responses(
        (status = 200, description = "Applied; `rejected` lists records refused by rule (the rest applied)", body = PushResult),
        (status = 400, description = "`invalid_json`, `invalid_cursor`; `invalid_compressed_body`: the body is not valid in its `Content-Encoding` (corrupt or truncated)", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 409, description = "`sync_conflict`: a pushed record changed on the server after last_pulled_at; nothing applied", body = ErrorEnvelope),
        (status = 413, description = "`payload_too_large`: the body (as sent, or once decompressed) is over `max_sync_body_bytes`, or holds more than `max_sync_records` records; nothing applied, push in batches", body = ErrorEnvelope),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`; `unsupported_content_encoding`: a `Content-Encoding` other than `gzip`, `br`, `zstd` or `identity`", body = ErrorEnvelope),
        (status = 422, description = "`control_character`, `invalid_body`, `unknown_table`, `unknown_column`, `invalid_id`, `duplicate_id`; nothing applied", body = ErrorEnvelope)))]
async fn push(
    State(state): State<AppState>,
    user: Authorized<Inspectors>,
    ApiQuery(p): ApiQuery<PushParams>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Json<PushResult>> {
    let who = syncer(&user)?;
    let last = cursor(p.last_pulled_at.as_deref())?
        .ok_or_else(|| AppError::bad_request("invalid_cursor", "last_pulled_at is required"))?;
    if !super::extract::json_content_type(&headers) {
        return Err(AppError::UnsupportedMediaType(
            "expected a request body with Content-Type: application/json".into(),
        ));
    }
    // `Content-Encoding` gzip, br or zstd: decompressed as it arrives, bounded before and after.
    let bytes =
        super::encoding::read_body(&headers, body, state.config.max_sync_body_bytes).await?;
    // The same edge rule as every JSON body (`ApiJson`): no control characters in strings,
    // checked before any record is looked at.
    super::extract::refuse_controls_in_json(&bytes)?;
    // Typed records straight from the bytes; the bytes go as soon as they are read.
    let parsed = parse_slice(&bytes, state.config.max_sync_records).map_err(
        |(code, message)| match code {
            TOO_LARGE => AppError::PayloadTooLarge(message),
            "invalid_json" => AppError::bad_request(code, message),
            _ => AppError::unprocessable(code, message),
        },
    )?;
    drop(bytes);
    let geofence = GeofenceConfig {
        radius_m: state.config.geofence_radius_m,
        ..GeofenceConfig::default()
    };
    let samples = super::sampling::settings(&state)?;
    let rejected = ops::push(
        &state.db,
        &user.ctx(),
        &who,
        last,
        parsed,
        &geofence,
        &samples,
    )
    .await?;
    if rejected.is_empty() {
        return Ok(Json(PushResult {
            experimental_rejected_ids: None,
            rejected: None,
        }));
    }
    let mut ids: HashMap<String, Vec<String>> = HashMap::new();
    for r in &rejected {
        ids.entry(r.table.clone()).or_default().push(r.id.clone());
    }
    Ok(Json(PushResult {
        experimental_rejected_ids: Some(ids),
        rejected: Some(rejected),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InspectionParams {
    /// The task whose inspections to list (required).
    pub task_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InspectionList {
    /// Inspections as synced (the `inspections` record of api-spec/sync.md), plus for
    /// reviewers: `flags` (the inspection's `server_flags` as an array: its own geofence flags
    /// `outside_radius` / `no_location` beside e.g. `declared_result_differs`), `submitted_at`,
    /// and `answers` and `photos` arrays. Each photo has `id`, `item_code`, `sha256`,
    /// `byte_size`, `taken_at`, `processing_status`, `width`, `height`, `exif_taken_at`,
    /// `exif_lng`, `exif_lat` (WGS-84) and `flags` (its geofence flags, an array; empty until
    /// processed).
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
    pub total_count: usize,
}

/// A stored JSON array of flag names as an array (empty when unset or unreadable).
fn flag_list(s: Option<&str>) -> Value {
    s.and_then(|s| serde_json::from_str::<Vec<String>>(s).ok())
        .map(Value::from)
        .unwrap_or_else(|| Value::Array(Vec::new()))
}

/// The inspections of a task with their answers and photos, and the flags reviewers should
/// look at (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/inspections", tag = "sync", security(("bearer" = [])), params(InspectionParams),
    responses((status = 200, body = InspectionList), (status = 403, body = ErrorEnvelope)))]
async fn list_inspections(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiQuery(p): ApiQuery<InspectionParams>,
) -> AppResult<Json<InspectionList>> {
    user.require(&[Role::Admin, Role::Reviewer])?;
    let mut conn = state.db.acquire().await?;
    let rows =
        store::sync::inspections_of_tasks(&mut conn, std::slice::from_ref(&p.task_id)).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut answers: HashMap<String, Vec<store::sync::AnswerRow>> = HashMap::new();
    for a in store::sync::answers_of(&mut conn, &ids).await? {
        answers.entry(a.inspection_id.clone()).or_default().push(a);
    }
    let mut photos: HashMap<String, Vec<store::sync::PhotoRow>> = HashMap::new();
    for ph in store::sync::photos_of(&mut conn, &ids).await? {
        photos.entry(ph.inspection_id.clone()).or_default().push(ph);
    }
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v = ops::inspection_json(r);
            let mut a: Vec<&store::sync::AnswerRow> =
                answers.get(&r.id).map(|a| a.iter().collect()).unwrap_or_default();
            a.sort_by(|x, y| x.item_code.cmp(&y.item_code));
            v["answers"] = a
                .iter()
                .map(|a| serde_json::json!({"id": a.id, "item_code": a.item_code, "status": a.status, "note": a.note}))
                .collect();
            v["photos"] = photos
                .get(&r.id)
                .map(|ps| ps.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|p| serde_json::json!({"id": p.id, "item_code": p.item_code, "sha256": p.sha256, "byte_size": p.byte_size,
                    "taken_at": p.taken_at, "processing_status": p.processing_status, "width": p.width, "height": p.height,
                    "exif_taken_at": p.exif_taken_at, "exif_lng": p.exif_lng, "exif_lat": p.exif_lat,
                    "flags": flag_list(p.flags.as_deref())}))
                .collect();
            v["flags"] = flag_list(r.server_flags.as_deref());
            v["submitted_at"] = r.submitted_at.map(crate::http::rfc3339).into();
            v
        })
        .collect();
    Ok(Json(InspectionList {
        total_count: items.len(),
        items,
    }))
}
