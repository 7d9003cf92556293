//! `GET /api/v1/photos/{id}/{variant}`: the original (byte for byte, as evidence), the 1600 px
//! preview or the 320 px thumbnail, with ETag and Range support. Downloads of originals are
//! audited (`ops::photos::evidence_downloaded`).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiPath, Authorized, Staff};
use super::AppState;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::ops;
use crate::photo::files::rendition_key;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(photo_file))
}

/// Parses a single `bytes=` range against a file of `len` bytes: Some((start, end inclusive)).
fn parse_range(value: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: answer with the whole file, which is allowed
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (len.saturating_sub(n), len.saturating_sub(1))
        }
        (s, "") => (s.parse().map_err(|_| ())?, len.saturating_sub(1)),
        (s, e) => (
            s.parse().map_err(|_| ())?,
            e.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1)),
        ),
    };
    if len == 0 || start > end || start >= len {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// A photo file: `original` (as uploaded), `preview` (1600 px JPEG) or `thumbnail` (320 px
/// JPEG); renditions carry no EXIF. Inspectors get their team's photos, reviewers and admins
/// all. `ETag`/`If-None-Match` and single `Range` requests are supported. Every download of an
/// original (200 or 206) is recorded in the audit log (`evidence_downloaded`: who, which photo,
/// which byte range); previews, thumbnails and 304 answers are not.
#[utoipa::path(get, path = "/api/v1/photos/{id}/{variant}", tag = "uploads", security(("bearer" = [])),
    params(("id" = String, Path, description = "Photo record id"),
           ("variant" = String, Path, description = "`original`, `preview` or `thumbnail`")),
    responses(
        (status = 200, description = "The file; Content-Type image/jpeg, image/png or image/webp"),
        (status = 206, description = "The requested range (Content-Range)"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such photo (or not the caller's team's), or its bytes are not uploaded yet", body = ErrorEnvelope),
        (status = 409, description = "`not_ready`: the rendition is still being made", body = ErrorEnvelope),
        (status = 416, description = "Range not satisfiable")))]
async fn photo_file(
    State(state): State<AppState>,
    user: Authorized<Staff>,
    ApiPath((id, variant)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    if !matches!(variant.as_str(), "original" | "preview" | "thumbnail") {
        return Err(AppError::not_found(
            "the variant is original, preview or thumbnail",
        ));
    }
    let ctx = user.ctx();
    let photo = ops::photos::file(&state.db, &ctx, &id).await?;
    let (Some(sha256), Some(key), Some(media)) = (
        photo.sha256.clone(),
        photo.storage_key.clone(),
        photo.media_type.clone(),
    ) else {
        return Err(AppError::not_found(
            "the photo's bytes have not been uploaded yet",
        ));
    };
    let (path, content_type) = match variant.as_str() {
        "original" => (key, media),
        v => {
            if photo.processing_status != "processed" {
                return Err(AppError::conflict(
                    "not_ready",
                    format!(
                        "the {v} is not ready (processing: {})",
                        photo.processing_status
                    ),
                ));
            }
            (rendition_key(&sha256, v), "image/jpeg".to_string())
        }
    };
    let etag = format!("\"{sha256}-{variant}\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let mut res = StatusCode::NOT_MODIFIED.into_response();
        res.headers_mut().insert(
            header::ETAG,
            HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("")),
        );
        return Ok(res);
    }
    let len = state
        .storage
        .size(&path)
        .await
        .ok_or_else(|| AppError::not_found("the file is missing"))?;
    let range = match requested_range(&headers, len) {
        Ok(r) => r,
        Err(e) => return Ok(e.into_response()),
    };
    let (status, start, count) = span(range, len);
    if variant == "original" {
        // The evidence itself: recorded before the first byte goes out (renditions are not).
        let served = range.map(|(a, b)| format!("{a}-{b}/{len}"));
        ops::photos::evidence_downloaded(&state.db, &ctx, &photo, served).await?;
    }
    // Streamed: a 25 MB original is never held in memory.
    let body = if count == 0 {
        Body::empty()
    } else {
        Body::from_stream(
            state
                .storage
                .stream(&path, start, count)
                .await
                .map_err(AppError::Internal)?,
        )
    };
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    let v = |s: String| HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""));
    h.insert(header::CONTENT_TYPE, v(content_type));
    h.insert(header::CONTENT_LENGTH, v(count.to_string()));
    h.insert(header::ETAG, v(etag));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    range_headers(h, range, len);
    Ok(res)
}

/// The single `Range: bytes=` of a download of a file of `len` bytes (`None`: the whole file,
/// also for a header that is not `bytes=` or names several ranges), or the 416 answer.
/// Shared by every route that serves stored files.
pub(super) fn requested_range(
    headers: &HeaderMap,
    len: u64,
) -> Result<Option<(u64, u64)>, NotSatisfiable> {
    let Some(v) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    parse_range(v, len).map_err(|()| NotSatisfiable(len))
}

/// A range outside a file of this many bytes: 416 with `Content-Range: bytes */len`.
#[derive(Debug, Clone, Copy)]
pub(super) struct NotSatisfiable(u64);

impl IntoResponse for NotSatisfiable {
    fn into_response(self) -> Response {
        let mut res = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
        res.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes */{}", self.0))
                .unwrap_or(HeaderValue::from_static("")),
        );
        res
    }
}

/// The status, first byte and byte count to send for `range` of a file of `len` bytes.
pub(super) fn span(range: Option<(u64, u64)>, len: u64) -> (StatusCode, u64, u64) {
    match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        None => (StatusCode::OK, 0, len),
    }
}

/// `Accept-Ranges`, and `Content-Range` for a partial answer.
pub(super) fn range_headers(h: &mut HeaderMap, range: Option<(u64, u64)>, len: u64) {
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some((a, b)) = range {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{len}")) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Ok(Some((0, 99))));
        assert_eq!(parse_range("bytes=900-", 1000), Ok(Some((900, 999))));
        assert_eq!(parse_range("bytes=-100", 1000), Ok(Some((900, 999))));
        assert_eq!(parse_range("bytes=0-5000", 1000), Ok(Some((0, 999))));
        assert_eq!(parse_range("bytes=1000-", 1000), Err(()));
        assert_eq!(parse_range("bytes=5-1", 1000), Err(()));
        assert_eq!(parse_range("bytes=a-b", 1000), Err(()));
        assert_eq!(parse_range("items=0-1", 1000), Ok(None));
    }
}
