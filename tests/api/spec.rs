//! The committed API spec is what the code generates.

#[test]
fn committed_openapi_matches_the_code() {
    let generated = foodcheck::http::openapi_json();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/api-spec/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "api-spec/openapi.json is out of date with the code.\n\
         Regenerate it with:  cargo run -- openapi --write api-spec/openapi.json"
    );
}

#[test]
fn spec_is_openapi_3_1_and_documents_every_error_code() {
    let spec: serde_json::Value = serde_json::from_str(&foodcheck::http::openapi_json()).unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let description = spec["info"]["description"].as_str().unwrap();
    for (code, _, _) in foodcheck::error::ERROR_CODES {
        assert!(
            description.contains(&format!("`{code}`")),
            "error code {code} is not documented"
        );
    }
}

#[test]
fn committed_sync_doc_matches_the_code() {
    let generated = foodcheck::sync::doc::markdown();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/api-spec/sync.md");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "api-spec/sync.md is out of date with the code.\n\
         Regenerate it with:  cargo run -- sync-doc --write api-spec/sync.md"
    );
}

/// Statuses every operation of a kind can answer are documented on each of them: 401 where a
/// token is required, the JSON-body rejections, tus's 412, 404 where a path names a resource.
/// (The schemathesis run of tests/clients/run-schema-fuzz.sh checks the rest against a server.)
#[test]
fn every_operation_documents_the_statuses_its_shape_allows() {
    let spec: serde_json::Value = serde_json::from_str(&foodcheck::http::openapi_json()).unwrap();
    let mut missing = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let mut want: Vec<&str> = Vec::new();
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                want.push("401");
            }
            if op["requestBody"]["content"]["application/json"].is_object() {
                want.extend(["400", "413", "415", "422"]);
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            if params.iter().any(|p| p["in"] == "path") {
                want.extend(["400", "404"]);
            }
            if params.iter().any(|p| p["in"] == "query") {
                want.extend(["400", "422"]);
            }
            if path.starts_with("/api/v1/uploads") && method != "options" {
                want.push("412");
            }
            for status in want {
                if !responses.contains_key(status) {
                    missing.push(format!("{} {path}: {status}", method.to_uppercase()));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented statuses:\n{}",
        missing.join("\n")
    );
    let disable = &spec["paths"]["/api/v1/users/{id}/disable"]["post"]["responses"];
    assert!(disable["409"]["description"]
        .as_str()
        .unwrap()
        .contains("own account"));
}
