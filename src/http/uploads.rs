//! `/api/v1/uploads`: photo bytes by the tus 1.0 resumable upload protocol (core, creation,
//! creation-with-upload, termination, expiration, checksum with sha1 and sha256).
//!
//! A chunk streams to the end of a partial file, never held whole in memory. A chunk whose
//! `Upload-Checksum` does not match is cut off again (460; the offset is unchanged). A
//! connection that drops mid-chunk keeps what arrived, so the client resumes from the offset
//! `HEAD` reports. On completion the file must hash to the sha256 declared in
//! `Upload-Metadata` and be a JPEG, PNG or WebP; it is then stored once per content
//! (`blobs/<sha256>`) and attached to its photo record, which devices see on their next pull.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures::StreamExt;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiPath, AuthUser};
use super::AppState;
use crate::auth::Role;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::store::{self, now_ms};

const TUS_VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration,checksum";
/// Incomplete uploads are kept this long after their last chunk.
const EXPIRY_MS: i64 = 24 * 3600 * 1000;

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

fn partial_path(state: &AppState, id: &str) -> PathBuf {
    state
        .config
        .data_dir
        .join("uploads")
        .join(format!("{id}.part"))
}

fn blob_key(sha256: &str) -> String {
    format!("blobs/{}/{sha256}", &sha256[..2])
}

/// JPEG, PNG and WebP, by their first bytes.
fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Start an upload (tus creation, and creation-with-upload when the body is
/// `application/offset+octet-stream`). Headers: `Tus-Resumable: 1.0.0`, `Upload-Length` (the
/// photo record's `byte_size`), `Upload-Metadata: photo_id <b64>,sha256 <b64>` (the record's id
/// and its 64-hex sha256, each base64-encoded as tus requires). The photo record must have been
/// synced and belong to an inspection of the caller's team. Answers `201` with `Location`,
/// `Upload-Offset` and `Upload-Expires`. `Upload-Offset` is the full length at once only when
/// the caller's own team already holds the same content; anyone else sends the bytes. There is
/// one open upload per photo record: a repeated POST by the same user answers that upload (its
/// Location and offset; a body is then taken only at offset 0), a team mate's POST replaces it.
/// A user's open uploads may reserve at most `max_open_upload_bytes_per_user` declared bytes.
#[utoipa::path(post, path = "/api/v1/uploads", tag = "uploads", security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; see Location, Upload-Offset, Upload-Expires"),
        (status = 400, description = "`bad_request`: Upload-Length or Upload-Metadata missing or malformed", body = ErrorEnvelope),
        (status = 403, description = "Only inspectors upload", body = ErrorEnvelope),
        (status = 404, description = "No such photo record that the caller may write", body = ErrorEnvelope),
        (status = 409, description = "`sha256_mismatch`, `size_mismatch`, `open_uploads_limit` (the caller's unfinished uploads already reserve the configured maximum)", body = ErrorEnvelope),
        (status = 412, description = "`precondition_failed`: Tus-Resumable missing", body = ErrorEnvelope),
        (status = 413, description = "Larger than the configured limit (default 25 MB)", body = ErrorEnvelope),
        (status = 415, description = "`unsupported_media_type`: with creation-with-upload, the first bytes are not JPEG/PNG/WebP (upload discarded, the reason recorded on the photo record)", body = ErrorEnvelope)))]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    req: Request,
) -> AppResult<Response> {
    user.require(&[Role::Inspector])?;
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
    let photo_id = get("photo_id")
        .ok_or_else(|| AppError::bad_request("bad_request", "Upload-Metadata needs photo_id"))?;
    let sha256 = get("sha256")
        .map(|s| s.to_lowercase())
        .ok_or_else(|| AppError::bad_request("bad_request", "Upload-Metadata needs sha256"))?;
    let target = store::uploads::photo_target(&state.db, &photo_id, &user.id)
        .await?
        .filter(|t| t.is_member == 1)
        .ok_or_else(|| {
            AppError::not_found(
                "no photo record with that id that you may write; sync the record first",
            )
        })?;
    if target.sha256 != sha256 {
        return Err(AppError::conflict(
            "sha256_mismatch",
            "the declared sha256 is not the photo record's sha256",
        ));
    }
    if target.byte_size != length {
        return Err(AppError::conflict(
            "size_mismatch",
            "Upload-Length is not the photo record's byte_size",
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let expires = now_ms() + EXPIRY_MS;
    let new = store::uploads::NewUpload {
        id: &id,
        photo_id: &photo_id,
        created_by: &user.id,
        length,
        sha256: &sha256,
        metadata: &raw,
        expires_at: expires,
    };
    let with_body = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/offset+octet-stream");
    let body = req.into_body();
    // Content the caller's own team already holds (this record's, or another of their photos):
    // nothing to send. Anyone else proves possession by sending the bytes, even when the
    // content is stored already: knowing a sha256 must never be enough to get a file.
    if store::uploads::team_holds_blob(&state.db, &sha256, &user.id).await? {
        if let Some(media) = sniff_stored(&state, &sha256).await {
            store::uploads::create_complete(&state.db, &new, media, &blob_key(&sha256)).await?;
            drain(body).await;
            return Ok(created_response(&id, length, expires));
        }
    }
    tokio::fs::create_dir_all(state.config.data_dir.join("uploads"))
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let cap = i64::try_from(state.config.max_open_upload_bytes_per_user).unwrap_or(i64::MAX);
    let upload = match store::uploads::create(&state.db, &new, cap).await? {
        // One open upload per photo record and user: a repeated POST (a lost response, an app
        // restart without the upload URL) goes on with the upload already there.
        store::uploads::Created::Existing(mut u) => {
            if u.upload_offset == u.length {
                finish_stuck(&state, &u).await?;
                u = store::uploads::get(&state.db, &u.id)
                    .await?
                    .ok_or_else(|| AppError::not_found("no such upload"))?;
            }
            if with_body && u.upload_offset == 0 {
                let (new_offset, expires) = write_chunk(&state, &u, &headers, body).await?;
                return Ok(created_response(&u.id, new_offset, expires));
            }
            drain(body).await;
            return Ok(created_response(&u.id, u.upload_offset, u.expires_at));
        }
        store::uploads::Created::OverCap { open_bytes } => {
            drain(body).await;
            return Err(AppError::conflict(
                "open_uploads_limit",
                format!(
                    "your unfinished uploads already reserve {open_bytes} bytes (at most {cap}); \
                     finish or terminate one first"
                ),
            ));
        }
        store::uploads::Created::New { replaced } => {
            for old in replaced {
                let _ = tokio::fs::remove_file(partial_path(&state, &old)).await;
            }
            tokio::fs::File::create(partial_path(&state, &id))
                .await
                .map_err(|e| AppError::Internal(e.into()))?;
            store::uploads::get(&state.db, &id)
                .await?
                .ok_or_else(|| AppError::not_found("no such upload"))?
        }
    };
    if with_body {
        let (new_offset, _) = write_chunk(&state, &upload, &headers, body).await?;
        return Ok(created_response(&id, new_offset, expires));
    }
    Ok(created_response(&id, 0, expires))
}

/// Reads and drops a request body, so that the client reads the answer instead of a broken
/// pipe.
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}

async fn sniff_stored(state: &AppState, sha256: &str) -> Option<&'static str> {
    let head = state.storage.head_bytes(&blob_key(sha256), 16).await?;
    sniff(&head)
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

async fn owned_upload(
    state: &AppState,
    user: &AuthUser,
    id: &str,
) -> AppResult<store::uploads::UploadRow> {
    user.require(&[Role::Inspector])?;
    match store::uploads::get(&state.db, id).await? {
        Some(u) if u.created_by == user.id => Ok(u),
        // Someone else's upload id reveals nothing.
        _ => Err(AppError::not_found("no such upload")),
    }
}

/// The upload's state: `Upload-Offset`, `Upload-Length`, `Upload-Metadata`, `Upload-Expires`.
#[utoipa::path(head, path = "/api/v1/uploads/{id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = String, Path, description = "Upload id (from Location)")),
    responses((status = 200, description = "See the Upload-* headers"), (status = 404, description = "Unknown, expired, refused or someone else's upload")))]
async fn offset(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    require_tus(&headers)?;
    let mut u = owned_upload(&state, &user, &id).await?;
    // All bytes in but not attached (a crash right after the last chunk): finish it now, so
    // that a client which HEADs, sees the full offset and stops has not lost the photo.
    if u.completed == 0 && u.upload_offset == u.length {
        finish_stuck(&state, &u).await?;
        u = owned_upload(&state, &user, &id).await?;
    }
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
/// file that is not JPEG, PNG or WebP (e.g. HEIC) is refused 415 at its first chunk, and the
/// photo record gets `processing_status` `failed` with the reason. The last chunk completes the
/// upload: the file must hash to the declared sha256, else it is discarded. The final offset,
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
        (status = 415, description = "Wrong Content-Type, or the first bytes are not JPEG/PNG/WebP (upload discarded at the first chunk, the reason recorded on the photo record)", body = ErrorEnvelope),
        (status = 460, description = "`checksum_mismatch`: the chunk was discarded, the offset is unchanged", body = ErrorEnvelope)))]
async fn append(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    req: Request,
) -> AppResult<Response> {
    let headers = req.headers().clone();
    require_tus(&headers)?;
    let u = owned_upload(&state, &user, &id).await?;
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
    // Already complete (finished earlier, or the same content was stored before): whatever a
    // retrying client sends, the answer is "done". The body is drained so the client reads
    // this answer instead of a broken pipe.
    let mut u = u;
    if u.completed == 0 && u.upload_offset == u.length {
        finish_stuck(&state, &u).await?;
        u = owned_upload(&state, &user, &id).await?;
    }
    if u.completed == 1 {
        drain(req.into_body()).await;
        let mut res = StatusCode::NO_CONTENT.into_response();
        res.headers_mut()
            .insert("upload-offset", header_value(u.length));
        return Ok(tus_headers(res));
    }
    if claimed != u.upload_offset {
        return Err(AppError::conflict(
            "offset_mismatch",
            format!("the upload is at offset {}", u.upload_offset),
        ));
    }
    let (new_offset, expires) = write_chunk(&state, &u, &headers, req.into_body()).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .insert("upload-offset", header_value(new_offset));
    res.headers_mut()
        .insert("upload-expires", header_value(http_date(expires)));
    Ok(tus_headers(res))
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

/// Bytes that decide the file type (WebP needs 12).
const HEAD_LEN: usize = 12;

/// Appends the request body at the upload's offset; returns the new offset. A checksum
/// mismatch truncates the chunk away (460); a dropped connection keeps what arrived. The first
/// bytes decide the type: anything but JPEG, PNG or WebP is refused (415) before more data
/// is kept. The last chunk completes the upload.
async fn write_chunk(
    state: &AppState,
    u: &store::uploads::UploadRow,
    headers: &HeaderMap,
    body: Body,
) -> AppResult<(i64, i64)> {
    let mut check = checksum(headers)?;
    let path = partial_path(state, &u.id);
    let mut file = match tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .await
    {
        Ok(f) => f,
        Err(_) => return resumed_after_store(state, u, body).await,
    };
    // The type is decided once HEAD_LEN bytes are in; a resumed upload shorter than that
    // still has its first bytes in the file.
    let mut head = Vec::new();
    if (u.upload_offset as usize) < HEAD_LEN {
        head.resize(u.upload_offset as usize, 0);
        file.read_exact(&mut head)
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
    }
    let mut decided = u.upload_offset as usize >= HEAD_LEN;
    file.set_len(u.upload_offset as u64)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    file.seek(std::io::SeekFrom::Start(u.upload_offset as u64))
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let mut written: i64 = 0;
    let mut stream = body.into_data_stream();
    let mut broken = false;
    while let Some(chunk) = stream.next().await {
        let Ok(bytes) = chunk else {
            broken = true;
            break;
        };
        if u.upload_offset + written + bytes.len() as i64 > u.length {
            file.set_len(u.upload_offset as u64)
                .await
                .map_err(|e| AppError::Internal(e.into()))?;
            return Err(AppError::PayloadTooLarge(
                "the chunk goes past Upload-Length".into(),
            ));
        }
        if !decided {
            let want = (HEAD_LEN - head.len()).min(bytes.len());
            head.extend_from_slice(&bytes[..want]);
            match sniff_prefix(&head) {
                Sniff::Image(_) => decided = true,
                Sniff::Undecided => {}
                Sniff::Refused => {
                    drop(file);
                    // The rest of this chunk is read and dropped so that the client gets the
                    // 415 rather than a broken pipe; no further chunk is asked for.
                    drain_stream(stream).await;
                    return Err(refuse_type(state, u, &path, &head).await);
                }
            }
        }
        match &mut check {
            Some(Checksum::Sha1(h, _)) => h.update(&bytes),
            Some(Checksum::Sha256(h, _)) => h.update(&bytes),
            None => {}
        }
        file.write_all(&bytes)
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
        written += bytes.len() as i64;
    }
    let verified = match check {
        None => true,
        // A chunk that did not arrive whole cannot be checked: it is discarded.
        Some(_) if broken => false,
        Some(Checksum::Sha1(h, want)) => h.finalize().as_slice() == want.as_slice(),
        Some(Checksum::Sha256(h, want)) => h.finalize().as_slice() == want.as_slice(),
    };
    if !verified {
        file.set_len(u.upload_offset as u64)
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
        if broken {
            return Err(AppError::bad_request(
                "bad_request",
                "the chunk was cut off",
            ));
        }
        return Err(AppError::ChecksumMismatch);
    }
    file.sync_data()
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    drop(file);
    let new_offset = u.upload_offset + written;
    let expires = now_ms() + EXPIRY_MS;
    if new_offset == u.length {
        // The final offset is written only together with the attachment (one transaction):
        // a crash before it leaves the previous offset, and the client sends the last chunk
        // again.
        finish(state, u, &path, u.upload_offset).await?;
        return Ok((new_offset, expires));
    }
    if !store::uploads::advance(&state.db, &u.id, u.upload_offset, new_offset, expires).await? {
        return Err(AppError::conflict(
            "offset_mismatch",
            "another request moved the upload meanwhile",
        ));
    }
    Ok((new_offset, expires))
}

/// An open upload whose partial file is gone. Local storage moves the verified file into
/// place before the final transaction, so a crash between the two leaves exactly this: the
/// content, stored under the sha256 this upload declared and checked, and the upload still at
/// its previous offset. (Nothing else removes the partial file of an upload that stays open:
/// termination, expiry, refusal and replacement remove the upload too.) The client's resent
/// last chunk then completes it from the stored content.
async fn resumed_after_store(
    state: &AppState,
    u: &store::uploads::UploadRow,
    body: Body,
) -> AppResult<(i64, i64)> {
    let Some(media) = sniff_stored(state, &u.sha256).await else {
        return Err(AppError::not_found("the upload's data is gone (expired?)"));
    };
    drain(body).await;
    let key = blob_key(&u.sha256);
    if !store::uploads::complete(&state.db, u, u.upload_offset, &u.sha256, media, &key).await? {
        let now = store::uploads::get(&state.db, &u.id).await?;
        if now.is_none_or(|n| n.completed != 1) {
            return Err(AppError::conflict(
                "offset_mismatch",
                "another request moved the upload meanwhile",
            ));
        }
    }
    Ok((u.length, now_ms() + EXPIRY_MS))
}

async fn drain_stream(mut stream: axum::body::BodyDataStream) {
    while let Some(Ok(_)) = stream.next().await {}
}

/// What the first bytes of a file say.
#[derive(Debug, PartialEq, Eq)]
enum Sniff {
    Image(&'static str),
    /// Too few bytes yet; they agree with at least one accepted type.
    Undecided,
    Refused,
}

/// JPEG, PNG and WebP by their first bytes; decides as soon as no accepted type can match.
fn sniff_prefix(head: &[u8]) -> Sniff {
    if let Some(media) = sniff(head) {
        return Sniff::Image(media);
    }
    let agrees = |sig: &[u8], wildcard: std::ops::Range<usize>| {
        head.len() < sig.len()
            && head
                .iter()
                .zip(sig)
                .enumerate()
                .all(|(i, (a, b))| wildcard.contains(&i) || a == b)
    };
    if agrees(&[0xFF, 0xD8, 0xFF], 0..0)
        || agrees(b"\x89PNG\r\n\x1a\n", 0..0)
        || agrees(b"RIFF????WEBP", 4..8)
    {
        Sniff::Undecided
    } else {
        Sniff::Refused
    }
}

/// A few words on a refused file, for the photo record's processing error.
fn describe(head: &[u8]) -> &'static str {
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        match &head[8..12] {
            b"heic" | b"heix" | b"heim" | b"heis" | b"mif1" | b"msf1" | b"hevc" => "HEIC/HEIF",
            b"avif" | b"avis" => "AVIF",
            _ => "an ISO media file (e.g. video)",
        }
    } else if head.starts_with(b"GIF8") {
        "GIF"
    } else if head.starts_with(b"%PDF") {
        "PDF"
    } else {
        "not an image format the server accepts"
    }
}

/// Refuses the upload for its type: the partial data and the upload go, the photo record
/// keeps the reason (processing `failed`, seen by devices on their next pull).
async fn refuse_type(
    state: &AppState,
    u: &store::uploads::UploadRow,
    path: &PathBuf,
    head: &[u8],
) -> AppError {
    let reason = format!(
        "the file is {} by its first bytes; only JPEG, PNG and WebP photos are accepted \
         (convert HEIC to JPEG on the device)",
        describe(head)
    );
    let _ = tokio::fs::remove_file(path).await;
    if let Err(e) = store::uploads::refuse(&state.db, &u.id, &u.photo_id, &reason).await {
        return AppError::Internal(e.into());
    }
    AppError::UnsupportedMediaType(format!("{reason}; the upload is discarded"))
}

/// The whole file is in: check its hash and type, store it once per content, then in one
/// transaction set the final offset, attach it and queue processing (only if the upload is
/// still at offset `from`).
async fn finish(
    state: &AppState,
    u: &store::uploads::UploadRow,
    path: &PathBuf,
    from: i64,
) -> AppResult<()> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let mut hasher = Sha256::new();
    let mut head = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
        if n == 0 {
            break;
        }
        if head.len() < 16 {
            let want = (16 - head.len()).min(n);
            head.extend_from_slice(&buf[..want]);
        }
        hasher.update(&buf[..n]);
    }
    let actual = hex::encode(hasher.finalize());
    if actual != u.sha256 {
        let _ = tokio::fs::remove_file(path).await;
        let _ = store::uploads::delete(&state.db, &u.id).await;
        return Err(AppError::conflict(
            "sha256_mismatch",
            format!(
                "the file hashes to {actual}, not the declared sha256; the upload is discarded"
            ),
        ));
    }
    let Some(media) = sniff(&head) else {
        return Err(refuse_type(state, u, path, &head).await);
    };
    let key = blob_key(&actual);
    // Stored once per content: the same bytes uploaded again add nothing.
    if !state.storage.exists(&key).await {
        state
            .storage
            .put_file(&key, path)
            .await
            .map_err(AppError::Internal)?;
    }
    let done = store::uploads::complete(&state.db, u, from, &actual, media, &key).await?;
    if !done {
        // Finished meanwhile by a parallel request (a HEAD repair, a retried PATCH)?
        let now = store::uploads::get(&state.db, &u.id).await?;
        if now.is_none_or(|n| n.completed != 1) {
            return Err(AppError::conflict(
                "offset_mismatch",
                "another request moved the upload meanwhile",
            ));
        }
    }
    // Only once attached: until then the partial file is what a repair finishes from.
    let _ = tokio::fs::remove_file(path).await;
    Ok(())
}

/// Finishes an upload whose offset reached its length but that is not attached (a crash
/// between the two). Without the bytes to finish from, the offset goes back to what is really
/// there and the client's next HEAD tells it to send the rest.
async fn finish_stuck(state: &AppState, u: &store::uploads::UploadRow) -> AppResult<()> {
    let path = partial_path(state, &u.id);
    let on_disk = tokio::fs::metadata(&path)
        .await
        .ok()
        .map(|m| m.len() as i64);
    match on_disk {
        Some(n) if n == u.length => finish(state, u, &path, u.upload_offset).await,
        Some(n) => {
            store::uploads::rewind(&state.db, &u.id, n.min(u.length)).await?;
            Ok(())
        }
        None => {
            // Older versions moved the file to storage before attaching it: the stored blob
            // (content-addressed, written only after its hash was checked) finishes it.
            if let Some(media) = sniff_stored(state, &u.sha256).await {
                let key = blob_key(&u.sha256);
                store::uploads::complete(&state.db, u, u.upload_offset, &u.sha256, media, &key)
                    .await?;
                return Ok(());
            }
            tokio::fs::create_dir_all(state.config.data_dir.join("uploads"))
                .await
                .map_err(|e| AppError::Internal(e.into()))?;
            tokio::fs::File::create(&path)
                .await
                .map_err(|e| AppError::Internal(e.into()))?;
            store::uploads::rewind(&state.db, &u.id, 0).await?;
            Ok(())
        }
    }
}

/// At start-up (and hourly): finishes every upload left complete-but-unattached.
pub async fn repair_stuck(state: &AppState) -> Result<usize, sqlx::Error> {
    let stuck = store::uploads::stuck(&state.db).await?;
    let mut repaired = 0;
    for u in &stuck {
        match finish_stuck(state, u).await {
            Ok(()) => repaired += 1,
            Err(e) => tracing::warn!(upload = %u.id, error = %e, "could not finish a stuck upload"),
        }
    }
    Ok(repaired)
}

/// Abandon an upload (tus termination); its partial data is removed.
#[utoipa::path(delete, path = "/api/v1/uploads/{id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = String, Path, description = "Upload id")),
    responses((status = 204), (status = 404, body = ErrorEnvelope)))]
async fn terminate(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    require_tus(&headers)?;
    let u = owned_upload(&state, &user, &id).await?;
    if u.completed == 0 {
        let _ = tokio::fs::remove_file(partial_path(&state, &u.id)).await;
    }
    store::uploads::delete(&state.db, &u.id).await?;
    Ok(tus_headers(StatusCode::NO_CONTENT.into_response()))
}

/// Removes abandoned partial uploads (called by the hourly sweeper).
pub async fn sweep_expired(state: &AppState) -> Result<usize, sqlx::Error> {
    let ids = store::uploads::expired(&state.db, now_ms()).await?;
    for id in &ids {
        let _ = tokio::fs::remove_file(partial_path(state, id)).await;
        store::uploads::delete(&state.db, id).await?;
    }
    Ok(ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_decide_the_type() {
        assert_eq!(
            sniff_prefix(&[0xFF, 0xD8, 0xFF, 0xE1]),
            Sniff::Image("image/jpeg")
        );
        assert_eq!(
            sniff_prefix(b"\x89PNG\r\n\x1a\n"),
            Sniff::Image("image/png")
        );
        assert_eq!(
            sniff_prefix(b"RIFF\x10\0\0\0WEBPVP8 "),
            Sniff::Image("image/webp")
        );
        // Too short to tell, but each could still become an accepted type.
        for head in [
            &b""[..],
            &[0xFF, 0xD8],
            b"\x89PN",
            b"RIFF\x10\0",
            b"RIFF\x10\0\0\0WE",
        ] {
            assert_eq!(sniff_prefix(head), Sniff::Undecided, "{head:?}");
        }
        // HEIC (ISO-BMFF `ftyp`) is refused at its first byte already; so are GIF and a RIFF
        // that is not WebP (AVI, WAV).
        for head in [
            &b"\0\0\0\x18ftypheic"[..],
            b"\0",
            b"GIF89a",
            b"RIFF\x10\0\0\0AVI ",
            b"\xFF\xD9",
        ] {
            assert_eq!(sniff_prefix(head), Sniff::Refused, "{head:?}");
        }
        assert_eq!(describe(b"\0\0\0\x18ftypheic\0\0"), "HEIC/HEIF");
    }
}
