//! 抽样单, custody events and sampling tasks through offline sync (schema 6): a sample created offline and
//! pushed with its custody events, replays (lost responses, records pulled back) changing
//! nothing, scope (the other sampler's device gets it, an outsider's does not), hostile pushes
//! refused per record with the online routes' codes, and all-or-nothing pushes (a refused
//! 抽样单 leaves nothing, even when it was refused after its first writes); sampling tasks pulled
//! by their team's samplers only, deleted from a sampler's device when they leave the team and
//! new to one who joins, read-only on the device; a synced 抽样单 naming its task, checked
//! against it as online.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::TestApp;
use crate::sampling::{march_2_2026, world, World};

both_backends!(
    an_offline_sample_and_its_custody_sync_once,
    the_samplers_devices_pull_it_and_nobody_else,
    hostile_sample_pushes_are_refused_per_record,
    custody_pushes_cannot_reorder_or_edit_the_chain,
    a_push_is_all_or_nothing,
    racing_pushes_cannot_share_a_national_number,
    an_upgrade_to_schema_6_pulls_the_samples_as_new,
    sampling_tasks_reach_their_samplers_and_follow_team_changes,
    a_synced_sample_names_its_sampling_task,
);

const HOUR: i64 = 3_600_000;

pub(crate) async fn pull(app: &TestApp, token: &str, last: Option<i64>, version: u32) -> Value {
    let last = last.map(|l| l.to_string()).unwrap_or_else(|| "null".into());
    let (s, v) = app
        .get(
            &format!("/api/v1/sync?last_pulled_at={last}&schema_version={version}&migration=null"),
            token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

pub(crate) async fn push(
    app: &TestApp,
    token: &str,
    last: i64,
    changes: Value,
) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/sync?last_pulled_at={last}"),
        token,
        json!({"changes": changes}),
    )
    .await
}

/// A push that must apply entirely.
pub(crate) async fn push_ok(app: &TestApp, token: &str, last: i64, changes: Value) {
    let (s, v) = push(app, token, last, changes).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({}), "nothing refused");
}

/// (table, id, code) of each refused record of a 200 push.
pub(crate) async fn refused(
    app: &TestApp,
    token: &str,
    last: i64,
    changes: Value,
) -> Vec<(String, String, String)> {
    let (s, v) = push(app, token, last, changes).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut out: Vec<(String, String, String)> = v["rejected"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|r| {
            (
                r["table"].as_str().unwrap().to_string(),
                r["id"].as_str().unwrap().to_string(),
                r["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    // WatermelonDB's own list agrees.
    for (table, id, _) in &out {
        assert!(
            v["experimentalRejectedIds"][table]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == id),
            "{v}"
        );
    }
    out
}

fn rejection<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["rejected"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == id))
        .unwrap_or_else(|| panic!("{id} not refused: {v}"))
}

pub(crate) fn ids(pull: &Value, table: &str, kind: &str) -> Vec<String> {
    let mut v: Vec<String> = pull["changes"][table][kind]
        .as_array()
        .unwrap_or_else(|| panic!("no {table}.{kind} in {pull}"))
        .iter()
        .map(|r| r.as_str().or_else(|| r["id"].as_str()).unwrap().to_string())
        .collect();
    v.sort();
    v
}

pub(crate) fn record<'a>(pull: &'a Value, table: &str, id: &str) -> &'a Value {
    ["created", "updated"]
        .iter()
        .flat_map(|k| pull["changes"][table][k].as_array().unwrap().iter())
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{table} {id} not pulled: {pull}"))
}

pub(crate) fn cursor(pull: &Value) -> i64 {
    pull["timestamp"].as_i64().unwrap()
}

/// The `samples` sync record of the world's complete 抽样单: one flat record, a column per
/// form field, as a WatermelonDB app sends it (with `_status`/`_changed`, and the server's
/// columns as the device holds them: null).
pub(crate) fn sample_rec(w: &World, id: &str, at: i64) -> Value {
    let body = w.sample(id, at);
    let mut rec = body["form"].as_object().unwrap().clone();
    for k in ["id", "establishment_id", "lab_id", "category_code"] {
        rec.insert(k.into(), body[k].clone());
    }
    rec.insert("_status".into(), json!("created"));
    rec.insert("_changed".into(), json!(""));
    rec.insert("sample_no".into(), Value::Null);
    rec.insert("state".into(), Value::Null);
    rec.insert("seal_broken".into(), json!(false));
    Value::Object(rec)
}

pub(crate) fn custody_rec(id: &str, sample: &str, kind: &str, at: i64) -> Value {
    json!({"id": id, "sample_id": sample, "kind": kind, "occurred_at": at, "place": "老王粮油店",
           "note": null, "sample_condition": null, "seal_intact": null,
           "actor_id": null, "actor_role": null, "recorded_at": null,
           "_status": "created", "_changed": ""})
}

pub(crate) fn changes(samples: Vec<Value>, custody: Vec<Value>) -> Value {
    json!({"samples": {"created": samples, "updated": [], "deleted": []},
           "custody_events": {"created": custody, "updated": [], "deleted": []}})
}

async fn sample_of(w: &World, token: &str, id: &str) -> (StatusCode, Value) {
    w.app.get(&format!("/api/v1/samples/{id}"), token).await
}

/// Lab A's samples: what the server holds, however many pushes.
async fn lab_total(w: &World) -> i64 {
    let (s, v) = w.app.get("/api/v1/lab/samples", &w.lab_a).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["total_count"].as_i64().unwrap()
}

async fn an_offline_sample_and_its_custody_sync_once(app: TestApp) {
    let w = world(app).await;
    let at = march_2_2026();
    let first = pull(&w.app, &w.insp1, None, 6).await;
    assert_eq!(ids(&first, "samples", "created"), Vec::<String>::new());
    let t0 = cursor(&first);

    let id = Uuid::new_v4().to_string();
    let (sealed, dispatched) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    // Listed in the wrong order on purpose: a push applies a sample's events in custody order.
    let offline = changes(
        vec![sample_rec(&w, &id, at)],
        vec![
            custody_rec(&dispatched, &id, "dispatched", at + HOUR),
            custody_rec(&sealed, &id, "sealed", at),
        ],
    );
    push_ok(&w.app, &w.insp1, t0, offline.clone()).await;
    let (s, stored) = sample_of(&w, &w.insp1, &id).await;
    assert_eq!(s, StatusCode::OK, "{stored}");
    let no = stored["sample_no"].as_str().unwrap().to_string();
    assert!(no.starts_with("FC-"), "a generated number: {no}");
    assert_eq!(stored["state"], "dispatched");
    assert_eq!(stored["samplers"], json!([w.insp1_id, w.insp2_id]));
    assert_eq!(
        stored["form"]["stage"], "circulation",
        "the label is stored as its code"
    );
    let kinds: Vec<&str> = stored["custody"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["sealed", "dispatched"]);
    assert_eq!(stored["custody"][0]["actor_id"], w.insp1_id.as_str());
    assert_eq!(stored["deadlines"][0]["rule"], "delivery", "{stored}");

    // The response was lost: the same push again changes nothing and gets no new number.
    push_ok(&w.app, &w.insp1, t0, offline).await;
    let (_, again) = sample_of(&w, &w.insp1, &id).await;
    assert_eq!(again["sample_no"], no.as_str());
    assert_eq!(again["custody"], stored["custody"]);
    assert_eq!(lab_total(&w).await, 1);

    // The pushing device gets its own records back as updates, with the server's columns.
    let back = pull(&w.app, &w.insp1, Some(t0), 6).await;
    assert_eq!(ids(&back, "samples", "created"), Vec::<String>::new());
    assert_eq!(ids(&back, "samples", "updated"), vec![id.clone()]);
    let mut events = vec![sealed.clone(), dispatched.clone()];
    events.sort();
    assert_eq!(ids(&back, "custody_events", "updated"), events);
    let rec = record(&back, "samples", &id);
    assert_eq!(rec["sample_no"], no.as_str());
    assert_eq!(rec["state"], "dispatched");
    assert_eq!(rec["seal_broken"], false);
    assert_eq!(rec["stage"], "circulation");
    assert_eq!(rec["food_category_4"], "/", "not applicable stays \"/\"");
    assert_eq!(
        rec["premises_opinion_text"],
        Value::Null,
        "missing stays null"
    );
    let ev = record(&back, "custody_events", &sealed);
    assert_eq!(ev["kind"], "sealed");
    assert_eq!(ev["actor_role"], "inspector");
    assert!(!back.to_string().contains("report_no"), "no lab result");

    // The device re-sends what it pulled (a push after an interrupted sync sends the records
    // with the server's values merged in): still the same 抽样单, nothing refused.
    let t1 = cursor(&back);
    let mut pulled_back = rec.clone();
    pulled_back["_status"] = json!("created");
    pulled_back["_changed"] = json!("");
    push_ok(
        &w.app,
        &w.insp1,
        t1,
        changes(
            vec![pulled_back],
            vec![record(&back, "custody_events", &sealed).clone()],
        ),
    )
    .await;
    assert_eq!(lab_total(&w).await, 1);
    let (_, same) = sample_of(&w, &w.insp1, &id).await;
    assert_eq!(same["custody"], stored["custody"]);
}

async fn the_samplers_devices_pull_it_and_nobody_else(app: TestApp) {
    let w = world(app).await;
    let at = march_2_2026();
    let t0 = cursor(&pull(&w.app, &w.insp1, None, 6).await);
    let id = Uuid::new_v4().to_string();
    let sealed = Uuid::new_v4().to_string();
    push_ok(
        &w.app,
        &w.insp1,
        t0,
        changes(
            vec![sample_rec(&w, &id, at)],
            vec![custody_rec(&sealed, &id, "sealed", at)],
        ),
    )
    .await;

    // The second sampler's device, and another device of the first: new to them.
    let tablet = w.app.login_full("insp1", "tablet").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    for token in [&w.insp2, &tablet] {
        let p = pull(&w.app, token, None, 6).await;
        assert_eq!(ids(&p, "samples", "created"), vec![id.clone()]);
        assert_eq!(ids(&p, "custody_events", "created"), vec![sealed.clone()]);
        assert_eq!(record(&p, "samples", &id)["state"], "sealed");
    }
    // Not a sampler: nothing, on a first pull or after it.
    let o = pull(&w.app, &w.outsider, None, 6).await;
    assert_eq!(ids(&o, "samples", "created"), Vec::<String>::new());
    assert_eq!(ids(&o, "custody_events", "created"), Vec::<String>::new());
    assert!(!o.to_string().contains(&id));
    // An app on schema 5 has neither table.
    let old = pull(&w.app, &w.insp2, None, 5).await;
    assert!(
        old["changes"].get("samples").is_none() && old["changes"].get("custody_events").is_none()
    );

    // Events recorded online reach the samplers' devices (the lab's as new: another device
    // made it), with the sample's new state; the next pull repeats nothing.
    let t1 = cursor(&pull(&w.app, &w.insp2, None, 6).await);
    let dispatched = Uuid::new_v4().to_string();
    let (s, v) = w
        .custody(&id, &w.insp2, json!({"id": dispatched, "kind": "dispatched", "occurred_at": at + HOUR, "place": "顺丰宝坻网点"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let received = Uuid::new_v4().to_string();
    let (s, v) = w
        .custody(
            &id,
            &w.lab_a,
            json!({"id": received, "kind": "received", "occurred_at": at + 2 * HOUR,
                 "place": "A检验中心收样室", "sample_condition": "包装完好", "seal_intact": false}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let p = pull(&w.app, &w.insp2, Some(t1), 6).await;
    // The dispatch was recorded online from this very device (its own record: an update).
    assert_eq!(
        ids(&p, "custody_events", "created"),
        vec![received.clone()],
        "{p}"
    );
    assert_eq!(
        ids(&p, "custody_events", "updated"),
        vec![dispatched.clone()],
        "{p}"
    );
    assert_eq!(ids(&p, "samples", "updated"), vec![id.clone()]);
    let s = record(&p, "samples", &id);
    assert_eq!(s["state"], "received");
    assert_eq!(s["seal_broken"], true);
    let r = record(&p, "custody_events", &received);
    assert_eq!(
        (&r["seal_intact"], &r["actor_role"]),
        (&json!(false), &json!("lab"))
    );
    let t2 = cursor(&p);
    let p = pull(&w.app, &w.insp2, Some(t2), 6).await;
    assert_eq!(ids(&p, "samples", "updated"), Vec::<String>::new());
    assert_eq!(ids(&p, "custody_events", "created"), Vec::<String>::new());
    let o = pull(&w.app, &w.outsider, Some(t1), 6).await;
    assert!(!o.to_string().contains(&id));
}

async fn hostile_sample_pushes_are_refused_per_record(app: TestApp) {
    let w = world(app).await;
    let at = march_2_2026();
    let t0 = cursor(&pull(&w.app, &w.insp1, None, 6).await);
    let mine = Uuid::new_v4().to_string();
    push_ok(
        &w.app,
        &w.insp1,
        t0,
        changes(vec![sample_rec(&w, &mine, at)], vec![]),
    )
    .await;
    let (_, stored) = sample_of(&w, &w.insp1, &mine).await;

    // Someone else's sample: the outsider pushes a form naming insp1 and insp2.
    let foreign = Uuid::new_v4().to_string();
    let (s, v) = push(
        &w.app,
        &w.outsider,
        t0,
        changes(vec![sample_rec(&w, &foreign, at)], vec![]),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = rejection(&v, &foreign);
    assert_eq!(r["code"], "validation_failed");
    assert!(r["message"].as_str().unwrap().contains("sampler_1"), "{r}");
    // A forged sampler: no such account.
    let forged = Uuid::new_v4().to_string();
    let mut rec = sample_rec(&w, &forged, at);
    rec["sampler_2"] = json!(Uuid::new_v4().to_string());
    let (_, v) = push(&w.app, &w.insp1, t0, changes(vec![rec], vec![])).await;
    let r = rejection(&v, &forged);
    assert_eq!(r["code"], "validation_failed");
    assert!(r["message"].as_str().unwrap().contains("sampler_2"), "{r}");
    // A missing required field is named; "/" where a value is needed too; a wrong enum code.
    let (missing, slash, moon) = (
        Uuid::new_v4().to_string(),
        Uuid::new_v4().to_string(),
        Uuid::new_v4().to_string(),
    );
    let mut a = sample_rec(&w, &missing, at);
    a["sample_name"] = Value::Null;
    let mut b = sample_rec(&w, &slash, at);
    b["sample_storage"] = json!("／");
    let mut c = sample_rec(&w, &moon, at);
    c["stage"] = json!("moon");
    let (_, v) = push(&w.app, &w.insp1, t0, changes(vec![a, b, c], vec![])).await;
    let r = rejection(&v, &missing);
    assert_eq!(r["code"], "validation_failed");
    assert!(
        r["message"].as_str().unwrap().starts_with("sample_name:"),
        "{r}"
    );
    let r = rejection(&v, &slash);
    assert!(
        r["message"].as_str().unwrap().contains("sample_storage"),
        "{r}"
    );
    assert_eq!(rejection(&v, &moon)["code"], "invalid_record");
    // A national number already used: the online route's 409, refused here per record.
    let national = "DC26120000123456789";
    let (first, second) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let mut x = sample_rec(&w, &first, at);
    x["sampling_no"] = json!(national);
    let mut y = sample_rec(&w, &second, at);
    y["sampling_no"] = json!(national);
    let (_, v) = push(&w.app, &w.insp1, t0, changes(vec![x, y], vec![])).await;
    assert_eq!(rejection(&v, &second)["code"], "sample_no_taken");
    assert_eq!(
        v["rejected"].as_array().unwrap().len(),
        1,
        "the first one stands: {v}"
    );
    let (_, f) = sample_of(&w, &w.insp1, &first).await;
    assert_eq!(f["sample_no"], national);

    // An update of a submitted sample, as `updated` and as `created`: refused, unchanged.
    let mut edited = sample_rec(&w, &mine, at);
    edited["sample_name"] = json!("高筋小麦粉");
    edited["_status"] = json!("updated");
    edited["_changed"] = json!("sample_name");
    let body = json!({"samples": {"created": [], "updated": [edited.clone()], "deleted": []}});
    assert_eq!(
        refused(&w.app, &w.insp1, t0, body).await,
        vec![(
            "samples".to_string(),
            mine.clone(),
            "sample_id_conflict".to_string()
        )]
    );
    assert_eq!(
        refused(&w.app, &w.insp1, t0, changes(vec![edited], vec![])).await,
        vec![(
            "samples".to_string(),
            mine.clone(),
            "sample_id_conflict".to_string()
        )]
    );
    // A deletion of it: refused; of one never stored (a refused record discarded), or of
    // someone else's, a no-op.
    let body = json!({"samples": {"deleted": [mine.clone(), missing.clone()]}});
    assert_eq!(
        refused(&w.app, &w.insp1, t0, body.clone()).await,
        vec![(
            "samples".to_string(),
            mine.clone(),
            "append_only".to_string()
        )]
    );
    push_ok(&w.app, &w.outsider, t0, body).await;
    let (s, now) = sample_of(&w, &w.insp1, &mine).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(now["form"], stored["form"]);
    assert_eq!(now["sample_no"], stored["sample_no"]);
    // None of the refused forms was stored (each would be lab A's).
    assert_eq!(lab_total(&w).await, 2);
    for id in [&foreign, &forged, &missing, &slash, &moon, &second] {
        let (s, _) = sample_of(&w, &w.insp1, id).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{id}");
    }
}

async fn custody_pushes_cannot_reorder_or_edit_the_chain(app: TestApp) {
    let w = world(app).await;
    let at = march_2_2026();
    let t0 = cursor(&pull(&w.app, &w.insp1, None, 6).await);
    let id = Uuid::new_v4().to_string();
    push_ok(
        &w.app,
        &w.insp1,
        t0,
        changes(vec![sample_rec(&w, &id, at)], vec![]),
    )
    .await;

    // Dispatched before sealed; the lab's kinds from a device; an unknown kind.
    let (early, lab, odd) = (
        Uuid::new_v4().to_string(),
        Uuid::new_v4().to_string(),
        Uuid::new_v4().to_string(),
    );
    let mut received = custody_rec(&lab, &id, "received", at);
    received["sample_condition"] = json!("完好");
    received["seal_intact"] = json!(true);
    let got = refused(
        &w.app,
        &w.insp1,
        t0,
        changes(
            vec![],
            vec![
                custody_rec(&early, &id, "dispatched", at),
                received,
                custody_rec(&odd, &id, "lost", at),
            ],
        ),
    )
    .await;
    let mut want = vec![
        (
            "custody_events".to_string(),
            early.clone(),
            "custody_out_of_order".to_string(),
        ),
        (
            "custody_events".to_string(),
            lab.clone(),
            "custody_wrong_role".to_string(),
        ),
        (
            "custody_events".to_string(),
            odd.clone(),
            "invalid_record".to_string(),
        ),
    ];
    want.sort();
    assert_eq!(got, want);

    // Sealed, then a dispatch dated before it: the chain cannot be reordered.
    let (sealed, back) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let got = refused(
        &w.app,
        &w.insp1,
        t0,
        changes(
            vec![],
            vec![
                custody_rec(&sealed, &id, "sealed", at + HOUR),
                custody_rec(&back, &id, "dispatched", at),
            ],
        ),
    )
    .await;
    assert_eq!(
        got,
        vec![(
            "custody_events".to_string(),
            back.clone(),
            "custody_time_before_previous".to_string()
        )]
    );
    // A second seal under another id; the first seal edited; the seal deleted.
    let again = Uuid::new_v4().to_string();
    let mut moved = custody_rec(&sealed, &id, "sealed", at + HOUR);
    moved["place"] = json!("别处");
    let got = refused(
        &w.app,
        &w.insp2,
        t0,
        json!({"custody_events": {"created": [custody_rec(&again, &id, "sealed", at + 2 * HOUR)], "updated": [moved]}}),
    )
    .await;
    let mut want = vec![
        (
            "custody_events".to_string(),
            again.clone(),
            "custody_already_recorded".to_string(),
        ),
        (
            "custody_events".to_string(),
            sealed.clone(),
            "custody_event_edited".to_string(),
        ),
    ];
    want.sort();
    assert_eq!(got, want);
    let got = refused(
        &w.app,
        &w.insp2,
        t0,
        json!({"custody_events": {"deleted": [sealed.clone()]}}),
    )
    .await;
    assert_eq!(
        got,
        vec![(
            "custody_events".to_string(),
            sealed.clone(),
            "append_only".to_string()
        )]
    );

    // Custody of a sample that is not the pusher's, or does not exist: the same refusal.
    let nowhere = Uuid::new_v4().to_string();
    let (a, b) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let (s, v) = push(
        &w.app,
        &w.outsider,
        t0,
        changes(
            vec![],
            vec![
                custody_rec(&a, &id, "dispatched", at + 2 * HOUR),
                custody_rec(&b, &nowhere, "sealed", at),
            ],
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (ra, rb) = (rejection(&v, &a), rejection(&v, &b));
    assert_eq!(ra["code"], "unknown_sample");
    assert_eq!((&ra["code"], &ra["message"]), (&rb["code"], &rb["message"]));

    // What stands: one seal, where and when it was first recorded.
    let (_, stored) = sample_of(&w, &w.insp1, &id).await;
    let chain = stored["custody"].as_array().unwrap();
    assert_eq!(chain.len(), 1, "{stored}");
    assert_eq!(
        (&chain[0]["id"], &chain[0]["place"]),
        (&json!(sealed), &json!("老王粮油店"))
    );
    assert_eq!(stored["state"], "sealed");
}

async fn a_push_is_all_or_nothing(app: TestApp) {
    let w = world(app).await;
    let at = march_2_2026();
    let t0 = cursor(&pull(&w.app, &w.insp1, None, 6).await);
    // A structural error anywhere in the push: nothing of it applies.
    let id = Uuid::new_v4().to_string();
    let mut body = changes(
        vec![sample_rec(&w, &id, at)],
        vec![custody_rec(&Uuid::new_v4().to_string(), &id, "sealed", at)],
    );
    body["answers"] = json!({"deleted": ["not-a-uuid"]});
    let (s, v) = push(&w.app, &w.insp1, t0, body).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_id"))
    );
    assert_eq!(sample_of(&w, &w.insp1, &id).await.0, StatusCode::NOT_FOUND);

    // A 抽样单 refused after its first writes (its number drawn, its row and samplers written,
    // then its deadlines cannot be counted: 2035 has no calendar) leaves nothing, nor do its
    // custody events; the push's other 抽样单 and events stand.
    let (good, bad) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let (good_seal, bad_seal) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let in_2035 = at + 9 * 365 * 24 * HOUR;
    let got = refused(
        &w.app,
        &w.insp1,
        t0,
        changes(
            vec![sample_rec(&w, &bad, in_2035), sample_rec(&w, &good, at)],
            vec![
                custody_rec(&bad_seal, &bad, "sealed", in_2035),
                custody_rec(&good_seal, &good, "sealed", at),
            ],
        ),
    )
    .await;
    let mut want = vec![
        (
            "samples".to_string(),
            bad.clone(),
            "calendar_year_missing".to_string(),
        ),
        (
            "custody_events".to_string(),
            bad_seal.clone(),
            "unknown_sample".to_string(),
        ),
    ];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(sample_of(&w, &w.insp1, &bad).await.0, StatusCode::NOT_FOUND);
    let (_, g) = sample_of(&w, &w.insp1, &good).await;
    assert_eq!(g["state"], "sealed");
    assert_eq!(lab_total(&w).await, 1);
    // The refused one's number went back with it: the good one, pushed after it, has the day's
    // first number, and the next 抽样单 the one after.
    let next = Uuid::new_v4().to_string();
    push_ok(
        &w.app,
        &w.insp1,
        t0,
        changes(vec![sample_rec(&w, &next, at)], vec![]),
    )
    .await;
    let (_, n) = sample_of(&w, &w.insp1, &next).await;
    let seq = |v: &Value| -> u32 {
        v["sample_no"]
            .as_str()
            .unwrap()
            .rsplit('-')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(seq(&g), 1, "{}", g["sample_no"]);
    assert_eq!(seq(&n), 2, "{}", n["sample_no"]);
    // Nothing of the refused one reaches a device.
    let p = pull(&w.app, &w.insp2, None, 6).await;
    assert!(!p.to_string().contains(&bad));
}

async fn racing_pushes_cannot_share_a_national_number(app: TestApp) {
    let w = world(app).await;
    let at = march_2_2026();
    let t0 = cursor(&pull(&w.app, &w.insp1, None, 6).await);
    let national = "DC26120000987654321";
    let (a, b) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let mut ra = sample_rec(&w, &a, at);
    ra["sampling_no"] = json!(national);
    let mut rb = sample_rec(&w, &b, at + 60_000);
    rb["sampling_no"] = json!(national);
    // Two samplers' devices push at once.
    let (x, y) = tokio::join!(
        push(&w.app, &w.insp1, t0, changes(vec![ra], vec![])),
        push(&w.app, &w.insp2, t0, changes(vec![rb], vec![])),
    );
    assert_eq!((x.0, y.0), (StatusCode::OK, StatusCode::OK), "{x:?} {y:?}");
    let n: usize = [&x.1, &y.1]
        .iter()
        .map(|v| v["rejected"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(n, 1, "exactly one refused: {x:?} {y:?}");
    let loser = if x.1 == json!({}) {
        (&y.1, &b)
    } else {
        (&x.1, &a)
    };
    assert_eq!(rejection(loser.0, loser.1)["code"], "sample_no_taken");
    assert_eq!(lab_total(&w).await, 1);
}

async fn an_upgrade_to_schema_6_pulls_the_samples_as_new(app: TestApp) {
    let w = world(app).await;
    let at = march_2_2026();
    // The second sampler's app is still on schema 5 when the first pushes a sample.
    let old = pull(&w.app, &w.insp2, None, 5).await;
    let t0 = cursor(&pull(&w.app, &w.insp1, None, 6).await);
    let id = Uuid::new_v4().to_string();
    let sealed = Uuid::new_v4().to_string();
    push_ok(
        &w.app,
        &w.insp1,
        t0,
        changes(
            vec![sample_rec(&w, &id, at)],
            vec![custody_rec(&sealed, &id, "sealed", at)],
        ),
    )
    .await;
    let between = pull(&w.app, &w.insp2, Some(cursor(&old)), 5).await;
    assert!(between["changes"].get("samples").is_none());
    // Upgraded: WatermelonDB's migration pull names the new tables.
    let migration = r#"{"from":5,"tables":["samples","custody_events"],"columns":[]}"#;
    let (s, p) = w
        .app
        .get(
            &format!(
                "/api/v1/sync?last_pulled_at={}&schema_version=6&migration={}",
                cursor(&between),
                urlencode(migration)
            ),
            &w.insp2,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(ids(&p, "samples", "created"), vec![id.clone()]);
    assert_eq!(ids(&p, "custody_events", "created"), vec![sealed]);
    // Even on the device that pushed it: a table new to the app holds nothing yet.
    let (s, p) = w
        .app
        .get(
            &format!(
                "/api/v1/sync?last_pulled_at={t0}&schema_version=6&migration={}",
                urlencode(migration)
            ),
            &w.insp1,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(ids(&p, "samples", "created"), vec![id]);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---- Sampling tasks (schema 6) -----------------------------------------------------------

/// A sampling plan over the world's premises (周良街道, grade B), supervision sampling in
/// circulation sent to lab A, drawn: its one task, with the team `samplers`.
async fn sampling_task(w: &World, title: &str, samplers: &[&str]) -> String {
    crate::common::cover_this_and_next_year(&w.app, &w.admin).await;
    let (s, p) = w
        .app
        .post(
            "/api/v1/sampling-plans",
            &w.reviewer,
            json!({"title": title, "purpose": "supervision", "stage": "circulation",
                   "period_start": "2026-01-01", "period_end": "2027-12-31", "lab_id": w.lab_a_id,
                   "batches": [{"category_code": "010101", "batches": 2}],
                   "filter": {"towns": ["周良街道"]}, "quotas": {"explicit": {"B": 1}}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let (s, d) = w
        .app
        .post(
            &format!("/api/v1/sampling-plans/{}/draw", p["id"].as_str().unwrap()),
            &w.reviewer,
            json!({"seed": "2026-12 抽检 公开摇号 07 19 23"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let task = d["tasks"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(team(w, &task, samplers).await.0, StatusCode::OK);
    task
}

async fn team(w: &World, task: &str, samplers: &[&str]) -> (StatusCode, Value) {
    w.app
        .put(
            &format!("/api/v1/sampling-tasks/{task}/team"),
            &w.reviewer,
            json!({"sampler_ids": samplers}),
        )
        .await
}

fn team_ids(rec: &Value) -> Vec<String> {
    let team: Value = serde_json::from_str(rec["team"].as_str().unwrap()).unwrap();
    team.as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap().to_string())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn sampling_tasks_reach_their_samplers_and_follow_team_changes(app: TestApp) {
    let w = world(app).await;
    let outsider_id = w.outsider_id.clone();
    let a = sampling_task(&w, "2026年小麦粉监督抽检", &[&w.insp1_id, &w.insp2_id]).await;
    let b = sampling_task(&w, "2026年面粉专项抽检", &[&w.insp2_id, &outsider_id]).await;

    // First pulls: each sampler's own tasks, nobody else's.
    let p1 = pull(&w.app, &w.insp1, None, 6).await;
    assert_eq!(ids(&p1, "sampling_tasks", "created"), vec![a.clone()]);
    let p2 = pull(&w.app, &w.insp2, None, 6).await;
    assert_eq!(
        ids(&p2, "sampling_tasks", "created"),
        sorted(vec![a.clone(), b.clone()])
    );
    let po = pull(&w.app, &w.outsider, None, 6).await;
    assert_eq!(ids(&po, "sampling_tasks", "created"), vec![b.clone()]);
    assert!(!po.to_string().contains(&a), "{po}");
    // What the task says: premises, plan, lab, batches, due date, state, team.
    let rec = record(&p1, "sampling_tasks", &a);
    assert_eq!(rec["establishment_id"], w.establishment.as_str());
    assert_eq!(rec["premises_sign_name"], "老王粮油店");
    assert_eq!(rec["premises_licensed_name"], "天津市老王粮油商行");
    assert_eq!(rec["premises_licence_no"], "JY21201150000001");
    assert_eq!(rec["premises_town"], "周良街道");
    assert_eq!(rec["plan_title"], "2026年小麦粉监督抽检");
    assert_eq!(
        (&rec["purpose"], &rec["stage"]),
        (&json!("supervision"), &json!("circulation"))
    );
    assert_eq!(rec["lab_id"], w.lab_a_id.as_str());
    assert_eq!(rec["lab_name"], "LABA检验中心");
    let batches: Value = serde_json::from_str(rec["batches"].as_str().unwrap()).unwrap();
    assert_eq!(batches, json!([{"category_code": "010101", "batches": 2}]));
    assert_eq!(rec["due_date"].as_str().unwrap().len(), 10, "{rec}");
    assert_eq!(rec["state"], "assigned");
    assert_eq!(team_ids(rec), vec![w.insp1_id.clone(), w.insp2_id.clone()]);
    // An app on schema 5 has no such table.
    let old = pull(&w.app, &w.insp2, None, 5).await;
    assert!(old["changes"].get("sampling_tasks").is_none(), "{old}");

    // The team changes: insp1 leaves task A, the outsider joins it.
    let (t1, t2, to) = (cursor(&p1), cursor(&p2), cursor(&po));
    let (s, v) = team(&w, &a, &[&outsider_id, &w.insp2_id]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let gone = pull(&w.app, &w.insp1, Some(t1), 6).await;
    assert_eq!(ids(&gone, "sampling_tasks", "deleted"), vec![a.clone()]);
    assert_eq!(
        ids(&gone, "sampling_tasks", "created"),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&gone, "sampling_tasks", "updated"),
        Vec::<String>::new()
    );
    let joined = pull(&w.app, &w.outsider, Some(to), 6).await;
    assert_eq!(ids(&joined, "sampling_tasks", "created"), vec![a.clone()]);
    assert_eq!(
        ids(&joined, "sampling_tasks", "updated"),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&joined, "sampling_tasks", "deleted"),
        Vec::<String>::new()
    );
    let stayed = pull(&w.app, &w.insp2, Some(t2), 6).await;
    assert_eq!(ids(&stayed, "sampling_tasks", "updated"), vec![a.clone()]);
    assert_eq!(
        ids(&stayed, "sampling_tasks", "created"),
        Vec::<String>::new()
    );
    assert_eq!(
        team_ids(record(&stayed, "sampling_tasks", &a)),
        vec![outsider_id.clone(), w.insp2_id.clone()]
    );
    // The next pulls repeat nothing.
    for (token, p) in [
        (&w.insp1, &gone),
        (&w.outsider, &joined),
        (&w.insp2, &stayed),
    ] {
        let again = pull(&w.app, token, Some(cursor(p)), 6).await;
        for kind in ["created", "updated", "deleted"] {
            assert_eq!(
                ids(&again, "sampling_tasks", kind),
                Vec::<String>::new(),
                "{again}"
            );
        }
    }

    // A registry change of the premises reaches its samplers' devices as an update.
    let t2 = cursor(&stayed);
    let (s, v) = w
        .app
        .put(
            &format!("/api/v1/establishments/{}", w.establishment),
            &w.admin,
            json!({"sign_name": "老王粮油超市", "licensed_name": "天津市老王粮油商行",
                   "license_no": "JY21201150000001", "category": "small_restaurant",
                   "address": "测试路1号", "town": "周良街道", "risk_grade": "B"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let renamed = pull(&w.app, &w.insp2, Some(t2), 6).await;
    assert_eq!(
        ids(&renamed, "sampling_tasks", "updated"),
        sorted(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        record(&renamed, "sampling_tasks", &b)["premises_sign_name"],
        "老王粮油超市"
    );

    // Upgraded from schema 5: the migration pull sends the user's tasks as new.
    let migration =
        r#"{"from":5,"tables":["sampling_tasks","samples","custody_events"],"columns":[]}"#;
    let (s, p) = w
        .app
        .get(
            &format!(
                "/api/v1/sync?last_pulled_at={}&schema_version=6&migration={}",
                cursor(&old),
                urlencode(migration)
            ),
            &w.insp2,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(
        ids(&p, "sampling_tasks", "created"),
        sorted(vec![a.clone(), b.clone()])
    );
}

async fn a_synced_sample_names_its_sampling_task(app: TestApp) {
    let w = world(app).await;
    let at = march_2_2026();
    let outsider_id = w.outsider_id.clone();
    let mine = sampling_task(&w, "2026年小麦粉监督抽检", &[&w.insp1_id, &w.insp2_id]).await;
    let foreign = sampling_task(&w, "2026年面粉专项抽检", &[&w.insp2_id, &outsider_id]).await;
    let first = pull(&w.app, &w.insp1, None, 6).await;
    let t0 = cursor(&first);
    let task_rec = record(&first, "sampling_tasks", &mine).clone();

    // Against the sampler's own task: accepted, the task named.
    let id = Uuid::new_v4().to_string();
    let mut rec = sample_rec(&w, &id, at);
    rec["task_id"] = json!(mine);
    push_ok(&w.app, &w.insp1, t0, changes(vec![rec], vec![])).await;
    let (s, stored) = sample_of(&w, &w.insp1, &id).await;
    assert_eq!(s, StatusCode::OK, "{stored}");
    assert_eq!(stored["task_id"], mine.as_str(), "{stored}");
    // It comes back with its task; re-sent as pulled, a replay.
    let back = pull(&w.app, &w.insp1, Some(t0), 6).await;
    let pulled = record(&back, "samples", &id).clone();
    assert_eq!(pulled["task_id"], mine.as_str());
    let mut again = pulled.clone();
    again["_status"] = json!("created");
    again["_changed"] = json!("");
    push_ok(
        &w.app,
        &w.insp1,
        cursor(&back),
        changes(vec![again], vec![]),
    )
    .await;
    // The same id under another task (or none) is another content.
    let mut moved = pulled.clone();
    moved["task_id"] = Value::Null;
    assert_eq!(
        refused(
            &w.app,
            &w.insp1,
            cursor(&back),
            changes(vec![moved], vec![])
        )
        .await,
        vec![(
            "samples".to_string(),
            id.clone(),
            "sample_id_conflict".to_string()
        )]
    );
    assert_eq!(lab_total(&w).await, 1);

    // Another team's task, a task that does not exist: the same refusal; the stage of another
    // 抽样环节 than the task's: the field named. Nothing of them is stored.
    let (x, y, z) = (
        Uuid::new_v4().to_string(),
        Uuid::new_v4().to_string(),
        Uuid::new_v4().to_string(),
    );
    let mut rx = sample_rec(&w, &x, at);
    rx["task_id"] = json!(foreign);
    let mut ry = sample_rec(&w, &y, at);
    ry["task_id"] = json!(Uuid::new_v4().to_string());
    let mut rz = sample_rec(&w, &z, at);
    rz["task_id"] = json!(mine);
    rz["stage"] = json!("catering");
    // A category of the tree outside the task's batches (010101): the category named.
    let (s, v) = crate::sampling::post_raw(
        &w.app,
        "/api/v1/food-categories/import",
        &w.admin,
        "分类编码,级别,上级编码,分类名称,微生物\n010102,3,0101,专用小麦粉,否\n"
            .as_bytes()
            .to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let c = Uuid::new_v4().to_string();
    let mut rc = sample_rec(&w, &c, at);
    rc["task_id"] = json!(mine);
    rc["category_code"] = json!("010102");
    rc["food_category_3"] = json!("专用小麦粉");
    let (s, v) = push(&w.app, &w.insp1, t0, changes(vec![rx, ry, rz, rc], vec![])).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (rx, ry) = (rejection(&v, &x), rejection(&v, &y));
    assert_eq!(rx["code"], "unknown_task", "{v}");
    assert_eq!((&rx["code"], &rx["message"]), (&ry["code"], &ry["message"]));
    let rz = rejection(&v, &z);
    assert_eq!(rz["code"], "validation_failed", "{v}");
    assert!(rz["message"].as_str().unwrap().contains("stage"), "{rz}");
    let rc = rejection(&v, &c);
    assert_eq!(rc["code"], "validation_failed", "{v}");
    assert!(
        rc["message"].as_str().unwrap().contains("category_code"),
        "{rc}"
    );
    assert_eq!(v["rejected"].as_array().unwrap().len(), 4, "{v}");
    for id in [&x, &y, &z, &c] {
        assert_eq!(sample_of(&w, &w.insp1, id).await.0, StatusCode::NOT_FOUND);
    }
    assert_eq!(lab_total(&w).await, 1);

    // The device cannot change a sampling task: an edit, a forged one, a deletion, each
    // refused per record; the task stays as it was.
    let mut edited = task_rec.clone();
    edited["state"] = json!("cancelled");
    edited["lab_id"] = json!(w.lab_b_id);
    edited["_status"] = json!("updated");
    edited["_changed"] = json!("state,lab_id");
    let forged_id = Uuid::new_v4().to_string();
    let mut forged = task_rec.clone();
    forged["id"] = json!(forged_id);
    forged["_status"] = json!("created");
    let got = refused(
        &w.app,
        &w.insp1,
        cursor(&back),
        json!({"sampling_tasks": {"created": [forged], "updated": [edited], "deleted": [foreign.clone()]}}),
    )
    .await;
    let mut want: Vec<(String, String, String)> = [&forged_id, &mine, &foreign]
        .iter()
        .map(|i| {
            (
                "sampling_tasks".to_string(),
                i.to_string(),
                "read_only".to_string(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
    let (s, t) = w
        .app
        .get(&format!("/api/v1/sampling-tasks/{mine}"), &w.reviewer)
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(
        (&t["state"], &t["lab_id"]),
        (&json!("assigned"), &json!(w.lab_a_id))
    );
    let (s, _) = w
        .app
        .get(&format!("/api/v1/sampling-tasks/{forged_id}"), &w.reviewer)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = w
        .app
        .get(&format!("/api/v1/sampling-tasks/{foreign}"), &w.reviewer)
        .await;
    assert_eq!(s, StatusCode::OK);
}
