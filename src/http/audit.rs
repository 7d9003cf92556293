//! The audit log over HTTP: the listing (admin), one record's history and the Merkle proofs
//! (admin, reviewer), and, without login, the latest signed checkpoint and the verifier key
//! so anyone can check what the bureau published.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Admins, ApiPath, ApiQuery, Authorized, Office};
use super::{rfc3339, AppState};
use crate::audit::chain::Entry;
use crate::audit::{Action, Change, RecordKind};
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::ops;
use crate::store::audit::{Filter, Row};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(record_history))
        .routes(routes!(inclusion_proof))
        .routes(routes!(consistency_proof))
        .routes(routes!(public_checkpoint))
        .routes(routes!(public_key))
}

fn b64(h: &[u8]) -> String {
    B64.encode(h)
}

/// One audit entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    /// Row id: the order of writing. Pages are cut by it.
    pub id: i64,
    /// Position in the tamper-evident log, from 0 (the Merkle leaf index); `null` while the
    /// entry waits for the integrator (about a second).
    pub seq: Option<i64>,
    /// When the change was recorded (RFC 3339).
    pub at: String,
    /// The acting user's id; `null` for the system (background jobs, CLI).
    pub actor_id: Option<String>,
    /// The actor's role at the time.
    pub actor_role: Option<String>,
    /// The device of the actor's session.
    pub device_id: Option<String>,
    /// The request's `x-request-id`, for correlation with the server logs.
    pub request_id: Option<String>,
    /// What happened (e.g. `user_created`, `draw_made`).
    pub action: String,
    /// The kind of record (e.g. `user`, `plan`, `inspection`).
    pub record_type: String,
    pub record_id: String,
    /// The fields that changed, with their values before and after.
    pub changes: Vec<Change>,
    /// The entry's chain hash (base64), once sequenced.
    pub entry_hash: Option<String>,
}

impl From<Row> for AuditEntryView {
    fn from(r: Row) -> Self {
        AuditEntryView {
            id: r.id,
            seq: r.seq,
            at: rfc3339(r.at),
            actor_id: r.actor_id,
            actor_role: r.actor_role,
            device_id: r.device_id,
            request_id: r.request_id,
            action: r.action,
            record_type: r.record_type,
            record_id: r.record_id,
            changes: serde_json::from_str(&r.changes).unwrap_or_default(),
            entry_hash: r.entry_hash.as_deref().map(b64),
        }
    }
}

/// A page of entries, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only entries by this user id.
    pub actor: Option<String>,
    /// Only entries about this kind of record (e.g. `user`, `plan`, `inspection`).
    pub record_type: Option<String>,
    /// Only entries about this record id (usually with `record_type`).
    pub record_id: Option<String>,
    /// Only this action (e.g. `user_created`).
    pub action: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Only entries before this time (RFC 3339).
    pub to: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–500 (default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–500 (default 100).
    pub limit: Option<u32>,
}

fn invalid(message: impl Into<String>) -> AppError {
    AppError::unprocessable("validation_failed", message)
}

fn time_param(name: &str, v: &Option<String>) -> AppResult<Option<i64>> {
    v.as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| t.timestamp_millis())
                .map_err(|_| {
                    invalid(format!(
                        "{name} must be an RFC 3339 time, e.g. 2025-01-31T00:00:00+08:00"
                    ))
                })
        })
        .transpose()
}

fn page(cursor: &Option<String>, limit: Option<u32>) -> AppResult<(Option<i64>, usize)> {
    let before = cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                AppError::bad_request("bad_request", "cursor is not a cursor this API returned")
            })
        })
        .transpose()?;
    let limit = limit.unwrap_or(100);
    if limit == 0 || limit as usize > ops::audit::MAX_PAGE {
        return Err(invalid(format!(
            "limit must be between 1 and {}",
            ops::audit::MAX_PAGE
        )));
    }
    Ok((before, limit as usize))
}

fn to_page(rows: Vec<Row>, more: bool) -> AuditPage {
    let next_cursor = if more {
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    AuditPage {
        items: rows.into_iter().map(AuditEntryView::from).collect(),
        next_cursor,
    }
}

/// The audit log, newest first, with filters and cursor paging (admin). Reading it is
/// itself recorded (`audit_log_read`).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = AuditPage),
        (status = 400, description = "`bad_request`: a malformed cursor or parameter", body = ErrorEnvelope),
        (status = 403, description = "`forbidden`: not an admin", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed`: an unknown action or record type, a time that is not RFC 3339, a limit out of range; or `control_character`", body = ErrorEnvelope)))]
async fn list_audit(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> AppResult<Json<AuditPage>> {
    if let Some(a) = &p.action {
        Action::parse(a).ok_or_else(|| invalid(format!("{a:?} is not an audit action")))?;
    }
    if let Some(t) = &p.record_type {
        RecordKind::parse(t).ok_or_else(|| invalid(format!("{t:?} is not a record type")))?;
    }
    let (before_id, limit) = page(&p.cursor, p.limit)?;
    let filter = Filter {
        actor_id: p.actor.clone(),
        record_type: p.record_type.clone(),
        record_id: p.record_id.clone(),
        action: p.action.clone(),
        from_ms: time_param("from", &p.from)?,
        to_ms: time_param("to", &p.to)?,
        before_id,
    };
    let (rows, more) = ops::audit::list(&state.db, &user.ctx(), &filter, limit).await?;
    Ok(Json(to_page(rows, more)))
}

/// The history of one record, newest first. Admins: any record; reviewers: the field work they
/// review (establishments, checklists, plans, draws, tasks, inspections, answers, photos), not
/// accounts, sessions or conflict declarations. Reading it is recorded.
#[utoipa::path(get, path = "/api/v1/audit/records/{type}/{id}", tag = "audit", security(("bearer" = [])),
    params(("type" = String, Path, description = "Record type, e.g. `inspection`, `plan`, `user`"),
        ("id" = String, Path, description = "Record id"), PageParams),
    responses((status = 200, body = AuditPage),
        (status = 400, description = "`bad_request`: a malformed cursor", body = ErrorEnvelope),
        (status = 403, description = "`forbidden`: neither admin nor reviewer, or a reviewer asking for a kind they do not review (`user`, `session`, `conflict`, `audit_log`, `batch`: admin only)", body = ErrorEnvelope),
        (status = 404, description = "`not_found`: no such record type", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed`: limit out of range", body = ErrorEnvelope)))]
async fn record_history(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> AppResult<Json<AuditPage>> {
    let kind = RecordKind::parse(&kind)
        .ok_or_else(|| AppError::not_found(format!("{kind:?} is not a record type")))?;
    let (before_id, limit) = page(&p.cursor, p.limit)?;
    let filter = Filter {
        record_type: Some(kind.as_str().to_owned()),
        record_id: Some(id),
        before_id,
        ..Filter::default()
    };
    let (rows, more) = ops::audit::list(&state.db, &user.ctx(), &filter, limit).await?;
    Ok(Json(to_page(rows, more)))
}

/// An inclusion proof: the entry, the Merkle audit path and the root it leads to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InclusionProofView {
    /// The entry exactly as hashed (the stored `changes` text byte for byte), so its hash can
    /// be recomputed offline (`foodcheck audit verify-inclusion`).
    pub entry: Entry,
    /// The previous entry's hash (base64), part of what the entry hash covers.
    pub prev_hash: String,
    /// SHA-256 of the entry's canonical bytes (base64): the Merkle leaf data.
    pub entry_hash: String,
    /// The leaf's index (the entry's seq).
    pub leaf_index: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The tree's root hash at that size (base64).
    pub root_hash: String,
    /// The audit path, leaf to root (base64 hashes; RFC 6962 order).
    pub proof: Vec<String>,
    /// The signed checkpoint note of this tree size, when one was signed (it is, for the
    /// default size).
    pub checkpoint: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProofParams {
    /// The entry's seq (from 0).
    pub entry: u64,
    /// The tree size; default: the latest checkpoint's.
    pub size: Option<u64>,
}

/// Inclusion proof of an entry in the tree of a given size (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/audit/proof", tag = "audit", security(("bearer" = [])), params(ProofParams),
    responses((status = 200, body = InclusionProofView),
        (status = 400, description = "`bad_request`: `entry` missing or not a number", body = ErrorEnvelope),
        (status = 403, description = "`forbidden`: neither admin nor reviewer", body = ErrorEnvelope),
        (status = 409, description = "`no_checkpoint`: no size given and nothing signed yet", body = ErrorEnvelope),
        (status = 422, description = "`out_of_range`: the entry is not in a tree of that size, or the size exceeds the tree", body = ErrorEnvelope)))]
async fn inclusion_proof(
    State(state): State<AppState>,
    _: Authorized<Office>,
    ApiQuery(p): ApiQuery<ProofParams>,
) -> AppResult<Json<InclusionProofView>> {
    let pr = ops::audit::proof(&state.db, p.entry, p.size).await?;
    let seq = pr.entry.seq.unwrap_or_default() as u64;
    Ok(Json(InclusionProofView {
        entry: pr.entry.entry(seq),
        prev_hash: b64(pr.entry.prev_hash.as_deref().unwrap_or_default()),
        entry_hash: b64(pr.entry.entry_hash.as_deref().unwrap_or_default()),
        leaf_index: seq,
        tree_size: pr.tree_size,
        root_hash: b64(&pr.root),
        proof: pr.proof.iter().map(|h| b64(h)).collect(),
        checkpoint: pr.checkpoint,
    }))
}

/// A consistency proof between two tree sizes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProofView {
    pub from: u64,
    pub to: u64,
    /// Root of the first `from` entries (base64).
    pub from_root: String,
    /// Root of the first `to` entries (base64).
    pub to_root: String,
    /// RFC 6962 consistency proof (base64 hashes); empty when `from` = `to`.
    pub proof: Vec<String>,
    /// The signed checkpoint of size `from`, when one was signed.
    pub from_checkpoint: Option<String>,
    /// The signed checkpoint of size `to`, when one was signed.
    pub to_checkpoint: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    /// The older tree size (≥ 1), e.g. of a checkpoint published earlier.
    pub from: u64,
    /// The newer tree size; default: the latest checkpoint's.
    pub to: Option<u64>,
}

/// Consistency proof: the tree of `from` entries is a prefix of the tree of `to` entries,
/// so nothing recorded before `from` was changed since (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/audit/consistency", tag = "audit", security(("bearer" = [])), params(ConsistencyParams),
    responses((status = 200, body = ConsistencyProofView),
        (status = 400, description = "`bad_request`: `from` missing or not a number", body = ErrorEnvelope),
        (status = 403, description = "`forbidden`: neither admin nor reviewer", body = ErrorEnvelope),
        (status = 409, description = "`no_checkpoint`: no `to` given and nothing signed yet", body = ErrorEnvelope),
        (status = 422, description = "`out_of_range`: `from` is 0 or above `to`, or `to` exceeds the tree", body = ErrorEnvelope)))]
async fn consistency_proof(
    State(state): State<AppState>,
    _: Authorized<Office>,
    ApiQuery(p): ApiQuery<ConsistencyParams>,
) -> AppResult<Json<ConsistencyProofView>> {
    let c = ops::audit::consistency(&state.db, p.from, p.to).await?;
    Ok(Json(ConsistencyProofView {
        from: c.from,
        to: c.to,
        from_root: b64(&c.from_root),
        to_root: b64(&c.to_root),
        proof: c.proof.iter().map(|h| b64(h)).collect(),
        from_checkpoint: c.from_checkpoint,
        to_checkpoint: c.to_checkpoint,
    }))
}

/// The latest signed checkpoint as JSON (with `Accept: application/json`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublicCheckpoint {
    /// The log's name (the note's first line).
    pub origin: String,
    /// Entries covered.
    pub tree_size: u64,
    /// Merkle root of those entries (base64).
    pub root_hash: String,
    /// When it was signed (RFC 3339).
    pub signed_at: String,
    /// The signed note (C2SP signed-note over a tlog-checkpoint body), to keep and verify.
    pub note: String,
    /// The verifier key the note is signed with (`name+keyid+key`).
    pub verifier_key: String,
}

fn text(body: String) -> Response {
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// The latest signed checkpoint of the audit log (no login): origin, tree size, root hash and
/// time, signed with the bureau's Ed25519 key. As the plain C2SP note by default; as JSON with
/// `Accept: application/json`. Holds no personal data.
#[utoipa::path(get, path = "/public/v1/audit/checkpoint", tag = "public",
    responses((status = 200, description = "The signed note (`text/plain`), or `PublicCheckpoint` as JSON",
            content((String = "text/plain"), (PublicCheckpoint = "application/json"))),
        (status = 404, description = "`not_found`: no checkpoint signed yet", body = ErrorEnvelope)))]
async fn public_checkpoint(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let c = ops::audit::latest_checkpoint(&state.db)
        .await?
        .ok_or_else(|| AppError::not_found("no audit checkpoint has been signed yet"))?;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if !wants_json {
        return Ok(text(c.note));
    }
    let origin = c.note.split('\n').next().unwrap_or_default().to_owned();
    Ok(Json(PublicCheckpoint {
        origin,
        tree_size: c.tree_size,
        root_hash: b64(&c.root),
        signed_at: rfc3339(c.at),
        note: c.note,
        verifier_key: c.verifier_key,
    })
    .into_response())
}

/// The verifier key of the audit checkpoints (no login), `name+keyid+base64key` as
/// C2SP signed-note verifiers read it. Auditors should pin it once, from a trusted channel.
#[utoipa::path(get, path = "/public/v1/audit/key", tag = "public",
    responses((status = 200, description = "The verifier key", content_type = "text/plain", body = String)))]
async fn public_key(State(state): State<AppState>) -> Response {
    text(format!("{}\n", state.audit_key.verifier_key()))
}
