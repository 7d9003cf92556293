//! Statuses an operation can answer because of its shape, not its logic: added to the generated
//! spec from that shape so no annotation can forget them. An operation with `security` can
//! answer 401; one with a JSON body 400/413/415/422 (the [`ApiJson`](super::extract::ApiJson)
//! rejections); one with path or query parameters 400 (undecodable) and, for query strings,
//! 422 `control_character`; a tus operation 412 without `Tus-Resumable`; any operation that
//! reads the database 503 when the pool is exhausted. Annotations that already document a
//! status keep their own description.

use utoipa::openapi::content::Content;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{OpenApi, Ref, RefOr, Response, ResponseBuilder};

/// Adds the shape-given responses to every operation of `spec`.
pub fn add_shape_responses(spec: &mut OpenApi) {
    for (path, item) in spec.paths.paths.iter_mut() {
        let ops = [
            ("get", item.get.as_mut()),
            ("put", item.put.as_mut()),
            ("post", item.post.as_mut()),
            ("delete", item.delete.as_mut()),
            ("options", item.options.as_mut()),
            ("head", item.head.as_mut()),
            ("patch", item.patch.as_mut()),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            add_to_operation(path, method, op);
        }
    }
}

fn add_to_operation(path: &str, method: &str, op: &mut Operation) {
    // HEAD answers carry no body.
    let with_body = method != "head";
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let json_body = op
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.keys().any(|ct| ct == "application/json"));
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_path = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path));
    let has_query = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Query));
    let tus = path.starts_with("/api/v1/uploads") && method != "options";
    let uses_db =
        !(path == "/healthz" || path == "/public/v1/audit/key" || (tus && method == "options"));

    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(description, with_body));
    };
    if secured {
        add(
            "401",
            "`missing_token`, `invalid_token`, `token_expired` or `account_disabled`",
        );
    }
    if json_body {
        add("400", "`invalid_json`: the body is not JSON");
        add(
            "413",
            "`payload_too_large`: the body exceeds the JSON size limit",
        );
        add(
            "415",
            "`unsupported_media_type`: the body is not `Content-Type: application/json`",
        );
        add(
            "422",
            "`invalid_body` (missing fields, wrong types) or `control_character`",
        );
    }
    if has_path || has_query {
        add(
            "400",
            "`bad_request`: a path or query parameter cannot be decoded",
        );
    }
    if has_path {
        add("404", "`not_found`");
    }
    if has_query {
        add(
            "422",
            "`control_character`: a query parameter holds a control character",
        );
    }
    if tus {
        add(
            "412",
            "`precondition_failed`: `Tus-Resumable: 1.0.0` is required",
        );
    }
    if uses_db {
        add(
            "503",
            "`unavailable`: the database is unreachable or busy; retry after `Retry-After`",
        );
    }
}

fn error_response(description: &str, with_body: bool) -> RefOr<Response> {
    let mut b = ResponseBuilder::new().description(description);
    if with_body {
        b = b.content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorEnvelope"))),
        );
    }
    RefOr::T(b.build())
}
