//! A sample's attachments over HTTP: declaring one (`POST /api/v1/samples/{id}/attachments`),
//! listing them and downloading a file. The bytes go through the tus uploads
//! (`/api/v1/uploads` with `attachment_id` in `Upload-Metadata`). Thin handlers over
//! `ops::sample_attachments`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, ApiQuery, Authorized};
use super::photos::{range_headers, requested_range, span};
use super::sampling::{CustodyRecorders, SampleReaders};
use super::AppState;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::ops::sample_attachments::{self as uc, AttachmentView};
use crate::ops::sampling as sampling_uc;
use crate::photo::files::{rendition_key, PDF_MIME};
use crate::photo::ProcessingStatus;
use crate::sampling::attachment::NewAttachment;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_attachments, declare_attachment))
        .routes(routes!(attachment_content))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentList {
    pub items: Vec<AttachmentView>,
}

fn max_bytes(state: &AppState) -> i64 {
    i64::try_from(state.config.max_photo_bytes).unwrap_or(i64::MAX)
}

/// Declare an attachment of a sample: `site` (现场照片), `sample` (样品照片) or `seal` (封样照片)
/// by one of the sample's samplers, `report` (检验报告, PDF) by an account of the sample's lab.
/// Then send its bytes by tus (`POST /api/v1/uploads` with `Upload-Metadata: attachment_id
/// <b64>,sha256 <b64>` and `Upload-Length: byte_size`): photos must be JPEG, PNG or WebP and
/// are processed like inspection photos; a report must be a PDF by its bytes (`%PDF-` and a
/// trailer) and is stored as it is. Idempotent on the client's `id`: the same declaration
/// again is answered 200 as stored; another for the same id is 409.
#[utoipa::path(post, path = "/api/v1/samples/{id}/attachments", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sample id")),
    request_body = NewAttachment,
    responses(
        (status = 201, description = "Declared; upload its bytes next", body = AttachmentView),
        (status = 200, description = "The same declaration again: as stored", body = AttachmentView),
        (status = 403, description = "`forbidden`: not an inspector or lab account, or not this kind's declarer (photos: the samplers; the report: the sample's lab)", body = ErrorEnvelope),
        (status = 404, description = "No such sample, or not one the caller samples or tests", body = ErrorEnvelope),
        (status = 409, description = "`attachment_id_conflict`: this id was declared with other content", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (`id`: `invalid_id`; `sha256`: `invalid_sha256`; `byte_size`: `invalid_byte_size`, 1 to the upload limit; `taken_at`: `invalid_taken_at`), `invalid_body`", body = ErrorEnvelope)))]
async fn declare_attachment(
    State(state): State<AppState>,
    user: Authorized<CustodyRecorders>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> AppResult<(StatusCode, Json<AttachmentView>)> {
    let ctx = user.ctx();
    // A sample the caller may not see is 404 whatever the body.
    sampling_uc::ensure_visible(&state.db, &ctx, &id).await?;
    let n: NewAttachment = serde_json::from_value(body)
        .map_err(|e| AppError::unprocessable("invalid_body", e.to_string()))?;
    let (view, created) = uc::declare(&state.db, &ctx, max_bytes(&state), &id, &n).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// A sample's attachments in declaration order, each with its processing status (whoever may
/// see the sample: admins, reviewers, its samplers, its lab, and the lab named for its
/// requested 复检).
#[utoipa::path(get, path = "/api/v1/samples/{id}/attachments", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sample id")),
    responses((status = 200, body = AttachmentList), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such sample, or not one the caller may see", body = ErrorEnvelope)))]
async fn list_attachments(
    State(state): State<AppState>,
    user: Authorized<SampleReaders>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<AttachmentList>> {
    Ok(Json(AttachmentList {
        items: uc::list(&state.db, &user.ctx(), &id).await?,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContentParams {
    /// `original` (default: the file as uploaded), or for a processed photo `preview` (1600 px
    /// JPEG) or `thumbnail` (320 px JPEG), without EXIF.
    pub variant: Option<String>,
}

/// An attachment's file, for whoever may see the sample (the 复检 lab too). The original is sent byte for byte
/// with its sniffed type (`image/jpeg`, `image/png`, `image/webp`; a report as
/// `application/pdf` with `Content-Disposition: attachment`); every download of an original is
/// recorded in the audit log (`evidence_downloaded`, with the byte range served).
/// `ETag`/`If-None-Match` and a single `Range: bytes=` are supported (several ranges, or a
/// unit other than bytes: the whole file).
#[utoipa::path(get, path = "/api/v1/samples/{id}/attachments/{aid}/content", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sample id"),
           ("aid" = String, Path, description = "Attachment id"),
           ContentParams),
    responses(
        (status = 200, description = "The file, with its Content-Type"),
        (status = 206, description = "The requested range (Content-Range)"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, description = "`bad_request`: unknown `variant`, or a rendition of a PDF", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such sample or attachment (or not one the caller may see), or its bytes are not uploaded yet", body = ErrorEnvelope),
        (status = 409, description = "`not_ready`: the rendition is still being made (or the photo failed processing)", body = ErrorEnvelope),
        (status = 416, description = "Range not satisfiable (Content-Range: bytes */length)")))]
async fn attachment_content(
    State(state): State<AppState>,
    user: Authorized<SampleReaders>,
    ApiPath((id, aid)): ApiPath<(String, String)>,
    ApiQuery(p): ApiQuery<ContentParams>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let ctx = user.ctx();
    let f = uc::file(&state.db, &ctx, &id, &aid).await?;
    let a = &f.attachment;
    let (Some(key), Some(media)) = (f.storage_key.clone(), a.media_type.clone()) else {
        return Err(AppError::not_found(
            "the attachment's bytes have not been uploaded yet",
        ));
    };
    let variant = p.variant.unwrap_or_else(|| "original".into());
    let is_pdf = media == PDF_MIME;
    let (path, content_type) = match variant.as_str() {
        "original" => (key, media.clone()),
        "preview" | "thumbnail" if !is_pdf => {
            if a.processing_status != ProcessingStatus::Processed {
                return Err(AppError::conflict(
                    "not_ready",
                    format!(
                        "the {variant} is not ready (processing: {})",
                        a.processing_status.as_str()
                    ),
                ));
            }
            (rendition_key(&a.sha256, &variant), "image/jpeg".to_string())
        }
        _ => {
            return Err(AppError::bad_request(
                "bad_request",
                "variant is original, or preview or thumbnail of a photo",
            ))
        }
    };
    let etag = format!("\"{}-{variant}\"", a.sha256);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let mut res = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            res.headers_mut().insert(header::ETAG, v);
        }
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
        // The evidence itself: recorded before the first byte goes out, with the range served.
        let served = range.map(|(a, b)| format!("{a}-{b}/{len}"));
        uc::evidence_downloaded(&state.db, &ctx, a, served).await?;
    }
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
    range_headers(h, range, len);
    h.insert(header::ETAG, v(etag));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    if is_pdf {
        h.insert(
            header::CONTENT_DISPOSITION,
            v(format!("attachment; filename=\"report-{}.pdf\"", a.id)),
        );
    }
    Ok(res)
}
