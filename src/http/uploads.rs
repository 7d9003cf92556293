//! `/api/v1/uploads`: photo bytes by the tus 1.0 resumable upload protocol (core, creation,
//! creation-with-upload, termination, expiration, checksum with sha1 and sha256).
//!
//! A chunk streams into the database in parts of at most 1 MiB, never held whole in memory,
//! so any API instance can take the next chunk or answer `HEAD` (see `ops::uploads`). A chunk
//! whose `Upload-Checksum` does not match is discarded (460; the offset is unchanged). A
//! connection that drops mid-chunk keeps the parts that arrived, so the client resumes from
//! the offset `HEAD` reports. On completion the file must hash to the sha256 declared in
//! `Upload-Metadata` and be of a type its target accepts (a photo record or a sample's
//! site/sample/seal photo: JPEG, PNG or WebP; a sample's lab report: PDF, by its bytes); it is
//! then stored once per content (`blobs/<sha256>`) and attached to its record (a photo record
//! is seen by devices on their next pull).
//!
//! This module is the protocol (headers, status codes, cutting a chunk into parts); every
//! write is a use case of `ops::uploads`, which records the audit events.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures::StreamExt;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiPath, AuthUser};
use super::AppState;
use crate::auth::Role;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::ops::uploads::{self as ops, Created, Finish, Owner, Settled, UploadRow, EXPIRY_MS};
use crate::photo::files::{Sniff, HEAD_LEN};
use crate::store::now_ms;

const TUS_VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration,checksum";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(discover, create))
        .routes(routes!(offset, append, terminate))
        // tus clients may also probe an upload URL with OPTIONS.
        .route("/api/v1/uploads/{id}", axum::routing::options(discover))
        // Every answer of the tus endpoints names the protocol version, errors included
        // (401 from the extractor, 404, 409, 412, 415, 460...).
        .layer(axum::middleware::map_response(with_tus_resumable))
}

async fn with_tus_resumable(mut res: Response) -> Response {
    res.headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    res
}

fn tus_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn header_value(v: impl ToString) -> HeaderValue {
    HeaderValue::from_str(&v.to_string()).unwrap_or(HeaderValue::from_static(""))
}

fn http_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn require_tus(headers: &HeaderMap) -> AppResult<()> {
    match headers.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => Ok(()),
        _ => Err(AppError::PreconditionFailed(format!(
            "Tus-Resumable: {TUS_VERSION} is required"
        ))),
    }
}

/// tus discovery: `Tus-Version`, `Tus-Extension`, `Tus-Max-Size`, `Tus-Checksum-Algorithm`.
#[utoipa::path(options, path = "/api/v1/uploads", tag = "uploads",
    responses((status = 204, description = "Capabilities in the Tus-* headers")))]
async fn discover(State(state): State<AppState>) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert("tus-extension", HeaderValue::from_static(EXTENSIONS));
    h.insert("tus-max-size", header_value(state.config.max_photo_bytes));
    h.insert(
        "tus-checksum-algorithm",
        HeaderValue::from_static("sha1,sha256"),
    );
    tus_headers(res)
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs.
fn metadata(headers: &HeaderMap) -> AppResult<(String, Vec<(String, String)>)> {
    let raw = headers
        .get("upload-metadata")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut pairs = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once(' ').unwrap_or((part, ""));
        let value = STANDARD
            .decode(v.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                AppError::bad_request(
                    "bad_request",
                    format!("Upload-Metadata value of {k:?} is not base64 UTF-8"),
                )
            })?;
        super::extract::refuse_controls(&format!("the Upload-Metadata value of {k:?}"), &value)?;
        pairs.push((k.to_string(), value));
    }
    Ok((raw, pairs))
}

/// The 415 of an upload refused for its type.
fn refused(reason: String) -> AppError {
    AppError::UnsupportedMediaType(format!("{reason}; the upload is discarded"))
}

/// Start an upload (tus creation, and creation-with-upload when the body is
/// `application/offset+octet-stream`). Headers: `Tus-Resumable: 1.0.0`, `Upload-Length` (the
/// record's `byte_size`), `Upload-Metadata: photo_id <b64>,sha256 <b64>` (the record's id
/// and its 64-hex sha256, each base64-encoded as tus requires), or `attachment_id <b64>`
/// instead of `photo_id` for a sample attachment (`POST /api/v1/samples/{id}/attachments`).
/// A photo record must have been synced and belong to an inspection of the caller's team
/// (inspectors); a site/sample/seal attachment must be of a sample the caller samples
/// (inspectors), a report of a sample sent to the caller's lab (lab accounts). Answers `201`
/// with `Location`, `Upload-Offset` and `Upload-Expires`. `Upload-Offset` is the full length at
/// once only when the caller may already read the same content (their team's photos, the
/// attachments of samples they sample or test); anyone else sends the bytes. There is one open
/// upload per record: a repeated POST by the same user answers that upload (its Location and
/// offset; a body is then taken only at offset 0), another user's POST replaces it. A user's
/// open uploads may reserve at most `max_open_upload_bytes_per_user` declared bytes.
#[utoipa::path(post, path = "/api/v1/uploads", tag = "uploads", security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; see Location, Upload-Offset, Upload-Expires"),
        (status = 400, description = "`bad_request`: Upload-Length or Upload-Metadata missing or malformed (exactly one of photo_id and attachment_id)", body = ErrorEnvelope),
        (status = 403, description = "Only inspectors and lab accounts upload; photo records' files only inspectors", body = ErrorEnvelope),
        (status = 404, description = "No such photo record or sample attachment that the caller may write", body = ErrorEnvelope),
        (status = 409, description = "`sha256_mismatch`, `size_mismatch`, `open_uploads_limit` (the caller's unfinished uploads already reserve the configured maximum)", body = ErrorEnvelope),
        (status = 412, description = "`precondition_failed`: Tus-Resumable missing", body = ErrorEnvelope),
        (status = 413, description = "Larger than the configured limit (default 25 MB)", body = ErrorEnvelope),
        (status = 415, description = "`unsupported_media_type`: with creation-with-upload, the first bytes are not of a type the record takes (JPEG/PNG/WebP; a report: PDF) (upload discarded, the reason recorded on the record)", body = ErrorEnvelope)))]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    req: Request,
) -> AppResult<Response> {
    user.require(&[Role::Inspector, Role::Lab])?;
    let headers = req.headers().clone();
    require_tus(&headers)?;
    if headers.contains_key("upload-defer-length") {
        return Err(AppError::bad_request(
            "bad_request",
            "Upload-Defer-Length is not supported; send Upload-Length",
        ));
    }
    let length: i64 = headers
        .get("upload-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| AppError::bad_request("bad_request", "Upload-Length is required"))?;
    if length as u64 > state.config.max_photo_bytes as u64 {
        return Err(AppError::PayloadTooLarge(format!(
            "files are limited to {} bytes",
            state.config.max_photo_bytes
        )));
    }
    let (raw, pairs) = metadata(&headers)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let (photo_id, attachment_id) = (get("photo_id"), get("attachment_id"));
    let owner = match (&photo_id, &attachment_id) {
        (Some(p), None) => Owner::Photo(p),
        (None, Some(a)) => Owner::Attachment(a),
        _ => {
            return Err(AppError::bad_request(
                "bad_request",
                "Upload-Metadata needs photo_id or attachment_id (one of them)",
            ))
        }
    };
    let sha256 = get("sha256")
        .map(|s| s.to_lowercase())
        .ok_or_else(|| AppError::bad_request("bad_request", "Upload-Metadata needs sha256"))?;
    let with_body = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/offset+octet-stream");
    let body = req.into_body();
    let ctx = user.ctx();
    let creation = ops::Creation {
        owner,
        sha256: &sha256,
        length,
        metadata: &raw,
    };
    let upload = match ops::create(&state, &ctx, &creation).await {
        Ok(Created::Complete {
            id,
            length,
            expires_at,
        }) => {
            drain(body).await;
            return Ok(created_response(&id, length, expires_at));
        }
        Ok(Created::Existing(u)) => {
            if with_body && u.upload_offset == 0 {
                let (new_offset, expires) = write_chunk(&state, &ctx, &u, &headers, body).await?;
                return Ok(created_response(&u.id, new_offset, expires));
            }
            drain(body).await;
            return Ok(created_response(&u.id, u.upload_offset, u.expires_at));
        }
        Ok(Created::Refused(reason)) => return Err(refused(reason)),
        Ok(Created::New(u)) => u,
        Err(e) => {
            if matches!(
                e,
                crate::ops::Error::Conflict {
                    code: "open_uploads_limit",
                    ..
                }
            ) {
                // The client sent its first chunk along: it reads this answer, not a broken pipe.
                drain(body).await;
            }
            return Err(e.into());
        }
    };
    if with_body {
        let (new_offset, _) = write_chunk(&state, &ctx, &upload, &headers, body).await?;
        return Ok(created_response(&upload.id, new_offset, upload.expires_at));
    }
    Ok(created_response(&upload.id, 0, upload.expires_at))
}

/// Reads and drops a request body, so that the client reads the answer instead of a broken
/// pipe.
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}

fn created_response(id: &str, offset: i64, expires: i64) -> Response {
    let mut res = StatusCode::CREATED.into_response();
    let h = res.headers_mut();
    h.insert(
        header::LOCATION,
        header_value(format!("/api/v1/uploads/{id}")),
    );
    h.insert("upload-offset", header_value(offset));
    h.insert("upload-expires", header_value(http_date(expires)));
    tus_headers(res)
}

/// The caller's upload, finished first when a crash left all its bytes in but unattached.
async fn settled(state: &AppState, ctx: &crate::audit::Ctx, u: UploadRow) -> AppResult<UploadRow> {
    match ops::settle(state, ctx, u).await? {
        Settled::Ready(u) => Ok(u),
        Settled::Refused(reason) => Err(refused(reason)),
    }
}

/// The upload's state: `Upload-Offset`, `Upload-Length`, `Upload-Metadata`, `Upload-Expires`.
#[utoipa::path(head, path = "/api/v1/uploads/{id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = String, Path, description = "Upload id (from Location)")),
    responses(
        (status = 200, description = "See the Upload-* headers"),
        (status = 403, description = "Only inspectors and lab accounts upload", body = ErrorEnvelope),
        (status = 404, description = "Unknown, expired, refused or someone else's upload", body = ErrorEnvelope),
        (status = 409, description = "`sha256_mismatch`: an upload a crash left with all its bytes was finished now and its file does not hash to the declared sha256 (upload discarded); `offset_mismatch`", body = ErrorEnvelope),
        (status = 412, description = "`precondition_failed`: Tus-Resumable missing", body = ErrorEnvelope),
        (status = 415, description = "`unsupported_media_type`: such an upload was finished now and is not of a type its record takes (upload discarded, the reason recorded on the record)", body = ErrorEnvelope)))]
async fn offset(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    require_tus(&headers)?;
    let ctx = user.ctx();
    let u = ops::owned(&state.db, &ctx, &id).await?;
    // All bytes in but not attached (a crash right after the last chunk): finished now, so
    // that a client which HEADs, sees the full offset and stops has not lost the photo.
    let u = settled(&state, &ctx, u).await?;
    let mut res = StatusCode::OK.into_response();
    let h = res.headers_mut();
    h.insert("upload-offset", header_value(u.upload_offset));
    h.insert("upload-length", header_value(u.length));
    h.insert("upload-metadata", header_value(&u.metadata));
    h.insert("upload-expires", header_value(http_date(u.expires_at)));
    Ok(tus_headers(res))
}

/// Append a chunk at `Upload-Offset` (`Content-Type: application/offset+octet-stream`,
/// optional `Upload-Checksum: sha1|sha256 <base64>`). The first bytes (12) decide the type: a
/// file its record does not take is refused 415 at its first chunk (a photo that is not JPEG,
/// PNG or WebP, e.g. HEIC or a PDF; a report that does not start `%PDF-`), and the record gets
/// `processing_status` `failed` with the reason. The last chunk completes the upload: the file
/// must hash to the declared sha256, else it is discarded; a report must also end with a PDF
/// trailer (`startxref` to a cross-reference section, `%%EOF`), else 415 as above. The final offset,
/// the attachment and the processing job are written together; an upload found with all its
/// bytes but not attached (a crash) is finished by the next HEAD, PATCH or server start.
#[utoipa::path(patch, path = "/api/v1/uploads/{id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = String, Path, description = "Upload id")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "Appended; the new Upload-Offset"),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`offset_mismatch`, `sha256_mismatch` (upload discarded)", body = ErrorEnvelope),
        (status = 413, description = "The chunk goes past Upload-Length", body = ErrorEnvelope),
        (status = 415, description = "Wrong Content-Type, or the first bytes are not of a type the record takes (upload discarded at the first chunk, the reason recorded on the record), or a report's last chunk completes no parseable PDF", body = ErrorEnvelope),
        (status = 460, description = "`checksum_mismatch`: the chunk was discarded, the offset is unchanged", body = ErrorEnvelope)))]
async fn append(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    req: Request,
) -> AppResult<Response> {
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let ctx = user.ctx();
    let u = match prepare_append(&state, &ctx, &id, &headers).await {
        Ok(Some(u)) => u,
        // Already complete (finished earlier, or the same content was stored before):
        // whatever a retrying client sends, the answer is "done".
        Ok(None) => {
            drain_at_most(body, state.config.max_photo_bytes).await;
            let u = ops::owned(&state.db, &ctx, &id).await?;
            let mut res = StatusCode::NO_CONTENT.into_response();
            res.headers_mut()
                .insert("upload-offset", header_value(u.length));
            return Ok(tus_headers(res));
        }
        // Refused before its first byte is read: the body is read (up to a file's size) and
        // dropped, so that the client, or a proxy streaming the body on, reads this answer
        // rather than a broken pipe. A chunk past the length is not read (413).
        Err(e) => {
            if !matches!(e, AppError::PayloadTooLarge(_)) {
                drain_at_most(body, state.config.max_photo_bytes).await;
            }
            return Err(e);
        }
    };
    let (new_offset, expires) = write_chunk(&state, &ctx, &u, &headers, body).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .insert("upload-offset", header_value(new_offset));
    res.headers_mut()
        .insert("upload-expires", header_value(http_date(expires)));
    Ok(tus_headers(res))
}

/// A PATCH's checks before its body is read: the caller's upload, after any repair, at the
/// claimed offset (`None`: it is complete already).
async fn prepare_append(
    state: &AppState,
    ctx: &crate::audit::Ctx,
    id: &str,
    headers: &HeaderMap,
) -> AppResult<Option<UploadRow>> {
    require_tus(headers)?;
    let u = ops::owned(&state.db, ctx, id).await?;
    if headers
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v != "application/offset+octet-stream")
    {
        return Err(AppError::UnsupportedMediaType(
            "PATCH needs Content-Type: application/offset+octet-stream".into(),
        ));
    }
    let claimed: i64 = headers
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| AppError::bad_request("bad_request", "Upload-Offset is required"))?;
    let u = settled(state, ctx, u).await?;
    if u.completed == 1 {
        return Ok(None);
    }
    if claimed != u.upload_offset {
        return Err(AppError::conflict(
            "offset_mismatch",
            format!("the upload is at offset {}", u.upload_offset),
        ));
    }
    // The chunk's own headers, checked again by `write_chunk`.
    checksum(headers)?;
    if declared_length(headers).is_some_and(|n| u.upload_offset.saturating_add(n) > u.length) {
        return Err(past_length());
    }
    Ok(Some(u))
}

fn declared_length(headers: &HeaderMap) -> Option<i64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
}

/// Reads and drops at most `limit` bytes of a body (then the connection is simply closed).
async fn drain_at_most(body: Body, limit: usize) {
    let mut stream = body.into_data_stream();
    let mut read = 0;
    while let Some(Ok(bytes)) = stream.next().await {
        read += bytes.len();
        if read > limit {
            break;
        }
    }
}

enum Checksum {
    Sha1(Sha1, Vec<u8>),
    Sha256(Sha256, Vec<u8>),
}

fn checksum(headers: &HeaderMap) -> AppResult<Option<Checksum>> {
    let Some(v) = headers.get("upload-checksum").and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let (alg, b64) = v.split_once(' ').ok_or_else(|| {
        AppError::bad_request("bad_request", "Upload-Checksum is `<algorithm> <base64>`")
    })?;
    let want = STANDARD
        .decode(b64.trim())
        .map_err(|_| AppError::bad_request("bad_request", "Upload-Checksum value is not base64"))?;
    match alg {
        "sha1" => Ok(Some(Checksum::Sha1(Sha1::new(), want))),
        "sha256" => Ok(Some(Checksum::Sha256(Sha256::new(), want))),
        _ => Err(AppError::bad_request(
            "checksum_algorithm_unsupported",
            "supported checksum algorithms: sha1, sha256",
        )),
    }
}

/// Appends the request body at the upload's offset, in parts of at most
/// [`ops::PART_BYTES`], each stored with the offset it reaches (see `ops::uploads`); returns
/// the new offset. A chunk with `Upload-Checksum` counts only once all of it matched (else
/// 460; the offset is unchanged). A dropped connection keeps what arrived. The first bytes
/// decide the type: anything its target does not take is refused (415) before more data is
/// kept. The last chunk completes the upload.
async fn write_chunk(
    state: &AppState,
    ctx: &crate::audit::Ctx,
    u: &UploadRow,
    headers: &HeaderMap,
    body: Body,
) -> AppResult<(i64, i64)> {
    let mut check = checksum(headers)?;
    if declared_length(headers).is_some_and(|n| u.upload_offset.saturating_add(n) > u.length) {
        return Err(past_length());
    }
    // A checksummed chunk is staged under its own id until it is verified.
    let staged = check
        .as_ref()
        .map(|_| uuid::Uuid::new_v4().simple().to_string());
    let drop_staged = |id: Option<String>| async move {
        if let Some(staged) = id {
            let _ = ops::drop_staged(&state.db, &u.id, &staged).await;
        }
    };
    // The type is decided once HEAD_LEN bytes are in; a resumed upload shorter than that
    // has its first bytes in its parts.
    let mut head = if (u.upload_offset as usize) < HEAD_LEN {
        ops::head_of(&state.db, &u.id, HEAD_LEN).await?
    } else {
        Vec::new()
    };
    let mut decided = u.upload_offset as usize >= HEAD_LEN;
    let accept = ops::accept_of(u);
    // `at`: where the next part goes; `pending`: bytes not yet stored.
    let mut at = u.upload_offset;
    let mut pending: Vec<u8> = Vec::new();
    let mut stream = body.into_data_stream();
    let mut broken = false;
    while let Some(chunk) = stream.next().await {
        let Ok(bytes) = chunk else {
            broken = true;
            break;
        };
        if at + (pending.len() + bytes.len()) as i64 > u.length {
            drop_staged(staged).await;
            return Err(past_length());
        }
        if !decided {
            let want = (HEAD_LEN - head.len()).min(bytes.len());
            head.extend_from_slice(&bytes[..want]);
            match accept.sniff_prefix(&head) {
                Sniff::Image(_) => decided = true,
                Sniff::Undecided => {}
                Sniff::Refused => {
                    // The rest of this chunk is read and dropped so that the client gets the
                    // 415 rather than a broken pipe; no further chunk is asked for.
                    drain_stream(stream).await;
                    return Err(refused(ops::refuse_type(state, ctx, u, &head).await?));
                }
            }
        }
        match &mut check {
            Some(Checksum::Sha1(h, _)) => h.update(&bytes),
            Some(Checksum::Sha256(h, _)) => h.update(&bytes),
            None => {}
        }
        pending.extend_from_slice(&bytes);
        while pending.len() >= ops::PART_BYTES {
            let rest = pending.split_off(ops::PART_BYTES);
            let part = std::mem::replace(&mut pending, rest);
            if let Err(e) = store_part(state, u, staged.as_deref(), at, &part).await {
                drop_staged(staged).await;
                return Err(e);
            }
            at += part.len() as i64;
        }
    }
    let verified = match check {
        None => true,
        // A chunk that did not arrive whole cannot be checked: it is discarded.
        Some(_) if broken => false,
        Some(Checksum::Sha1(h, want)) => h.finalize().as_slice() == want.as_slice(),
        Some(Checksum::Sha256(h, want)) => h.finalize().as_slice() == want.as_slice(),
    };
    if !verified {
        drop_staged(staged).await;
        if broken {
            return Err(AppError::bad_request(
                "bad_request",
                "the chunk was cut off",
            ));
        }
        return Err(AppError::ChecksumMismatch);
    }
    let expires = now_ms() + EXPIRY_MS;
    if !pending.is_empty() {
        if let Err(e) = store_part(state, u, staged.as_deref(), at, &pending).await {
            drop_staged(staged).await;
            return Err(e);
        }
        at += pending.len() as i64;
    }
    match &staged {
        Some(staged) => {
            ops::promote(&state.db, &u.id, staged, u.upload_offset, at, expires).await?
        }
        // An empty PATCH renews the expiry (and still checks the offset).
        None if at == u.upload_offset => ops::touch(&state.db, &u.id, at, expires).await?,
        None => {}
    }
    if at == u.length {
        let complete = UploadRow {
            upload_offset: at,
            ..u.clone()
        };
        match ops::finish(state, ctx, &complete).await? {
            Finish::Done => {}
            Finish::Refused(reason) => return Err(refused(reason)),
            Finish::Rewound(to) => {
                return Err(AppError::conflict(
                    "offset_mismatch",
                    format!("the upload is at offset {to}"),
                ))
            }
        }
    }
    Ok((at, expires))
}

fn past_length() -> AppError {
    AppError::PayloadTooLarge("the chunk goes past Upload-Length".into())
}

/// Stores one part at `at`: counted at once (the offset advances with it), or staged under a
/// checksummed chunk's id.
async fn store_part(
    state: &AppState,
    u: &UploadRow,
    staged: Option<&str>,
    at: i64,
    part: &[u8],
) -> AppResult<()> {
    match staged {
        Some(staged) => ops::stage_part(&state.db, &u.id, staged, at, part).await?,
        None => ops::append_part(&state.db, &u.id, at, part, now_ms() + EXPIRY_MS).await?,
    }
    Ok(())
}

async fn drain_stream(mut stream: axum::body::BodyDataStream) {
    while let Some(Ok(_)) = stream.next().await {}
}

/// Abandon an upload (tus termination); its partial data is removed.
#[utoipa::path(delete, path = "/api/v1/uploads/{id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = String, Path, description = "Upload id")),
    responses(
        (status = 204, description = "Terminated"),
        (status = 403, description = "Only inspectors and lab accounts upload", body = ErrorEnvelope),
        (status = 404, description = "Unknown, expired or someone else's upload", body = ErrorEnvelope),
        (status = 412, description = "`precondition_failed`: Tus-Resumable missing", body = ErrorEnvelope)))]
async fn terminate(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    require_tus(&headers)?;
    ops::terminate(&state, &user.ctx(), &id).await?;
    Ok(tus_headers(StatusCode::NO_CONTENT.into_response()))
}
