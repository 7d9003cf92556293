//! The shape of the code, checked: data flows one way (http → ops → store and pure domain
//! modules), and every write transaction is opened by a use case in `src/ops/`. A new file
//! that breaks a rule fails here with its path and line.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (path relative to src/, line number, line) of every code line (comments skipped).
fn code_lines() -> Vec<(String, usize, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let t = line.trim_start();
            if t.starts_with("//") {
                continue;
            }
            out.push((rel.clone(), i + 1, line.to_owned()));
        }
    }
    out
}

fn violations(pattern: &str, allowed: impl Fn(&str) -> bool) -> Vec<String> {
    code_lines()
        .into_iter()
        .filter(|(path, _, line)| line.contains(pattern) && !allowed(path))
        .map(|(path, n, line)| format!("src/{path}:{n}: {}", line.trim()))
        .collect()
}

#[track_caller]
fn assert_none(rule: &str, found: Vec<String>) {
    assert!(found.is_empty(), "{rule}:\n{}", found.join("\n"));
}

#[test]
fn write_transactions_are_opened_only_by_use_cases() {
    assert_none(
        "a write transaction opened outside src/ops/ (move the write into a use case)",
        violations("begin_write(", |p| {
            p.starts_with("ops/") || p == "store/mod.rs"
        }),
    );
    // The pool's own `begin` is wrapped once, in the store's Db.
    assert_none(
        "a transaction begun on the pool directly",
        violations(".pool.begin(", |p| p == "store/mod.rs"),
    );
}

#[test]
fn audit_events_are_recorded_only_by_use_cases() {
    assert_none(
        "an audit event appended outside src/ops/",
        violations("audit::append(", |p| {
            p.starts_with("ops/") || p == "store/audit.rs"
        }),
    );
    assert_none(
        "the untyped audit call (record a typed audit::Event instead)",
        violations("store::audit(", |_| false),
    );
}

#[test]
fn nothing_below_the_edge_reaches_up_into_it() {
    // app.rs assembles the server and cli.rs is the binary's front: both sit above the edge.
    let top = |p: &str| p.starts_with("http/") || p == "app.rs" || p == "cli.rs" || p == "main.rs";
    assert_none(
        "a module below the HTTP edge imports it",
        violations("crate::http", top),
    );
    assert_none(
        "a module below the HTTP edge uses the edge's error type (return ops::Error)",
        violations("crate::error", |p| top(p) || p == "error.rs"),
    );
    assert_none(
        "a module below the HTTP edge uses axum",
        violations("axum::", |p| top(p) || p == "error.rs"),
    );
}
