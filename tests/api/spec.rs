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
