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
/// `Upload-Offset` (the full length at once when the same bytes are already stored) and
/// `Upload-Expires`.
#[utoipa::path(post, path = "/api/v1/uploads", tag = "uploads", security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; see Location, Upload-Offset, Upload-Expires"),
        (status = 400, description = "`bad_request`: Upload-Length or Upload-Metadata missing or malformed", body = ErrorEnvelope),
        (status = 403, description = "Only inspectors upload", body = ErrorEnvelope),
        (status = 404, description = "No such photo record that the caller may write", body = ErrorEnvelope),
        (status = 409, description = "`sha256_mismatch`, `size_mismatch`", body = ErrorEnvelope),
        (status = 412, description = "`precondition_failed`: Tus-Resumable missing", body = ErrorEnvelope),
        (status = 413, description = "Larger than the configured limit (default 25 MB)", body = ErrorEnvelope)))]
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
    // Content already stored (another photo, or a finished earlier upload): nothing to send.
    if store::uploads::blob_exists(&state.db, &sha256).await? {
        let media = sniff_stored(&state, &sha256).await.unwrap_or("image/jpeg");
        store::uploads::create(
            &state.db,
            &store::uploads::NewUpload {
                id: &id,
                photo_id: &photo_id,
                created_by: &user.id,
                length,
                sha256: &sha256,
                metadata: &raw,
                expires_at: expires,
            },
        )
        .await?;
        store::uploads::advance(&state.db, &id, 0, length, expires).await?;
        store::uploads::attach(
            &state.db,
            Some(&id),
            &photo_id,
            &sha256,
            length,
            media,
            &blob_key(&sha256),
        )
        .await?;
        return Ok(created_response(&id, length, expires));
    }
    tokio::fs::create_dir_all(state.config.data_dir.join("uploads"))
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    tokio::fs::File::create(partial_path(&state, &id))
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    store::uploads::create(
        &state.db,
        &store::uploads::NewUpload {
            id: &id,
            photo_id: &photo_id,
            created_by: &user.id,
            length,
            sha256: &sha256,
            metadata: &raw,
            expires_at: expires,
        },
    )
    .await?;
    let with_body = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/offset+octet-stream");
    if with_body {
        let upload = store::uploads::get(&state.db, &id)
            .await?
            .ok_or_else(|| AppError::not_found("no such upload"))?;
        let (new_offset, _) = write_chunk(&state, &upload, &headers, req.into_body()).await?;
        return Ok(created_response(&id, new_offset, expires));
    }
    Ok(created_response(&id, 0, expires))
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
    let u = owned_upload(&state, &user, &id).await?;
    let mut res = StatusCode::OK.into_response();
    let h = res.headers_mut();
    h.insert("upload-offset", header_value(u.upload_offset));
    h.insert("upload-length", header_value(u.length));
    h.insert("upload-metadata", header_value(&u.metadata));
    h.insert("upload-expires", header_value(http_date(u.expires_at)));
    Ok(tus_headers(res))
}

/// Append a chunk at `Upload-Offset` (`Content-Type: application/offset+octet-stream`,
/// optional `Upload-Checksum: sha1|sha256 <base64>`). The last chunk completes the upload: the
/// file must hash to the declared sha256 and be JPEG, PNG or WebP, else it is discarded.
#[utoipa::path(patch, path = "/api/v1/uploads/{id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = String, Path, description = "Upload id")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "Appended; the new Upload-Offset"),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`offset_mismatch`, `sha256_mismatch` (upload discarded)", body = ErrorEnvelope),
        (status = 413, description = "The chunk goes past Upload-Length", body = ErrorEnvelope),
        (status = 415, description = "Wrong Content-Type, or the file is not JPEG/PNG/WebP (upload discarded)", body = ErrorEnvelope),
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
    if u.completed == 1 {
        let mut stream = req.into_body().into_data_stream();
        while let Some(Ok(_)) = stream.next().await {}
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

/// Appends the request body at the upload's offset; returns the new offset. A checksum
/// mismatch truncates the chunk away (460); a dropped connection keeps what arrived.
async fn write_chunk(
    state: &AppState,
    u: &store::uploads::UploadRow,
    headers: &HeaderMap,
    body: Body,
) -> AppResult<(i64, i64)> {
    let mut check = checksum(headers)?;
    let path = partial_path(state, &u.id);
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .await
        .map_err(|_| AppError::not_found("the upload's data is gone (expired?)"))?;
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
    if !store::uploads::advance(&state.db, &u.id, u.upload_offset, new_offset, expires).await? {
        return Err(AppError::conflict(
            "offset_mismatch",
            "another request moved the upload meanwhile",
        ));
    }
    if new_offset == u.length {
        finish(state, u, &path).await?;
    }
    Ok((new_offset, expires))
}

/// The whole file is in: check its hash and type, store it once per content, attach it.
async fn finish(state: &AppState, u: &store::uploads::UploadRow, path: &PathBuf) -> AppResult<()> {
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
            head.extend_from_slice(&buf[..n.min(16)]);
        }
        hasher.update(&buf[..n]);
    }
    let actual = hex::encode(hasher.finalize());
    let refuse = |e: AppError| async {
        let _ = tokio::fs::remove_file(path).await;
        let _ = store::uploads::delete(&state.db, &u.id).await;
        e
    };
    if actual != u.sha256 {
        return Err(refuse(AppError::conflict(
            "sha256_mismatch",
            format!(
                "the file hashes to {actual}, not the declared sha256; the upload is discarded"
            ),
        ))
        .await);
    }
    let Some(media) = sniff(&head) else {
        return Err(refuse(AppError::UnsupportedMediaType(
            "only JPEG, PNG and WebP photos are accepted; the upload is discarded".into(),
        ))
        .await);
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
    let _ = tokio::fs::remove_file(path).await;
    store::uploads::attach(
        &state.db,
        Some(&u.id),
        &u.photo_id,
        &actual,
        u.length,
        media,
        &key,
    )
    .await?;
    Ok(())
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
