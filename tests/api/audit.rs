//! The tamper-evident audit log: integration, checkpoints and verification; tampering in SQL
//! (edit, delete, reorder, insert, truncate) detected with the right entry named; inclusion
//! and consistency proofs over HTTP and with the offline CLI; the public checkpoint; roles.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use foodcheck::audit::chain::Entry;
use foodcheck::audit::checkpoint::NoteVerifier;
use foodcheck::audit::merkle::{self, Hash};
use foodcheck::audit::verify::Break;
use foodcheck::audit::{Action, Actor, Ctx, Event, RecordKind};
use foodcheck::auth::Role;
use foodcheck::ops;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{assert_error, Kind, TestApp};

/// A server whose background integrator is off: tests integrate when they mean to.
async fn quiet(kind: Kind) -> TestApp {
    TestApp::spawn_with(kind, |c| c.audit_integrate_interval_ms = 0).await
}

/// Appends `n` events directly, in one write transaction (as a use case would).
async fn append(app: &TestApp, n: usize, tag: &str) {
    let ctx = Ctx::new(
        Actor::user("actor-1", Role::Admin, Some("dev-1")),
        Some(format!("req-{tag}")),
    );
    let events: Vec<Event> = (0..n)
        .map(|i| {
            Event::new(
                Action::EstablishmentUpdated,
                RecordKind::Establishment,
                format!("{tag}-{i}"),
            )
            .change("sign_name", format!("old {i}"), format!("new {i}"))
        })
        .collect();
    let mut tx = app.db().begin_write().await.unwrap();
    foodcheck::store::audit::append(tx.conn(), &ctx, &events)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

fn key(app: &TestApp) -> NoteVerifier {
    NoteVerifier::parse(&app.state.audit_key.verifier_key()).unwrap()
}

async fn integrate_and_sign(app: &TestApp) -> u64 {
    let i = ops::audit::integrate_all(app.db()).await.unwrap();
    ops::audit::checkpoint(app.db(), &app.state.audit_key)
        .await
        .unwrap();
    i.size
}

async fn verify(app: &TestApp) -> Result<foodcheck::audit::verify::Report, Break> {
    ops::audit::verify(app.db(), &key(app), &[])
        .await
        .unwrap()
        .result
}

async fn exec(app: &TestApp, sql: &str) {
    sqlx::query(sql).execute(app.db().pool()).await.unwrap();
}

/// Adds `n` entries (to whatever the app wrote itself), integrated and signed; the tree size.
async fn signed_log(app: &TestApp, n: usize) -> u64 {
    append(app, n, "e").await;
    let size = integrate_and_sign(app).await;
    assert!(size >= n as u64);
    size
}

async fn integrate_checkpoint_and_verify(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    for i in 0..3 {
        let (s, b) = app
            .post(
                "/api/v1/users",
                &admin,
                json!({"username": format!("rev{i}"), "password": "long-enough-password", "role": "reviewer", "name": "审核员"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    append(&app, 5, "a").await;
    let mut conn = app.db().acquire().await.unwrap();
    let pending = foodcheck::store::audit::pending_count(&mut conn)
        .await
        .unwrap();
    assert!(
        pending >= 8,
        "the user creations and appends are pending: {pending}"
    );
    drop(conn);
    let i = ops::audit::integrate_all(app.db()).await.unwrap();
    assert_eq!(i.added, pending);
    assert_eq!(i.size, pending);
    // Nothing new: no second integration, no second checkpoint.
    let c = ops::audit::checkpoint(app.db(), &app.state.audit_key)
        .await
        .unwrap()
        .expect("first checkpoint");
    assert_eq!(c.tree_size, i.size);
    assert_eq!(ops::audit::integrate_all(app.db()).await.unwrap().added, 0);
    assert!(ops::audit::checkpoint(app.db(), &app.state.audit_key)
        .await
        .unwrap()
        .is_none());
    let r = verify(&app).await.unwrap();
    assert_eq!(r.entries, i.size);
    assert_eq!(r.checkpoint_size, Some(i.size));
    // More entries, a second batch of integration (in small batches): still verifies.
    append(&app, 7, "b").await;
    let r1 = ops::audit::integrate(app.db(), 3).await.unwrap();
    assert_eq!(r1.added, 3);
    ops::audit::integrate_all(app.db()).await.unwrap();
    let r = verify(&app).await.unwrap();
    assert_eq!(r.entries, i.size + 7);
    // The checkpoint still covers only the older prefix until the next is signed.
    assert_eq!(r.checkpoint_size, Some(i.size));
}

async fn tamper_edit(app: TestApp) {
    let _ = signed_log(&app, 10).await;
    exec(&app, "UPDATE audit_events SET changes = '[]' WHERE seq = 4").await;
    assert_eq!(verify(&app).await, Err(Break::Edited { seq: 4 }));
}

async fn tamper_delete(app: TestApp) {
    let _ = signed_log(&app, 10).await;
    exec(&app, "DELETE FROM audit_events WHERE seq = 3").await;
    assert_eq!(verify(&app).await, Err(Break::Deleted { seq: 3, found: 4 }));
}

async fn tamper_truncate(app: TestApp) {
    let size = signed_log(&app, 10).await;
    exec(
        &app,
        &format!("DELETE FROM audit_events WHERE seq >= {}", size - 2),
    )
    .await;
    assert_eq!(
        verify(&app).await,
        Err(Break::Truncated {
            seq: size - 2,
            checkpoint_size: size
        })
    );
}

async fn tamper_reorder(app: TestApp) {
    let _ = signed_log(&app, 10).await;
    // Swap the places of two rows (everything but their position moves).
    exec(&app, "UPDATE audit_events SET seq = -1 WHERE seq = 2").await;
    exec(&app, "UPDATE audit_events SET seq = 2 WHERE seq = 5").await;
    exec(&app, "UPDATE audit_events SET seq = 5 WHERE seq = -1").await;
    assert_eq!(verify(&app).await, Err(Break::Reordered { seq: 2 }));
}

async fn tamper_swap_content(app: TestApp) {
    let _ = signed_log(&app, 10).await;
    // Swap what two rows say, leaving ids, positions and hashes in place.
    let id_of = |seq: i64| {
        let pool = app.db().pool().clone();
        async move {
            let (r,): (String,) =
                sqlx::query_as("SELECT record_id FROM audit_events WHERE seq = $1")
                    .bind(seq)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            r
        }
    };
    let (a, b) = (id_of(2).await, id_of(6).await);
    assert_ne!(a, b);
    for (seq, v) in [(2i64, &b), (6, &a)] {
        sqlx::query("UPDATE audit_events SET record_id = $1 WHERE seq = $2")
            .bind(v)
            .bind(seq)
            .execute(app.db().pool())
            .await
            .unwrap();
    }
    assert_eq!(verify(&app).await, Err(Break::Edited { seq: 2 }));
}

async fn tamper_insert(app: TestApp) {
    let _ = signed_log(&app, 10).await;
    // Make room at seq 3 and insert a well-formed entry there, chained to entry 2.
    exec(
        &app,
        "UPDATE audit_events SET seq = -(seq + 1) WHERE seq >= 3",
    )
    .await;
    exec(&app, "UPDATE audit_events SET seq = -seq WHERE seq < 0").await;
    let prev: (Vec<u8>,) = sqlx::query_as("SELECT entry_hash FROM audit_events WHERE seq = 2")
        .fetch_one(app.db().pool())
        .await
        .unwrap();
    let prev: Hash = prev.0.try_into().unwrap();
    let forged = Entry {
        seq: 3,
        id: 900_000,
        at: 1_700_000_000_000,
        actor_id: None,
        actor_role: None,
        device_id: None,
        request_id: None,
        action: "user_enabled".into(),
        record_type: "user".into(),
        record_id: "someone".into(),
        changes: "[]".into(),
    };
    let h = forged.hash(&prev);
    sqlx::query(
        "INSERT INTO audit_events (id, at, action, record_type, record_id, changes, seq, prev_hash, entry_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(forged.id)
    .bind(forged.at)
    .bind(&forged.action)
    .bind(&forged.record_type)
    .bind(&forged.record_id)
    .bind(&forged.changes)
    .bind(3i64)
    .bind(prev.to_vec())
    .bind(h.to_vec())
    .execute(app.db().pool())
    .await
    .unwrap();
    // Entry 3 itself is well-formed; the chain breaks at the entry after it.
    assert_eq!(verify(&app).await, Err(Break::Reordered { seq: 4 }));
}

async fn tamper_rewrite_all_hashes(app: TestApp) {
    let size = signed_log(&app, 10).await;
    // A careful forger edits entry 1 and recomputes every later hash: only the signed
    // checkpoint shows it.
    exec(
        &app,
        "UPDATE audit_events SET record_id = 'forged' WHERE seq = 1",
    )
    .await;
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT seq FROM audit_events ORDER BY seq")
        .fetch_all(app.db().pool())
        .await
        .unwrap();
    let mut prev = foodcheck::audit::chain::GENESIS;
    for (seq,) in rows {
        let mut conn = app.db().acquire().await.unwrap();
        let row = foodcheck::store::audit::entry_at(&mut conn, seq as u64)
            .await
            .unwrap()
            .unwrap();
        let h = row.entry(seq as u64).hash(&prev);
        sqlx::query("UPDATE audit_events SET prev_hash = $1, entry_hash = $2 WHERE seq = $3")
            .bind(prev.to_vec())
            .bind(h.to_vec())
            .bind(seq)
            .execute(&mut *conn)
            .await
            .unwrap();
        prev = h;
    }
    assert_eq!(verify(&app).await, Err(Break::CheckpointMismatch { size }));
}

/// Fetches a text endpoint without a token.
async fn public_text(app: &TestApp, path: &str) -> (StatusCode, String) {
    let res = app.client.get(app.url(path)).send().await.unwrap();
    let status = res.status();
    (status, res.text().await.unwrap())
}

fn hash(s: &Value) -> Hash {
    B64.decode(s.as_str().unwrap()).unwrap().try_into().unwrap()
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(hash).collect()
}

async fn proofs_verify_and_fail_when_altered(app: TestApp) {
    let reviewer = app.token_for("rev", Role::Reviewer).await;
    append(&app, 6, "p").await;
    let old_size = integrate_and_sign(&app).await;
    let (_, old_note) = public_text(&app, "/public/v1/audit/checkpoint").await;
    append(&app, 9, "q").await;
    let new_size = integrate_and_sign(&app).await;
    let (s, vkey) = public_text(&app, "/public/v1/audit/key").await;
    assert_eq!(s, StatusCode::OK);
    let key = NoteVerifier::parse(&vkey).unwrap();
    let (_, new_note) = public_text(&app, "/public/v1/audit/checkpoint").await;
    let new_cp = key.open_checkpoint(&new_note).unwrap();
    let old_cp = key.open_checkpoint(&old_note).unwrap();
    assert_eq!((old_cp.size, new_cp.size), (old_size, new_size));

    for entry in [0, 3, old_size, new_size - 1] {
        let (s, p) = app
            .get(&format!("/api/v1/audit/proof?entry={entry}"), &reviewer)
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(p["tree_size"], new_size);
        assert_eq!(p["checkpoint"], new_note.as_str());
        let e: Entry = serde_json::from_value(p["entry"].clone()).unwrap();
        assert_eq!(e.seq, entry);
        let h = e.hash(&hash(&p["prev_hash"]));
        assert_eq!(h, hash(&p["entry_hash"]));
        let leaf = merkle::leaf_hash(&h);
        let path = hashes(&p["proof"]);
        assert!(merkle::verify_inclusion(
            entry,
            new_size,
            &leaf,
            &path,
            &new_cp.root
        ));
        // An altered hash, an altered entry or another index fails.
        let mut bad = path.clone();
        bad[0][0] ^= 1;
        assert!(!merkle::verify_inclusion(
            entry,
            new_size,
            &leaf,
            &bad,
            &new_cp.root
        ));
        let altered = Entry {
            record_id: "other".into(),
            ..e.clone()
        };
        let bad_leaf = merkle::leaf_hash(&altered.hash(&hash(&p["prev_hash"])));
        assert!(!merkle::verify_inclusion(
            entry,
            new_size,
            &bad_leaf,
            &path,
            &new_cp.root
        ));
        assert!(!merkle::verify_inclusion(
            (entry + 1) % new_size,
            new_size,
            &leaf,
            &path,
            &new_cp.root
        ));
    }
    // A proof in an older tree, by explicit size.
    let (s, p) = app
        .get(
            &format!("/api/v1/audit/proof?entry=2&size={old_size}"),
            &reviewer,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["checkpoint"], old_note.as_str());
    let leaf = merkle::leaf_hash(&hash(&p["entry_hash"]));
    assert!(merkle::verify_inclusion(
        2,
        old_size,
        &leaf,
        &hashes(&p["proof"]),
        &old_cp.root
    ));

    let (s, c) = app
        .get(
            &format!("/api/v1/audit/consistency?from={old_size}&to={new_size}"),
            &reviewer,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["from_checkpoint"], old_note.as_str());
    let proof = hashes(&c["proof"]);
    assert!(!proof.is_empty());
    assert!(merkle::verify_consistency(
        old_size,
        new_size,
        &old_cp.root,
        &new_cp.root,
        &proof
    ));
    let mut bad = proof.clone();
    let last = bad.len() - 1;
    bad[last][3] ^= 1;
    assert!(!merkle::verify_consistency(
        old_size,
        new_size,
        &old_cp.root,
        &new_cp.root,
        &bad
    ));
    let mut other_root = old_cp.root;
    other_root[0] ^= 1;
    assert!(!merkle::verify_consistency(
        old_size,
        new_size,
        &other_root,
        &new_cp.root,
        &proof
    ));
    // `to` defaults to the latest checkpoint.
    let (_, c2) = app
        .get(
            &format!("/api/v1/audit/consistency?from={old_size}"),
            &reviewer,
        )
        .await;
    assert_eq!(c2["to"], new_size);

    // Out of range and malformed.
    let (s, b) = app
        .get(&format!("/api/v1/audit/proof?entry={new_size}"), &reviewer)
        .await;
    assert_error(s, &b, 422, "out_of_range");
    let (s, b) = app
        .get(
            &format!("/api/v1/audit/proof?entry=0&size={}", new_size + 1),
            &reviewer,
        )
        .await;
    assert_error(s, &b, 422, "out_of_range");
    let (s, b) = app.get("/api/v1/audit/proof?entry=-1", &reviewer).await;
    assert_error(s, &b, 400, "bad_request");
    let (s, b) = app.get("/api/v1/audit/proof", &reviewer).await;
    assert_error(s, &b, 400, "bad_request");
    let (s, b) = app.get("/api/v1/audit/consistency?from=0", &reviewer).await;
    assert_error(s, &b, 422, "out_of_range");
    let (s, b) = app
        .get(
            &format!("/api/v1/audit/consistency?from={new_size}&to={old_size}"),
            &reviewer,
        )
        .await;
    assert_error(s, &b, 422, "out_of_range");
}

async fn nothing_signed_yet(app: TestApp) {
    let reviewer = app.token_for("rev", Role::Reviewer).await;
    let (s, b) = app.get("/api/v1/audit/proof?entry=0", &reviewer).await;
    assert_error(s, &b, 409, "no_checkpoint");
    let (s, b) = app.get("/api/v1/audit/consistency?from=1", &reviewer).await;
    assert_error(s, &b, 409, "no_checkpoint");
    let (s, b) = app
        .call(
            reqwest::Method::GET,
            "/public/v1/audit/checkpoint",
            None,
            None,
        )
        .await;
    assert_error(s, &b, 404, "not_found");
}

async fn public_checkpoint_has_no_personal_data(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let (s, created) = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "zhangsan", "password": "long-enough-password", "role": "inspector",
                   "name": "张三", "badge_no": "TJ-99887", "phone": "13912345678"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let size = integrate_and_sign(&app).await;
    let (s, note) = public_text(&app, "/public/v1/audit/checkpoint").await;
    assert_eq!(s, StatusCode::OK);
    let res = app
        .client
        .get(app.url("/public/v1/audit/checkpoint"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let j: Value = res.json().await.unwrap();
    assert_eq!(j["tree_size"], size);
    assert_eq!(j["note"], note.as_str());
    let cp = key(&app).open_checkpoint(&note).unwrap();
    assert_eq!(cp.size, size);
    // The note: origin, size, root, time, a blank line, one signature line; nothing else.
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(lines.len(), 6, "{note}");
    assert_eq!(lines[0], "foodcheck/audit");
    assert!(lines[3].starts_with("time "));
    assert!(lines[5].starts_with("\u{2014} foodcheck/audit "));
    let all = format!("{note}{j}");
    let user_id = created["id"].as_str().unwrap();
    for personal in [
        "zhangsan",
        "张三",
        "TJ-99887",
        "13912345678",
        user_id,
        "admin",
    ] {
        assert!(
            !all.contains(personal),
            "{personal} in the public checkpoint: {all}"
        );
    }
}

async fn roles_of_every_audit_endpoint(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let reviewer = app.token_for("rev", Role::Reviewer).await;
    let inspector = app.token_for("insp", Role::Inspector).await;
    let lab = app.token_for("lab", Role::Lab).await;
    append(&app, 3, "r").await;
    integrate_and_sign(&app).await;
    let cases: [(&str, [u16; 5]); 4] = [
        // no token, admin, reviewer, inspector, lab
        ("/api/v1/audit", [401, 200, 403, 403, 403]),
        (
            "/api/v1/audit/records/establishment/r-1",
            [401, 200, 200, 403, 403],
        ),
        ("/api/v1/audit/proof?entry=1", [401, 200, 200, 403, 403]),
        (
            "/api/v1/audit/consistency?from=1",
            [401, 200, 200, 403, 403],
        ),
    ];
    for (path, want) in cases {
        let tokens = [
            None,
            Some(&admin),
            Some(&reviewer),
            Some(&inspector),
            Some(&lab),
        ];
        for (t, w) in tokens.iter().zip(want) {
            let (s, b) = app
                .call(reqwest::Method::GET, path, t.map(|s| s.as_str()), None)
                .await;
            assert_eq!(s.as_u16(), w, "{path} with {t:?}: {b}");
            if w >= 400 {
                assert!(b["error"]["code"].is_string(), "{b}");
            }
        }
    }
    for path in ["/public/v1/audit/checkpoint", "/public/v1/audit/key"] {
        let (s, _) = public_text(&app, path).await;
        assert_eq!(s, StatusCode::OK, "{path}");
    }
}

async fn listing_filters_and_pages(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let reviewer = app.token_for("rev", Role::Reviewer).await;
    append(&app, 5, "x").await;
    let other = Ctx::new(Actor::user("actor-2", Role::Reviewer, None), None);
    let mut tx = app.db().begin_write().await.unwrap();
    foodcheck::store::audit::append(
        tx.conn(),
        &other,
        &[Event::new(Action::PlanCreated, RecordKind::Plan, "plan-1").set("title", "第一轮")],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let (s, b) = app.get("/api/v1/audit?actor=actor-2", &admin).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let items = b["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["action"], "plan_created");
    assert_eq!(items[0]["actor_role"], "reviewer");
    assert_eq!(items[0]["changes"][0]["field"], "title");
    assert_eq!(items[0]["changes"][0]["after"], "第一轮");
    assert!(items[0]["seq"].is_null(), "pending until integrated");

    let (_, b) = app
        .get(
            "/api/v1/audit?record_type=establishment&action=establishment_updated",
            &admin,
        )
        .await;
    assert_eq!(b["items"].as_array().unwrap().len(), 5);
    let (_, b) = app
        .get(
            "/api/v1/audit?record_type=establishment&record_id=x-3",
            &admin,
        )
        .await;
    assert_eq!(b["items"].as_array().unwrap().len(), 1);
    assert_eq!(b["items"][0]["request_id"], "req-x");
    assert_eq!(b["items"][0]["device_id"], "dev-1");

    // Time range: everything is after 2000 and nothing before.
    let (_, b) = app
        .get(
            "/api/v1/audit?actor=actor-1&from=2000-01-01T00:00:00Z",
            &admin,
        )
        .await;
    assert_eq!(b["items"].as_array().unwrap().len(), 5);
    let (_, b) = app
        .get(
            "/api/v1/audit?actor=actor-1&to=2000-01-01T00:00:00%2B08:00",
            &admin,
        )
        .await;
    assert_eq!(b["items"].as_array().unwrap().len(), 0);

    // Pages of 2 over the five, newest first, without overlap.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/audit?actor=actor-1&limit=2&cursor={c}"),
            None => "/api/v1/audit?actor=actor-1&limit=2".to_string(),
        };
        let (s, b) = app.get(&path, &admin).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        for i in b["items"].as_array().unwrap() {
            seen.push(i["record_id"].as_str().unwrap().to_string());
        }
        match b["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["x-4", "x-3", "x-2", "x-1", "x-0"]);

    // A record's history, for reviewers too; the read itself is in the log.
    let (s, b) = app
        .get("/api/v1/audit/records/plan/plan-1", &reviewer)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["items"].as_array().unwrap().len(), 1);
    let (_, b) = app.get("/api/v1/audit?action=audit_log_read", &admin).await;
    let reads = b["items"].as_array().unwrap();
    assert!(reads.len() >= 2, "{b}");
    assert_eq!(reads[0]["record_id"], "plan/plan-1");
    assert_eq!(reads[0]["actor_role"], "reviewer");
    // Not colleagues' accounts and sessions, nor conflict declarations: admin only.
    for kind in ["user", "session", "conflict", "audit_log", "batch"] {
        let (s, b) = app
            .get(&format!("/api/v1/audit/records/{kind}/x-1"), &reviewer)
            .await;
        assert_error(s, &b, 403, "forbidden");
        let (s, b) = app
            .get(&format!("/api/v1/audit/records/{kind}/x-1"), &admin)
            .await;
        assert_eq!(s, StatusCode::OK, "{kind}: {b}");
    }

    // Integrated entries carry their seq and hash.
    ops::audit::integrate_all(app.db()).await.unwrap();
    let (_, b) = app.get("/api/v1/audit?actor=actor-2", &admin).await;
    assert!(b["items"][0]["seq"].is_i64());
    assert!(b["items"][0]["entry_hash"].is_string());

    // Bad input.
    for (path, status, code) in [
        ("/api/v1/audit?action=nope", 422, "validation_failed"),
        ("/api/v1/audit?record_type=nope", 422, "validation_failed"),
        ("/api/v1/audit?from=yesterday", 422, "validation_failed"),
        ("/api/v1/audit?limit=0", 422, "validation_failed"),
        ("/api/v1/audit?limit=501", 422, "validation_failed"),
        ("/api/v1/audit?cursor=abc", 400, "bad_request"),
        ("/api/v1/audit/records/nope/1", 404, "not_found"),
    ] {
        let (s, b) = app.get(path, &admin).await;
        assert_error(s, &b, status, code);
    }
}

/// The server's own loop integrates and signs with nobody asking.
async fn background_loop(app: TestApp) {
    append(&app, 4, "bg").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut conn = app.db().acquire().await.unwrap();
        let pending = foodcheck::store::audit::pending_count(&mut conn)
            .await
            .unwrap();
        let cp = foodcheck::store::audit::latest_checkpoint(&mut conn)
            .await
            .unwrap();
        drop(conn);
        if pending == 0 && cp.is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not integrated in time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(verify(&app).await.is_ok());
}

/// The binary: `audit verify` passes, then names the edited entry with exit code 1; the
/// offline tools check what the API served.
async fn cli_verify_and_offline_tools(app: TestApp) {
    let size = signed_log(&app, 8).await;
    let reviewer = app.token_for("rev", Role::Reviewer).await;
    integrate_and_sign(&app).await;
    let dir = app.dir.path().to_path_buf();
    let (_, old_note) = public_text(&app, "/public/v1/audit/checkpoint").await;
    append(&app, 5, "later").await;
    let new_size = integrate_and_sign(&app).await;
    let (_, new_note) = public_text(&app, "/public/v1/audit/checkpoint").await;
    let (_, vkey) = public_text(&app, "/public/v1/audit/key").await;
    let (_, proof) = app.get("/api/v1/audit/proof?entry=2", &reviewer).await;
    let old_size = key(&app).open_checkpoint(&old_note).unwrap().size;
    assert!(old_size >= size);
    let (_, cons) = app
        .get(
            &format!("/api/v1/audit/consistency?from={old_size}&to={new_size}"),
            &reviewer,
        )
        .await;
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().to_string()
    };
    let old_f = write("old.note", &old_note);
    let new_f = write("new.note", &new_note);
    let key_f = write("audit.vkey", &vkey);
    let proof_f = write("proof.json", &proof.to_string());
    let cons_f = write("cons.json", &cons.to_string());
    let mut forged = proof.clone();
    forged["entry"]["record_id"] = json!("forged");
    let forged_f = write("forged.json", &forged.to_string());
    let db_url = app.state.config.database_url();
    let data_dir = dir.to_string_lossy().to_string();
    let run_env = |args: Vec<String>, env: Vec<(&'static str, String)>| async move {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_foodcheck"));
        c.env_remove("RUST_LOG");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("FOODCHECK_") {
                c.env_remove(k);
            }
        }
        c.envs(env);
        let out = c.args(&args).output().await.unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let run = |args: Vec<String>| run_env(args, Vec::new());
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let db_args = |cmd: &[&str]| {
        let mut a = s(&["--data-dir", &data_dir, "--database-url", &db_url]);
        a.extend(s(cmd));
        a
    };

    let (ok, out) = run(s(&[
        "audit",
        "verify-checkpoint",
        "--checkpoint",
        &new_f,
        "--key",
        &key_f,
    ]))
    .await;
    assert!(ok, "{out}");
    assert!(out.contains(&format!("for {new_size} entries")), "{out}");
    let (ok, out) = run(s(&[
        "audit",
        "verify-checkpoint",
        "--checkpoint",
        &new_f,
        "--key",
        vkey.trim(),
    ]))
    .await;
    assert!(ok, "{out}");
    let tampered_note = write(
        "bad.note",
        &new_note.replacen(&format!("\n{new_size}\n"), "\n1\n", 1),
    );
    let (ok, out) = run(s(&[
        "audit",
        "verify-checkpoint",
        "--checkpoint",
        &tampered_note,
        "--key",
        &key_f,
    ]))
    .await;
    assert!(!ok, "{out}");

    let (ok, out) = run(s(&[
        "audit",
        "verify-inclusion",
        "--proof",
        &proof_f,
        "--key",
        &key_f,
    ]))
    .await;
    assert!(ok, "{out}");
    let (ok, out) = run(s(&[
        "audit",
        "verify-inclusion",
        "--proof",
        &forged_f,
        "--key",
        &key_f,
    ]))
    .await;
    assert!(!ok, "{out}");
    assert!(out.contains("entry 2"), "{out}");

    let (ok, out) = run(s(&[
        "audit",
        "verify-consistency",
        "--old",
        &old_f,
        "--new",
        &new_f,
        "--proof",
        &cons_f,
        "--key",
        &key_f,
    ]))
    .await;
    assert!(ok, "{out}");
    let (ok, out) = run(s(&[
        "audit",
        "verify-consistency",
        "--old",
        &new_f,
        "--new",
        &old_f,
        "--proof",
        &cons_f,
        "--key",
        &key_f,
    ]))
    .await;
    assert!(!ok, "{out}");

    let (ok, out) = run(db_args(&["audit", "key"])).await;
    assert!(ok, "{out}");
    assert_eq!(out.trim(), vkey.trim());
    let (ok, out) = run(db_args(&["audit", "verify"])).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("OK: {new_size} entries verified")),
        "{out}"
    );
    // An older checkpoint the auditor kept is checked too.
    let (ok, out) = run(db_args(&["audit", "verify", "--checkpoint", &old_f])).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "checkpoints of {old_size}, {new_size} entries match"
        )),
        "{out}"
    );
    let (ok, out) = run(db_args(&[
        "audit",
        "verify",
        "--checkpoint",
        &tampered_note,
    ]))
    .await;
    assert!(!ok, "{out}");
    assert!(out.contains("checkpoint is not valid"), "{out}");

    // A new signing key: written 0600, never overwritten, its verifier key printed.
    let key_path = dir.join("new-signing.key");
    let key_arg = key_path.to_string_lossy().to_string();
    let (ok, out) = run(db_args(&["audit", "key", "--generate", &key_arg])).await;
    assert!(ok, "{out}");
    let printed = out.lines().next().unwrap().trim().to_string();
    NoteVerifier::parse(&printed).expect("a verifier key");
    assert_ne!(printed, vkey.trim(), "a new key, not the installation's");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let written = std::fs::read_to_string(&key_path).unwrap();
    let (ok, out) = run(db_args(&["audit", "key", "--generate", &key_arg])).await;
    assert!(!ok && out.contains("not overwriting"), "{out}");
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), written);
    // The installation signs with it once configured, and prints the same verifier key.
    let (ok, out) = run_env(
        db_args(&["audit", "key"]),
        vec![("FOODCHECK_AUDIT_SIGNING_KEY_FILE", key_arg.clone())],
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(out.trim(), printed);

    exec(&app, "UPDATE audit_events SET at = at + 1 WHERE seq = 5").await;
    let (ok, out) = run(db_args(&["audit", "verify"])).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("entry 5: its content does not match its hash"),
        "{out}"
    );
    // `audit checkpoint` integrates and signs.
    append(&app, 2, "cli").await;
    let (ok, out) = run(db_args(&["audit", "checkpoint"])).await;
    assert!(ok, "{out}");
    assert!(out.contains(&format!("\n{}\n", new_size + 2)), "{out}");
}

both_backends!(@spawn quiet;
    integrate_checkpoint_and_verify,
    proofs_verify_and_fail_when_altered,
    nothing_signed_yet,
    public_checkpoint_has_no_personal_data,
    roles_of_every_audit_endpoint,
    listing_filters_and_pages,
    tamper_edit,
    tamper_delete,
    tamper_truncate,
    tamper_reorder,
    tamper_swap_content,
    tamper_insert,
    tamper_rewrite_all_hashes,
    cli_verify_and_offline_tools,
);

/// With the server's own integrator running (every 50 ms).
mod looping {
    use super::*;

    pub async fn looping(kind: Kind) -> TestApp {
        TestApp::spawn_with(kind, |c| c.audit_integrate_interval_ms = 50).await
    }

    async fn background_loop(app: TestApp) {
        super::background_loop(app).await
    }

    both_backends!(@spawn looping; background_loop);
}
