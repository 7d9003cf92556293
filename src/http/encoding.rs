//! Content codings at the edge: compressed responses (`Accept-Encoding`) and compressed
//! request bodies (`Content-Encoding`, the sync push).
//!
//! **Responses.** Textual bodies (`application/json`, `application/*+json`, `text/*` but
//! `text/event-stream`, `image/svg+xml`) of at least [`MIN_COMPRESSED_BYTES`] are compressed with
//! zstd, br or gzip when the client's `Accept-Encoding` asks, by its q-values (the highest wins;
//! `q=0` refuses a coding; on a tie zstd, then br, then gzip), and carry
//! `Vary: Accept-Encoding`. Bodies of unknown length (streamed exports) are compressed as they
//! stream, chunk by chunk, so memory stays bounded. Never compressed: everything else (JPEG,
//! PNG, WebP, ZIP, XLSX, PDF, octet streams, tus), downloads (`Content-Disposition: attachment`,
//! the exports), ranges (`206`, `Content-Range`), bodies that already have a
//! `Content-Encoding`, and `Cache-Control: no-transform`. A strong `ETag` on a
//! compressed answer is made weak (`W/"…"`): the compressed bytes are another representation,
//! and `If-None-Match` compares weakly.
//!
//! **Request bodies.** [`read_body`] reads a body sent with `Content-Encoding` `gzip`
//! (`x-gzip`), `br` or `zstd` (or none, `identity`), decompressing as the bytes arrive: both
//! the bytes on the wire and the decompressed bytes are bounded by the endpoint's limit (413
//! `payload_too_large` as soon as either is over), so a bomb never costs more than the limit.

use std::io;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use axum::middleware::Next;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncReadExt;
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;

use crate::error::{AppError, AppResult};

/// Smaller answers are sent as they are: the coding's own framing would eat the gain.
pub const MIN_COMPRESSED_BYTES: u16 = 1024;

/// Which responses are compressed (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct Compressible;

/// Whether a content type is text worth compressing.
pub fn textual(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", sub)) => sub == "json" || sub.ends_with("+json"),
        Some(("text", sub)) => sub != "event-stream",
        Some(("image", "svg+xml")) => true,
        _ => false,
    }
}

impl Predicate for Compressible {
    fn should_compress<B>(&self, res: &Response<B>) -> bool
    where
        B: http_body::Body,
    {
        if res.status() == StatusCode::PARTIAL_CONTENT || res.status() == StatusCode::NOT_MODIFIED {
            return false;
        }
        let h = res.headers();
        let no_transform = h
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("no-transform"));
        let text = h
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(textual);
        // Downloads (the exports: CSV, JSON, GeoJSON of up to millions of rows) stream at the
        // writer's pace: compressing them would cost more CPU per row than writing them, on a
        // public route, and hold the first byte until the encoder's first block.
        let download = h
            .get(header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("attachment")
            });
        text && !no_transform
            && !download
            && SizeAbove::new(MIN_COMPRESSED_BYTES).should_compress(res)
    }
}

/// The response compression layer: gzip, br and zstd at their default levels (gzip 6, br 4,
/// zstd 3); deflate is not offered.
pub fn compression() -> CompressionLayer<Compressible> {
    CompressionLayer::new()
        .no_deflate()
        .compress_when(Compressible)
}

/// Outside [`compression`]: a strong `ETag` on a compressed answer becomes weak.
pub async fn weak_etag_when_compressed(req: Request, next: Next) -> axum::response::Response {
    let mut res = next.run(req).await;
    if !res.headers().contains_key(header::CONTENT_ENCODING) {
        return res;
    }
    let weak = res
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .filter(|e| e.starts_with('"'))
        .and_then(|e| HeaderValue::from_str(&format!("W/{e}")).ok());
    if let Some(weak) = weak {
        res.headers_mut().insert(header::ETAG, weak);
    }
    res
}

/// Only `POST /api/v1/sync` decodes compressed bodies; any other request with a
/// `Content-Encoding` other than `identity` is 415 `unsupported_content_encoding` (rather than a
/// confusing `invalid_json` or a binary stored as sent).
pub async fn refuse_request_codings(req: Request, next: Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let decodes = req.method() == axum::http::Method::POST && req.uri().path() == "/api/v1/sync";
    if !decodes {
        match request_coding(req.headers()) {
            Ok(Coding::Identity) => {}
            Ok(coding) => {
                return AppError::UnsupportedContentEncoding(format!(
                    "Content-Encoding {} is accepted only by POST /api/v1/sync; send this body uncompressed",
                    coding.name()
                ))
                .into_response()
            }
            Err(e) => return e.into_response(),
        }
    }
    next.run(req).await
}

/// A request body's content coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Brotli,
    Zstd,
}

impl Coding {
    pub fn name(self) -> &'static str {
        match self {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }
}

/// The body's `Content-Encoding`: none or `identity`, `gzip` (`x-gzip`), `br` or `zstd`, one
/// coding only; anything else is 415 `unsupported_content_encoding`.
pub fn request_coding(headers: &HeaderMap) -> AppResult<Coding> {
    let mut values = headers.get_all(header::CONTENT_ENCODING).iter();
    let Some(first) = values.next() else {
        return Ok(Coding::Identity);
    };
    let unsupported = |what: &str| {
        AppError::UnsupportedContentEncoding(format!(
            "Content-Encoding {what:?} is not accepted; send gzip, br, zstd or none"
        ))
    };
    if values.next().is_some() {
        return Err(unsupported("(several)"));
    }
    let raw = first.to_str().map_err(|_| unsupported("(not text)"))?;
    let value = raw.trim().to_ascii_lowercase();
    match value.as_str() {
        "" | "identity" => Ok(Coding::Identity),
        "gzip" | "x-gzip" => Ok(Coding::Gzip),
        "br" => Ok(Coding::Brotli),
        "zstd" => Ok(Coding::Zstd),
        _ => Err(unsupported(raw)),
    }
}

/// Why reading the raw body stopped.
#[derive(Debug, thiserror::Error)]
enum RawError {
    #[error("the body is over the limit")]
    TooLarge,
    #[error("reading the body failed: {0}")]
    Read(axum::Error),
}

/// Reads the body (decompressed by its `Content-Encoding`) into one buffer of at most `limit`
/// bytes. 413 as soon as the declared length, the bytes received or the bytes decompressed are
/// over `limit`; the server never holds more than the limit plus one chunk (and the decoder's
/// window: 32 KiB for gzip, at most 16 MiB for br, 8 MiB for zstd, whose frames asking for more
/// are refused). A body that is not valid in its coding is 400 `invalid_compressed_body`.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> AppResult<Vec<u8>> {
    let coding = request_coding(headers)?;
    let too_large = |what: &str| {
        AppError::PayloadTooLarge(format!(
            "the body is over {limit} bytes{what}; send less at a time (see api-spec/sync.md)"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(""));
    }
    let mut received = 0usize;
    let raw = body.into_data_stream().map(move |chunk| match chunk {
        Ok(bytes) => {
            received += bytes.len();
            if received > limit {
                Err(io::Error::other(RawError::TooLarge))
            } else {
                Ok(bytes)
            }
        }
        Err(e) => Err(io::Error::other(RawError::Read(e))),
    });
    if coding == Coding::Identity {
        let mut buf = Vec::with_capacity(declared.unwrap_or(0));
        let mut raw = std::pin::pin!(raw);
        while let Some(chunk) = raw.try_next().await.map_err(|e| raw_error(e, &too_large))? {
            buf.extend_from_slice(&chunk);
        }
        return Ok(buf);
    }
    let reader = tokio_util::io::StreamReader::new(raw);
    use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZstdDecoder};
    let decoder: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>> = match coding {
        Coding::Gzip => {
            let mut d = GzipDecoder::new(reader);
            d.multiple_members(true);
            Box::pin(d)
        }
        Coding::Brotli => Box::pin(BrotliDecoder::new(reader)),
        Coding::Zstd => {
            // Frames declaring a window over 8 MiB (RFC 9659's limit for HTTP) are refused.
            let mut d = ZstdDecoder::new_for_http(reader);
            d.multiple_members(true);
            Box::pin(d)
        }
        Coding::Identity => unreachable!("handled above"),
    };
    // One byte past the limit tells "over" from "exactly the limit" without decompressing more.
    let mut buf = Vec::new();
    let read = decoder.take(limit as u64 + 1).read_to_end(&mut buf).await;
    match read {
        Ok(_) if buf.len() > limit => Err(too_large(" once decompressed")),
        Ok(_) => Ok(buf),
        Err(e) if e.get_ref().is_some_and(|i| i.is::<RawError>()) => Err(raw_error(e, &too_large)),
        Err(e) => Err(AppError::bad_request(
            "invalid_compressed_body",
            format!("the body is not valid {} data: {e}", coding.name()),
        )),
    }
}

fn raw_error(e: io::Error, too_large: &dyn Fn(&str) -> AppError) -> AppError {
    match e.into_inner().map(|i| i.downcast::<RawError>()) {
        Some(Ok(raw)) => match *raw {
            RawError::TooLarge => too_large(""),
            RawError::Read(e) => {
                AppError::bad_request("bad_request", format!("reading the body failed: {e}"))
            }
        },
        _ => AppError::bad_request("bad_request", "reading the body failed"),
    }
}
