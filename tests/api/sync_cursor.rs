//! The sync cursor under concurrency (issue 14): a pull never gives out a cursor past a change
//! that commits later with a lower position, concurrent pushes on the same records apply once,
//! and many devices syncing at once all end with exactly the server's records.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use foodcheck::auth::Role;
use foodcheck::store::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{assert_error, TestApp};
use crate::sync::{answer, inspection, pull, push, world, World, GENERAL, KEY};

both_backends!(
    a_change_held_behind_a_later_commit_is_not_skipped,
    concurrent_edits_of_one_inspection_apply_once,
    many_devices_end_with_exactly_the_servers_records,
    restored_positions_stay_above_the_stored_ones,
);

fn cursor(p: &Value) -> i64 {
    p["timestamp"].as_i64().expect("a pull's timestamp")
}

fn records<'a>(p: &'a Value, table: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    ["created", "updated"]
        .into_iter()
        .flat_map(move |k| p["changes"][table][k].as_array().into_iter().flatten())
}

/// A write transaction that took its position before a later push, still open while the push
/// commits and a pull runs: the pull's cursor must stay below the held change, so the pull after
/// its commit brings it. (With the largest visible position as the cursor, the held change
/// would be skipped for good.) SQLite has one writer at a time: nothing can commit behind
/// another, so there the test only checks the plain sequence.
async fn a_change_held_behind_a_later_commit_is_not_skipped(app: TestApp) {
    let w = world(app).await;
    let (task, est, members) = w.tasks[0].clone();
    let t = w.device(&members[0], "phone").await;
    let (s, first) = pull(&w.app, &t, None, 5).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let c0 = cursor(&first);
    let iid = Uuid::new_v4().to_string();
    let rec = inspection(&iid, &task, &est, &w.team_json(0));

    let mut held = None;
    if w.app.backend() == Backend::Postgres {
        // A registry edit of the task's establishment, its position taken now, not committed.
        let mut tx = w.app.db().pool().begin().await.unwrap();
        let seq = foodcheck::store::sync::next_seq(&mut tx).await.unwrap();
        sqlx::query("UPDATE establishments SET sign_name = '改名后', seq = $1 WHERE id = $2")
            .bind(seq)
            .bind(&est)
            .execute(&mut *tx)
            .await
            .unwrap();
        held = Some((tx, seq));
    }
    // A later push commits meanwhile (a higher position).
    let (s, r) = push(&w.app, &t, c0, json!({"inspections": {"created": [rec]}})).await;
    assert_eq!((s, &r), (StatusCode::OK, &json!({})));
    let (s, p1) = pull(&w.app, &t, Some(c0), 5).await;
    assert_eq!(s, StatusCode::OK, "{p1}");
    let c1 = cursor(&p1);
    let mut seen_inspection = records(&p1, "inspections").any(|r| r["id"] == iid.as_str());
    let mut seen_rename = records(&p1, "establishments").any(|r| r["sign_name"] == "改名后");
    if let Some((tx, seq)) = held {
        // Below the held change's position: the push's inspection (above it) waits too.
        assert!(c1 < seq, "cursor {c1} is past the open change at {seq}");
        assert!(!seen_rename && !seen_inspection, "{p1}");
        tx.commit().await.unwrap();
    }
    let (s, p2) = pull(&w.app, &t, Some(c1), 5).await;
    assert_eq!(s, StatusCode::OK, "{p2}");
    seen_inspection |= records(&p2, "inspections").any(|r| r["id"] == iid.as_str());
    seen_rename |= records(&p2, "establishments").any(|r| r["sign_name"] == "改名后");
    assert!(
        seen_inspection,
        "the pushed inspection never arrived: {p1} {p2}"
    );
    if w.app.backend() == Backend::Postgres {
        assert!(seen_rename, "the held change was skipped: {p1} {p2}");
    }
    // Nothing repeats: the next pull is empty.
    let (_, p3) = pull(&w.app, &t, Some(cursor(&p2)), 5).await;
    assert_eq!(records(&p3, "inspections").count(), 0, "{p3}");
    assert_eq!(records(&p3, "establishments").count(), 0, "{p3}");
}

/// Two teammates push different edits of one inspection at once, both from the same cursor:
/// exactly one applies, the other gets 409 and nothing of it is applied.
async fn concurrent_edits_of_one_inspection_apply_once(app: TestApp) {
    let w = world(app).await;
    let (task, est, members) = w.tasks[0].clone();
    let a = w.device(&members[0], "a").await;
    let b = w.device(&members[1], "b").await;
    let (_, p) = pull(&w.app, &a, None, 5).await;
    let iid = Uuid::new_v4().to_string();
    let rec = inspection(&iid, &task, &est, &w.team_json(0));
    let (s, r) = push(
        &w.app,
        &a,
        cursor(&p),
        json!({"inspections": {"created": [rec.clone()]}, "answers": {"created": [answer(&iid, KEY[0], "pass")]}}),
    )
    .await;
    assert_eq!((s, &r), (StatusCode::OK, &json!({})));
    for round in 0..4 {
        let (_, pa) = pull(&w.app, &a, None, 5).await;
        let (_, pb) = pull(&w.app, &b, None, 5).await;
        let c = cursor(&pa).min(cursor(&pb));
        let mut ra = rec.clone();
        ra["other_findings"] = json!(format!("A{round}"));
        let mut rb = rec.clone();
        rb["other_findings"] = json!(format!("B{round}"));
        let note = |who: &str| {
            let mut x = answer(&iid, KEY[0], "fail");
            x["note"] = json!(format!("{who}{round}"));
            x
        };
        let (x, y) = tokio::join!(
            push(
                &w.app,
                &a,
                c,
                json!({"inspections": {"updated": [ra]}, "answers": {"updated": [note("A")]}})
            ),
            push(
                &w.app,
                &b,
                c,
                json!({"inspections": {"updated": [rb]}, "answers": {"updated": [note("B")]}})
            ),
        );
        let ok: Vec<&str> = [(&x, "A"), (&y, "B")]
            .into_iter()
            .filter(|((s, _), _)| *s == StatusCode::OK)
            .map(|(_, who)| who)
            .collect();
        assert_eq!(ok.len(), 1, "exactly one applies: {x:?} {y:?}");
        let loser = if ok[0] == "A" { &y } else { &x };
        assert_error(loser.0, &loser.1, 409, "sync_conflict");
        let (found, note): (Option<String>, Option<String>) = sqlx::query_as(
            "SELECT i.other_findings, a.note FROM inspections i JOIN answers a ON a.inspection_id = i.id WHERE i.id = $1",
        )
        .bind(&iid)
        .fetch_one(w.app.db().pool())
        .await
        .unwrap();
        let want = format!("{}{round}", ok[0]);
        assert_eq!(
            (found.as_deref(), note.as_deref()),
            (Some(want.as_str()), Some(want.as_str()))
        );
    }
}

/// PostgreSQL: positions are transaction ids plus an offset. A database restored into another
/// cluster may find its transaction ids behind the stored positions; at startup the offset is
/// raised so every new position is above every stored one. (SQLite keeps its counter.)
async fn restored_positions_stay_above_the_stored_ones(app: TestApp) {
    let w = world(app).await;
    let (task, est, members) = w.tasks[0].clone();
    let t = w.device(&members[0], "phone").await;
    let (_, p) = pull(&w.app, &t, None, 5).await;
    let c0 = cursor(&p);
    let pool = w.app.db().pool().clone();
    let far = if w.app.backend() == Backend::Postgres {
        // As if restored: a position far above this cluster's transaction ids, and an offset
        // too low for it.
        let (xid,): (i64,) = sqlx::query_as("SELECT pg_current_xact_id()::text::bigint")
            .fetch_one(&pool)
            .await
            .unwrap();
        let far = xid + 1_000_000;
        sqlx::query("UPDATE tasks SET seq = $1 WHERE id = $2")
            .bind(far)
            .bind(&task)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("UPDATE sync_xid_offset SET value = 0")
            .execute(&pool)
            .await
            .unwrap();
        far
    } else {
        c0
    };
    let team = w.team_json(0);
    let app = w.app.restart().await;
    let pool = app.db().pool().clone();
    let t = app.login_full(&members[0], "phone").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let iid = Uuid::new_v4().to_string();
    let (s, r) = push(
        &app,
        &t,
        c0,
        json!({"inspections": {"created": [inspection(&iid, &task, &est, &team)]}}),
    )
    .await;
    assert_eq!((s, &r), (StatusCode::OK, &json!({})));
    let (seq,): (i64,) = sqlx::query_as("SELECT seq FROM inspections WHERE id = $1")
        .bind(&iid)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        seq > far,
        "new position {seq} is not above the stored {far}"
    );
    // The device gets both (the task at its restored position, the new inspection), once.
    let (_, p1) = pull(&app, &t, Some(c0), 5).await;
    assert!(cursor(&p1) >= seq, "{p1}");
    assert!(
        records(&p1, "inspections").any(|r| r["id"] == iid.as_str()),
        "{p1}"
    );
    if app.backend() == Backend::Postgres {
        assert!(
            records(&p1, "tasks").any(|r| r["id"] == task.as_str()),
            "{p1}"
        );
    }
    let (_, p2) = pull(&app, &t, Some(cursor(&p1)), 5).await;
    assert_eq!(
        records(&p2, "inspections").count() + records(&p2, "tasks").count(),
        0,
        "{p2}"
    );
}

// ---- The concurrency proof ------------------------------------------------------------------

/// A device as the WatermelonDB client keeps it: the records pulled (by table and id), its
/// cursor, and counters of what happened.
struct Device {
    token: String,
    user_id: String,
    label: String,
    /// Indices into `World::tasks` of the user's tasks.
    tasks: Vec<usize>,
    held: HashMap<(String, String), Value>,
    cursor: Option<i64>,
}

const TABLES: [&str; 4] = ["tasks", "inspections", "answers", "reviews"];

impl Device {
    /// Pulls once and applies the answer; returns how many records it changed.
    async fn pull(&mut self, app: &TestApp) -> usize {
        let (s, p) = pull(app, &self.token, self.cursor, 5).await;
        assert_eq!(s, StatusCode::OK, "{}: {p}", self.label);
        let mut n = 0;
        for table in TABLES {
            let c = &p["changes"][table];
            for r in c["created"].as_array().unwrap() {
                let key = (table.to_string(), r["id"].as_str().unwrap().to_string());
                // Created means new to this device: never one it holds.
                assert!(
                    !self.held.contains_key(&key),
                    "{}: {key:?} created again (cursor {:?})",
                    self.label,
                    self.cursor
                );
                self.held.insert(key, r.clone());
                n += 1;
            }
            for r in c["updated"].as_array().unwrap() {
                let key = (table.to_string(), r["id"].as_str().unwrap().to_string());
                self.held.insert(key, r.clone());
                n += 1;
            }
            for id in c["deleted"].as_array().unwrap() {
                self.held
                    .remove(&(table.to_string(), id.as_str().unwrap().to_string()));
                n += 1;
            }
        }
        let next = cursor(&p);
        if let Some(c) = self.cursor {
            assert!(
                next >= c,
                "{}: the cursor went back from {c} to {next}",
                self.label
            );
        }
        self.cursor = Some(next);
        n
    }
}

/// What became of a device's pushes.
struct Outcome {
    conflicts: usize,
    applied: usize,
}

/// What a device does in `round`: edits the shared inspection of one of its tasks (teammates
/// edit the same one: its id follows from the task), some of its answers, now and then deletes
/// one, or submits it whole; built from what the device holds, as the app's records are.
fn changes(w: &World, d: &Device, round: usize) -> Value {
    let ti = d.tasks[round % d.tasks.len()];
    let (task, est, _) = &w.tasks[ti];
    let iid = Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("insp:{task}").as_bytes()).to_string();
    let key = ("inspections".to_string(), iid.clone());
    let held = d.held.get(&key);
    let mut rec = inspection(&iid, task, est, &w.team_json(ti));
    if let Some(h) = held {
        for f in [
            "started_at",
            "representative_name",
            "business_opinion",
            "declared_result",
        ] {
            rec[f] = h[f].clone();
        }
    }
    rec["other_findings"] = json!(format!("{}-{round}", d.label));
    let items: Vec<&str> = KEY.iter().chain(GENERAL.iter()).copied().collect();
    let mut answers: Vec<Value> = Vec::new();
    let mut deleted: Vec<Value> = Vec::new();
    if round % 4 == 3 {
        // Submitted whole: every item answered (the server checks coverage and the team).
        rec["submitted"] = json!(true);
        answers.extend(items.iter().map(|c| answer(&iid, c, "pass")));
    } else {
        for k in 0..3 {
            let item = items[(round * 3 + k + d.label.len()) % items.len()];
            let mut a = answer(
                &iid,
                item,
                if (round + k) % 2 == 0 { "pass" } else { "fail" },
            );
            a["note"] = json!(format!("{}-{round}-{k}", d.label));
            answers.push(a);
        }
        if round % 5 == 2 {
            let item = items[(round + 1) % items.len()];
            let id = answer(&iid, item, "pass")["id"].clone();
            if !answers.iter().any(|a| a["id"] == id) {
                deleted.push(id);
            }
        }
    }
    let bucket = if held.is_some() { "updated" } else { "created" };
    json!({
        "inspections": {bucket: [rec]},
        "answers": {"updated": answers, "deleted": deleted},
    })
}

/// A device's life: pull, change, push; a 409 is answered as the app does, by pulling and
/// pushing its (rebuilt) changes again.
async fn run_device(w: &World, d: &mut Device, rounds: usize) -> Outcome {
    let mut out = Outcome {
        conflicts: 0,
        applied: 0,
    };
    for round in 0..rounds {
        d.pull(&w.app).await;
        let mut attempt = 0;
        loop {
            let body = changes(w, d, round);
            let (s, r) = push(&w.app, &d.token, d.cursor.unwrap(), body).await;
            match s {
                StatusCode::OK => {
                    // Refused records (e.g. an inspection under review) are discarded: the
                    // device keeps the server's version it pulled.
                    out.applied += 1;
                    break;
                }
                StatusCode::CONFLICT => {
                    assert_error(s, &r, 409, "sync_conflict");
                    out.conflicts += 1;
                    attempt += 1;
                    assert!(attempt < 30, "{}: no push got through", d.label);
                    d.pull(&w.app).await;
                }
                _ => panic!("{}: push answered {s}: {r}", d.label),
            }
        }
    }
    out
}

/// Reviews: returns every submitted inspection it finds, until told to stop.
async fn run_reviewer(w: &World, token: &str, stop: &AtomicBool, decided: &AtomicUsize) {
    let pool = w.app.db().pool().clone();
    while !stop.load(Ordering::SeqCst) {
        let submitted: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM inspections WHERE review_state = 'submitted'")
                .fetch_all(&pool)
                .await
                .unwrap();
        for (id,) in submitted {
            let (s, v) = w
                .app
                .post(
                    &format!("/api/v1/inspections/{id}/review"),
                    token,
                    json!({"decision": "returned", "comment": "再看看"}),
                )
                .await;
            // A concurrent push may be mid-way; either the decision applies or it is told why not.
            assert!(
                s == StatusCode::OK || s == StatusCode::CREATED || s == StatusCode::CONFLICT,
                "review answered {s}: {v}"
            );
            if s.is_success() {
                decided.fetch_add(1, Ordering::SeqCst);
            }
        }
        // Pacing only (correctness never depends on it): let the devices get on.
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
    }
}

/// id, other_findings, submitted, review_state, review_round.
type InspectionFields = (String, Option<String>, i64, Option<String>, i64);

/// What the server holds in the user's scope, as the devices compare it: (table, id) → fields.
async fn server_view(app: &TestApp, user: &str) -> HashMap<(String, String), Vec<Value>> {
    let pool = app.db().pool();
    let mut out = HashMap::new();
    let tasks: Vec<(String, String)> = sqlx::query_as(
        "SELECT t.id, t.state FROM tasks t JOIN task_members tm ON tm.task_id = t.id WHERE tm.inspector_id = $1",
    )
    .bind(user)
    .fetch_all(pool)
    .await
    .unwrap();
    for (id, state) in tasks {
        out.insert(("tasks".into(), id), vec![json!(state)]);
    }
    let insp: Vec<InspectionFields> = sqlx::query_as(
        "SELECT i.id, i.other_findings, i.submitted, i.review_state, i.review_round FROM inspections i \
         JOIN task_members tm ON tm.task_id = i.task_id WHERE tm.inspector_id = $1",
    )
    .bind(user)
    .fetch_all(pool)
    .await
    .unwrap();
    for (id, findings, submitted, state, round) in insp {
        out.insert(
            ("inspections".into(), id),
            vec![
                json!(findings),
                json!(submitted != 0),
                json!(state),
                json!(round),
            ],
        );
    }
    let answers: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT a.id, a.inspection_id, a.status, a.note FROM answers a JOIN inspections i ON i.id = a.inspection_id \
         JOIN task_members tm ON tm.task_id = i.task_id WHERE tm.inspector_id = $1",
    )
    .bind(user)
    .fetch_all(pool)
    .await
    .unwrap();
    for (id, insp, status, note) in answers {
        out.insert(
            ("answers".into(), id),
            vec![json!(insp), json!(status), json!(note)],
        );
    }
    let reviews: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT r.id, r.inspection_id, r.decision FROM reviews r JOIN inspections i ON i.id = r.inspection_id \
         JOIN task_members tm ON tm.task_id = i.task_id WHERE tm.inspector_id = $1",
    )
    .bind(user)
    .fetch_all(pool)
    .await
    .unwrap();
    for (id, insp, decision) in reviews {
        out.insert(("reviews".into(), id), vec![json!(insp), json!(decision)]);
    }
    out
}

/// The same fields of what a device holds.
fn device_view(d: &Device) -> HashMap<(String, String), Vec<Value>> {
    d.held
        .iter()
        .map(|((table, id), r)| {
            let fields = match table.as_str() {
                "tasks" => vec![r["state"].clone()],
                "inspections" => vec![
                    r["other_findings"].clone(),
                    r["submitted"].clone(),
                    r["review_state"].clone(),
                    r["review_round"].clone(),
                ],
                "answers" => vec![
                    r["inspection_id"].clone(),
                    r["status"].clone(),
                    r["note"].clone(),
                ],
                _ => vec![r["inspection_id"].clone(), r["decision"].clone()],
            };
            ((table.clone(), id.clone()), fields)
        })
        .collect()
}

/// Many devices of several teams push and pull at once — teammates editing the same
/// inspections and answers, pushes from stale cursors answered 409 and retried, submissions
/// returned by a reviewer in between — and at the end every device, having pulled until
/// quiet, holds exactly the server's records in its scope, field by field.
async fn many_devices_end_with_exactly_the_servers_records(app: TestApp) {
    let w = world(app).await;
    let reviewer = w.app.token_for("reviewer", Role::Reviewer).await;
    let mut devices = Vec::new();
    for (name, user_id) in &w.inspectors {
        let tasks: Vec<usize> = (0..w.tasks.len())
            .filter(|&i| w.tasks[i].2.contains(name))
            .collect();
        assert!(!tasks.is_empty());
        for k in 0..2 {
            let label = format!("{name}.d{k}");
            devices.push(Device {
                token: w.device(name, &label).await,
                user_id: user_id.clone(),
                label,
                tasks: tasks.clone(),
                held: HashMap::new(),
                cursor: None,
            });
        }
    }
    const ROUNDS: usize = 10;
    let stop = AtomicBool::new(false);
    let decided = AtomicUsize::new(0);
    let (outcomes, ()) = tokio::join!(
        async {
            let out =
                futures::future::join_all(devices.iter_mut().map(|d| run_device(&w, d, ROUNDS)))
                    .await;
            stop.store(true, Ordering::SeqCst);
            out
        },
        run_reviewer(&w, &reviewer, &stop, &decided),
    );
    let conflicts: usize = outcomes.iter().map(|o| o.conflicts).sum();
    let applied: usize = outcomes.iter().map(|o| o.applied).sum();
    assert_eq!(applied, devices.len() * ROUNDS);
    // Teammates pushed the same records from the same cursors: some of it was refused as stale.
    assert!(conflicts > 0, "no push ever conflicted");
    assert!(
        decided.load(Ordering::SeqCst) > 0,
        "no submission was reviewed"
    );
    // Quiet: every device pulls until nothing changes, then compares.
    let mut pulled_users = HashSet::new();
    for d in &mut devices {
        let mut n = 0;
        while d.pull(&w.app).await > 0 {
            n += 1;
            assert!(n < 10, "{}: pulls never settle", d.label);
        }
        let want = server_view(&w.app, &d.user_id).await;
        let have = device_view(d);
        let mut missing: Vec<_> = want.keys().filter(|k| !have.contains_key(*k)).collect();
        let mut extra: Vec<_> = have.keys().filter(|k| !want.contains_key(*k)).collect();
        missing.sort();
        extra.sort();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: missing {missing:?}, extra {extra:?}",
            d.label
        );
        for (k, v) in &want {
            assert_eq!(&have[k], v, "{}: {k:?} differs from the server's", d.label);
        }
        pulled_users.insert(d.user_id.clone());
    }
    assert_eq!(pulled_users.len(), w.inspectors.len());
    let (inspections,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM inspections")
        .fetch_one(w.app.db().pool())
        .await
        .unwrap();
    assert_eq!(inspections as usize, w.tasks.len());
    eprintln!(
        "{:?}: {applied} pushes applied, {conflicts} conflicts retried, {} reviews",
        w.app.backend(),
        decided.load(Ordering::SeqCst)
    );
}
