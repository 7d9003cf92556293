//! Caching and CORS for everything under `/public` (open data and public pages):
//! - reads are allowed from any origin (`Access-Control-Allow-Origin: *`, ETag exposed), and a
//!   preflight `OPTIONS` is answered 204; nothing under `/public` takes credentials or writes;
//! - a `200` without an ETag of its own gets a strong ETag of its body (SHA-256, first 16 bytes)
//!   and `If-None-Match` answers `304` with no body; bodies over [`MAX_ETAG_BODY`] (exports,
//!   streamed) are passed through untouched;
//! - `Cache-Control: public, max-age=60` unless the handler set one (published issues are
//!   immutable, but entries gain lifecycle updates and new issues appear).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Largest body hashed for an ETag (public JSON pages are a few hundred KB at most).
pub const MAX_ETAG_BODY: usize = 4 * 1024 * 1024;

fn cors(h: &mut HeaderMap) {
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("ETag, Content-Disposition"),
    );
}

fn matches(if_none_match: Option<&HeaderValue>, etag: &str) -> bool {
    if_none_match
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t == etag || t.strip_prefix("W/") == Some(etag)
            })
        })
}

pub async fn layer(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/public/") {
        return next.run(req).await;
    }
    if req.method() == Method::OPTIONS {
        let mut res = StatusCode::NO_CONTENT.into_response();
        let h = res.headers_mut();
        cors(h);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("If-None-Match, Accept, Accept-Language"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        return res;
    }
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    let res = next.run(req).await;
    let (mut parts, body) = res.into_parts();
    cors(&mut parts.headers);
    if parts.status != StatusCode::OK {
        return Response::from_parts(parts, body);
    }
    parts
        .headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("public, max-age=60"));
    if let Some(etag) = parts.headers.get(header::ETAG).cloned() {
        // The handler's own ETag (photos): honour If-None-Match with it.
        if etag
            .to_str()
            .is_ok_and(|e| matches(if_none_match.as_ref(), e))
        {
            return not_modified(parts.headers);
        }
        return Response::from_parts(parts, body);
    }
    let small = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n <= MAX_ETAG_BODY);
    let streamed = parts.headers.contains_key(header::CONTENT_DISPOSITION);
    if streamed || (!small && parts.headers.contains_key(header::CONTENT_LENGTH)) {
        return Response::from_parts(parts, body);
    }
    let bytes = match axum::body::to_bytes(body, MAX_ETAG_BODY).await {
        Ok(b) => b,
        Err(_) => {
            // Too large to hash (or the body failed): no ETag. The body is spent, so answer
            // an error rather than a truncated page.
            return crate::error::AppError::Internal(anyhow::anyhow!(
                "a public response exceeded {MAX_ETAG_BODY} bytes without Content-Length"
            ))
            .into_response();
        }
    };
    let etag = crate::public::cache::etag_of(&bytes);
    if matches(if_none_match.as_ref(), &etag) {
        let mut h = parts.headers;
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        return not_modified(h);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        parts.headers.insert(header::ETAG, v);
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn not_modified(headers: HeaderMap) -> Response {
    let mut res = StatusCode::NOT_MODIFIED.into_response();
    let h = res.headers_mut();
    for name in [
        header::ETAG,
        header::CACHE_CONTROL,
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        header::VARY,
    ] {
        if let Some(v) = headers.get(&name) {
            h.insert(name, v.clone());
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::matches;
    use axum::http::HeaderValue;

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        let v = |s: &'static str| Some(HeaderValue::from_static(s));
        assert!(matches(v("\"a\"").as_ref(), "\"a\""));
        assert!(matches(v("\"x\", W/\"a\"").as_ref(), "\"a\""));
        assert!(matches(v("*").as_ref(), "\"a\""));
        assert!(!matches(v("\"b\"").as_ref(), "\"a\""));
        assert!(!matches(None, "\"a\""));
    }
}
