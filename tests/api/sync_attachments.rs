//! Sample photos declared offline (sync schema 7): a sampler's device pushes the declarations
//! of its site/sample/seal photos with (or after) the 抽样单, through the online route's use
//! case; replays change nothing; refusals are per record (unknown or foreign sample, the
//! lab's report, another declaration under a stored id, deletions); the pull brings the
//! samplers' attachments back with their processing status (uploaded and processed, or
//! failed) and never anyone else's, nor the lab's report; a schema-6 device is unaffected, and
//! its upgrade to 7 pulls the attachments as new.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::TestApp;
use crate::sample_attachments::{declaration, declare, jpeg, pdf, processed, upload};
use crate::sampling::{march_2_2026, world, World};
use crate::sync_samples::{
    changes, cursor, custody_rec, ids, pull, push_ok, record, refused, sample_rec,
};
use crate::uploads::{audit_entries, hex_sha256};

both_backends!(
    photo_declarations_sync_once_and_their_status_comes_back,
    hostile_attachment_pushes_are_refused_per_record,
    a_schema_6_device_is_unaffected_and_its_upgrade_pulls_them,
    another_sampler_cannot_see_or_attach,
);

/// A `sample_attachments` record as a WatermelonDB app sends it (server columns null).
fn attachment_rec(id: &str, sample: &str, kind: &str, bytes: &[u8]) -> Value {
    json!({"id": id, "sample_id": sample, "kind": kind, "sha256": hex_sha256(bytes),
           "byte_size": bytes.len(), "taken_at": march_2_2026(),
           "processing_status": null, "processing_error": null, "width": null, "height": null,
           "_status": "created", "_changed": ""})
}

fn with_attachments(mut c: Value, recs: Vec<Value>, deleted: Vec<String>) -> Value {
    c["sample_attachments"] = json!({"created": recs, "updated": [], "deleted": deleted});
    c
}

async fn attachments_online(w: &World, sample: &str, token: &str) -> (StatusCode, Value) {
    w.app
        .get(&format!("/api/v1/samples/{sample}/attachments"), token)
        .await
}

async fn count_online(w: &World, sample: &str) -> usize {
    let (s, v) = attachments_online(w, sample, &w.admin).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().len()
}

/// Pull with a migration (what WatermelonDB sends after an upgrade).
async fn migration_pull(app: &TestApp, token: &str, last: i64, version: u32, m: Value) -> Value {
    let m = m.to_string();
    let enc: String = m
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (s, v) = app
        .get(
            &format!("/api/v1/sync?last_pulled_at={last}&schema_version={version}&migration={enc}"),
            token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// A 抽样单 of `first` and `second` (user ids), submitted online by `token`.
async fn sample_of_pair(w: &World, token: &str, first: &str, second: &str) -> String {
    let id = Uuid::new_v4().to_string();
    let mut body = w.sample(&id, march_2_2026());
    body["form"]["sampler_1"] = json!(first);
    body["form"]["sampler_2"] = json!(second);
    let (s, v) = w.app.post("/api/v1/samples", token, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    id
}

/// Pulls from `last` until attachment `id` is pulled with a final status.
async fn pull_until_settled(w: &World, token: &str, last: i64, id: &str) -> Value {
    for _ in 0..100 {
        let p = pull(&w.app, token, Some(last), 7).await;
        let found = ["created", "updated"].iter().find_map(|k| {
            p["changes"]["sample_attachments"][k]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == id)
                .cloned()
        });
        if let Some(r) = found {
            if r["processing_status"] == "processed" || r["processing_status"] == "failed" {
                return r;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("attachment {id} never settled in a pull");
}

async fn photo_declarations_sync_once_and_their_status_comes_back(app: TestApp) {
    let w = world(app).await;
    let at = march_2_2026();
    let t0 = cursor(&pull(&w.app, &w.insp1, None, 7).await);
    let sample = Uuid::new_v4().to_string();
    let photo = jpeg();
    // Not an image at all: refused at upload, so `failed` with the reason.
    let not_a_photo = pdf("not a photo");
    let (site, seal) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    // The 抽样单, its seal event and both photo declarations in one offline push.
    let offline = with_attachments(
        changes(
            vec![sample_rec(&w, &sample, at)],
            vec![custody_rec(
                &Uuid::new_v4().to_string(),
                &sample,
                "sealed",
                at,
            )],
        ),
        vec![
            attachment_rec(&site, &sample, "site", &photo),
            attachment_rec(&seal, &sample, "seal", &not_a_photo),
        ],
        vec![],
    );
    push_ok(&w.app, &w.insp1, t0, offline.clone()).await;
    let (s, online) = attachments_online(&w, &sample, &w.insp1).await;
    assert_eq!(s, StatusCode::OK, "{online}");
    let items = online["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{online}");
    for a in items {
        assert_eq!(a["processing_status"], "awaiting_upload");
        assert_eq!(a["declared_by"], w.insp1_id.as_str());
    }
    // Declared by the online use case: its audit event, with the pushing device.
    let events = audit_entries(&w.app, "sample_attachment_declared", &site).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor_id.as_deref(), Some(w.insp1_id.as_str()));
    assert_eq!(events[0].device_id.as_deref(), Some("phone"));

    // A replay (the response was lost) changes nothing, not even the cursor's view of them.
    let t1 = cursor(&pull(&w.app, &w.insp1, Some(t0), 7).await);
    push_ok(&w.app, &w.insp1, t0, offline).await;
    assert_eq!(count_online(&w, &sample).await, 2);
    assert_eq!(
        audit_entries(&w.app, "sample_attachment_declared", &site)
            .await
            .len(),
        1
    );
    let after_replay = pull(&w.app, &w.insp1, Some(t1), 7).await;
    assert_eq!(
        ids(&after_replay, "sample_attachments", "updated"),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&after_replay, "sample_attachments", "created"),
        Vec::<String>::new()
    );

    // The pushing device gets them back as its own (`updated`), with the server's status.
    let own = pull(&w.app, &w.insp1, Some(t0), 7).await;
    let mut both = vec![site.clone(), seal.clone()];
    both.sort();
    assert_eq!(ids(&own, "sample_attachments", "updated"), both);
    assert_eq!(
        ids(&own, "sample_attachments", "created"),
        Vec::<String>::new()
    );
    let r = record(&own, "sample_attachments", &site);
    assert_eq!(
        (
            r["sample_id"].as_str(),
            r["kind"].as_str(),
            r["processing_status"].as_str()
        ),
        (Some(sample.as_str()), Some("site"), Some("awaiting_upload"))
    );
    assert_eq!(r["sha256"], hex_sha256(&photo));
    // The other sampler's first pull gets them as new.
    let other = pull(&w.app, &w.insp2, None, 7).await;
    assert_eq!(ids(&other, "sample_attachments", "created"), both);
    let t_other = cursor(&other);

    // The bytes by tus: the photo is processed, the PDF refused; both devices learn it.
    let t2 = cursor(&own);
    let res = upload(&w, &w.insp1, &site, &photo, "IMG_0001.jpg").await;
    assert_eq!(res.status(), 204);
    let res = upload(&w, &w.insp1, &seal, &not_a_photo, "IMG_0002.jpg").await;
    assert_eq!(res.status(), 415);
    assert_eq!(
        processed(&w, &sample, &site).await["processing_status"],
        "processed"
    );
    let done = pull_until_settled(&w, &w.insp1, t2, &site).await;
    assert_eq!(
        (done["width"].as_i64(), done["height"].as_i64()),
        (Some(640), Some(480))
    );
    assert_eq!(done["processing_error"], Value::Null);
    let failed = pull_until_settled(&w, &w.insp1, t2, &seal).await;
    assert_eq!(failed["processing_status"], "failed");
    assert!(
        failed["processing_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{failed}"
    );
    let theirs = pull_until_settled(&w, &w.insp2, t_other, &site).await;
    assert_eq!(theirs["processing_status"], "processed");
    let p = pull(&w.app, &w.insp2, Some(t_other), 7).await;
    assert_eq!(
        ids(&p, "sample_attachments", "updated"),
        both,
        "already on the device: updates"
    );
    // Nothing is ever deleted.
    assert_eq!(
        ids(&p, "sample_attachments", "deleted"),
        Vec::<String>::new()
    );
}

async fn hostile_attachment_pushes_are_refused_per_record(app: TestApp) {
    let w = world(app).await;
    let mine = w.submitted(march_2_2026()).await;
    // The outsider's own 抽样单 (with insp2): not insp1's.
    let theirs = sample_of_pair(&w, &w.outsider, &w.outsider_id, &w.insp2_id).await;
    let photo = jpeg();
    let taken = Uuid::new_v4().to_string();
    let (s, v) = declare(
        &w,
        &theirs,
        &w.outsider,
        declaration(&taken, "site", &photo),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let stored = Uuid::new_v4().to_string();
    let (s, v) = declare(&w, &mine, &w.insp1, declaration(&stored, "seal", &photo)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let last = cursor(&pull(&w.app, &w.insp1, None, 7).await);

    let ok = Uuid::new_v4().to_string();
    let nowhere = Uuid::new_v4().to_string();
    let foreign = Uuid::new_v4().to_string();
    let report = Uuid::new_v4().to_string();
    let bad_kind = Uuid::new_v4().to_string();
    let bad_sha = Uuid::new_v4().to_string();
    let refused_sample = Uuid::new_v4().to_string();
    let of_refused = Uuid::new_v4().to_string();
    let never_stored = Uuid::new_v4().to_string();
    let mut bad = attachment_rec(&bad_sha, &mine, "sample", &photo);
    bad["sha256"] = json!("not-a-hash");
    // A 抽样单 that is refused (no sample name), with a photo of it.
    let mut broken = sample_rec(&w, &refused_sample, march_2_2026());
    broken["sample_name"] = Value::Null;
    let c = with_attachments(
        changes(vec![broken], vec![]),
        vec![
            attachment_rec(&ok, &mine, "sample", &photo),
            attachment_rec(&nowhere, &Uuid::new_v4().to_string(), "site", &photo),
            attachment_rec(&foreign, &theirs, "site", &photo),
            attachment_rec(&report, &mine, "report", &pdf("r")),
            attachment_rec(&bad_kind, &mine, "selfie", &photo),
            bad,
            // Another declaration under a stored id of mine, and under the outsider's id.
            attachment_rec(&stored, &mine, "site", &photo),
            attachment_rec(&taken, &mine, "site", &photo),
            attachment_rec(&of_refused, &refused_sample, "site", &photo),
        ],
        vec![never_stored.clone()],
    );
    let mut want = vec![
        ("sample_attachments", &nowhere, "unknown_sample"),
        ("sample_attachments", &foreign, "unknown_sample"),
        ("sample_attachments", &report, "report_not_from_device"),
        ("sample_attachments", &bad_kind, "invalid_record"),
        ("sample_attachments", &bad_sha, "validation_failed"),
        ("sample_attachments", &stored, "attachment_id_conflict"),
        ("sample_attachments", &taken, "unknown_sample"),
        ("sample_attachments", &of_refused, "unknown_sample"),
        ("samples", &refused_sample, "validation_failed"),
    ]
    .into_iter()
    .map(|(t, id, c)| (t.to_string(), id.clone(), c.to_string()))
    .collect::<Vec<_>>();
    want.sort();
    assert_eq!(refused(&w.app, &w.insp1, last, c).await, want);
    // The valid one applied; nothing of the refused ones, the outsider's untouched.
    assert_eq!(count_online(&w, &mine).await, 2);
    assert_eq!(count_online(&w, &theirs).await, 1);
    let (s, v) = attachments_online(&w, &theirs, &w.outsider).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"][0]["kind"], "site");
    assert_eq!(v["items"][0]["sample_id"], theirs.as_str());

    // Deleting a stored declaration is refused; the declaration stays.
    let del = json!({"sample_attachments": {"created": [], "updated": [], "deleted": [ok]}});
    assert_eq!(
        refused(&w.app, &w.insp1, last, del.clone()).await,
        vec![(
            "sample_attachments".to_string(),
            ok.clone(),
            "append_only".to_string()
        )]
    );
    assert_eq!(count_online(&w, &mine).await, 2);
    // The outsider cannot delete (or learn of) insp1's: a no-op, as for an unknown id.
    let t = cursor(&pull(&w.app, &w.outsider, None, 7).await);
    push_ok(&w.app, &w.outsider, t, del).await;
    assert_eq!(count_online(&w, &mine).await, 2);
}

async fn a_schema_6_device_is_unaffected_and_its_upgrade_pulls_them(app: TestApp) {
    let w = world(app).await;
    let at = march_2_2026();
    let t0 = cursor(&pull(&w.app, &w.insp2, None, 6).await);
    // A schema-7 device (insp1) pushes a sample with a photo.
    let t = cursor(&pull(&w.app, &w.insp1, None, 7).await);
    let sample = Uuid::new_v4().to_string();
    let site = Uuid::new_v4().to_string();
    let photo = jpeg();
    push_ok(
        &w.app,
        &w.insp1,
        t,
        with_attachments(
            changes(vec![sample_rec(&w, &sample, at)], vec![]),
            vec![attachment_rec(&site, &sample, "site", &photo)],
            vec![],
        ),
    )
    .await;
    // The schema-6 device (insp2) gets the sample as before and no table it lacks.
    let p6 = pull(&w.app, &w.insp2, Some(t0), 6).await;
    assert_eq!(ids(&p6, "samples", "created"), vec![sample.clone()]);
    assert!(p6["changes"].get("sample_attachments").is_none(), "{p6}");
    let first6 = pull(&w.app, &w.insp2, None, 6).await;
    assert!(first6["changes"].get("sample_attachments").is_none());
    // Its own schema-6 push (a custody event) works as before.
    push_ok(
        &w.app,
        &w.insp2,
        cursor(&p6),
        changes(
            vec![],
            vec![custody_rec(
                &Uuid::new_v4().to_string(),
                &sample,
                "sealed",
                at + 1000,
            )],
        ),
    )
    .await;
    let t6 = cursor(&pull(&w.app, &w.insp2, Some(cursor(&p6)), 6).await);
    // The upgrade to 7: the migration pull sends every attachment of its samples as new.
    let m = migration_pull(
        &w.app,
        &w.insp2,
        t6,
        7,
        json!({"from": 6, "tables": ["sample_attachments"], "columns": []}),
    )
    .await;
    assert_eq!(ids(&m, "sample_attachments", "created"), vec![site.clone()]);
    let r = record(&m, "sample_attachments", &site);
    assert_eq!(r["processing_status"], "awaiting_upload");
    // And the next ordinary pull does not send it again.
    let next = pull(&w.app, &w.insp2, Some(cursor(&m)), 7).await;
    assert_eq!(
        ids(&next, "sample_attachments", "created"),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&next, "sample_attachments", "updated"),
        Vec::<String>::new()
    );
}

async fn another_sampler_cannot_see_or_attach(app: TestApp) {
    let w = world(app).await;
    let at = march_2_2026();
    let sample = w.submitted(at).await;
    let photo = jpeg();
    let t = cursor(&pull(&w.app, &w.insp1, None, 7).await);
    let site = Uuid::new_v4().to_string();
    push_ok(
        &w.app,
        &w.insp1,
        t,
        with_attachments(
            json!({}),
            vec![attachment_rec(&site, &sample, "site", &photo)],
            vec![],
        ),
    )
    .await;
    // The outsider (a sampler of their own 抽样单) neither pulls nor reads nor attaches.
    sample_of_pair(&w, &w.outsider, &w.outsider_id, &w.insp2_id).await;
    let p = pull(&w.app, &w.outsider, None, 7).await;
    assert_eq!(
        ids(&p, "sample_attachments", "created"),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&p, "sample_attachments", "updated"),
        Vec::<String>::new()
    );
    assert!(!ids(&p, "samples", "created").contains(&sample));
    let (s, _) = attachments_online(&w, &sample, &w.outsider).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let theirs = Uuid::new_v4().to_string();
    let c = with_attachments(
        json!({}),
        vec![
            attachment_rec(&theirs, &sample, "seal", &photo),
            // The same declaration as insp1's, under its id: still not theirs.
            attachment_rec(&site, &sample, "site", &photo),
        ],
        vec![],
    );
    let mut want = vec![
        (
            "sample_attachments".to_string(),
            theirs.clone(),
            "unknown_sample".to_string(),
        ),
        (
            "sample_attachments".to_string(),
            site.clone(),
            "unknown_sample".to_string(),
        ),
    ];
    want.sort();
    assert_eq!(refused(&w.app, &w.outsider, cursor(&p), c).await, want);
    assert_eq!(count_online(&w, &sample).await, 1);

    // The lab's report is the lab's: declared online, never pulled by the samplers.
    w.received(&sample, at).await;
    let before = cursor(&pull(&w.app, &w.insp1, None, 7).await);
    let report = Uuid::new_v4().to_string();
    let (s, v) = declare(
        &w,
        &sample,
        &w.lab_a,
        declaration(&report, "report", &pdf("r")),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let after = pull(&w.app, &w.insp1, Some(before), 7).await;
    assert_eq!(
        ids(&after, "sample_attachments", "created"),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&after, "sample_attachments", "updated"),
        Vec::<String>::new()
    );
    let all = pull(&w.app, &w.insp1, None, 7).await;
    assert_eq!(
        ids(&all, "sample_attachments", "created"),
        vec![site.clone()]
    );
    // A push cannot reach the lab's record either (it is the same sample, so the id is
    // visible: another declaration under it).
    let c = with_attachments(
        json!({}),
        vec![attachment_rec(&report, &sample, "site", &photo)],
        vec![],
    );
    let got = refused(&w.app, &w.insp1, cursor(&all), c).await;
    assert_eq!(
        got,
        vec![(
            "sample_attachments".to_string(),
            report,
            "attachment_id_conflict".to_string()
        )]
    );
}
