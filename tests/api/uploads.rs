//! Photo bytes by tus 1.0: creation, resumable chunks, checksum 460, completion checks,
//! content-addressed de-duplication, ownership.

use foodcheck::audit::Ctx;
use foodcheck::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::common::{assert_error, TestApp};

both_backends!(
    tus_upload_resumes_verifies_and_dedupes,
    tus_refusals,
    processing_and_download,
    dedupe_never_skips_proof_of_possession,
    one_open_upload_per_record,
    type_refused_at_first_chunk,
    tus_resumable_on_every_response,
    uploads_and_evidence_downloads_are_audited,
    refused_uploads_are_audited
);

mod queue {
    use super::*;

    async fn spawn(kind: crate::common::Kind) -> TestApp {
        TestApp::spawn_with(kind, |c| c.run_workers = false).await
    }

    /// Jobs survive in the database, are retried with backoff, and fail alone for good.
    async fn jobs_retry_with_backoff_then_fail(app: TestApp) {
        use foodcheck::ops::jobs;
        use foodcheck::store::jobs::enqueue;
        let mut tx = app.db().begin_write().await.unwrap();
        enqueue(tx.conn(), "test.job", "{}", 2).await.unwrap();
        enqueue(tx.conn(), "test.other", "{}", 2).await.unwrap();
        tx.commit().await.unwrap();
        let first = jobs::claim(app.db(), 60_000).await.unwrap().unwrap();
        let second = jobs::claim(app.db(), 60_000).await.unwrap().unwrap();
        assert_ne!(first.id, second.id, "a claimed job is not handed out twice");
        assert!(jobs::claim(app.db(), 60_000).await.unwrap().is_none());
        assert!(
            jobs::fail(app.db(), &first, "boom").await.unwrap(),
            "retried"
        );
        jobs::complete(app.db(), &second.id).await.unwrap();
        // Backoff: not runnable yet.
        assert!(jobs::claim(app.db(), 60_000).await.unwrap().is_none());
        sqlx::query("UPDATE jobs SET run_after = 0 WHERE id = $1")
            .bind(&first.id)
            .execute(app.db().pool())
            .await
            .unwrap();
        let again = jobs::claim(app.db(), 60_000).await.unwrap().unwrap();
        assert_eq!((again.id.as_str(), again.attempts), (first.id.as_str(), 2));
        assert!(
            !jobs::fail(app.db(), &again, "boom again").await.unwrap(),
            "last attempt"
        );
        let failed = jobs::counts(app.db(), "test.job").await.unwrap();
        let done = jobs::counts(app.db(), "test.other").await.unwrap();
        assert_eq!(
            (failed, done),
            (
                vec![("failed".to_string(), 1)],
                vec![("done".to_string(), 1)]
            )
        );
        // A worker that died mid-job: its lease runs out and the job is claimed again.
        let mut tx = app.db().begin_write().await.unwrap();
        enqueue(tx.conn(), "test.lease", "{}", 3).await.unwrap();
        tx.commit().await.unwrap();
        let held = jobs::claim(app.db(), -1).await.unwrap().unwrap();
        let reclaimed = jobs::claim(app.db(), 60_000).await.unwrap().unwrap();
        assert_eq!(held.id, reclaimed.id);
    }

    /// Two instances claiming from one queue at once never get the same job.
    async fn jobs_are_claimed_once_across_instances(app: TestApp) {
        use foodcheck::ops::jobs;
        use foodcheck::store::jobs::enqueue;
        let mut tx = app.db().begin_write().await.unwrap();
        for _ in 0..40 {
            enqueue(tx.conn(), "test.shared", "{}", 1).await.unwrap();
        }
        tx.commit().await.unwrap();
        let other = app.second_instance().await;
        let worker = |db: foodcheck::store::Db| async move {
            let mut got = Vec::new();
            let mut idle = 0;
            while idle < 20 {
                match jobs::claim(&db, 60_000).await.unwrap() {
                    Some(job) => {
                        idle = 0;
                        got.push(job.id);
                    }
                    None => {
                        idle += 1;
                        tokio::task::yield_now().await;
                    }
                }
            }
            got
        };
        let runs = futures::future::join_all([
            tokio::spawn(worker(app.db().clone())),
            tokio::spawn(worker(app.db().clone())),
            tokio::spawn(worker(other.db().clone())),
            tokio::spawn(worker(other.db().clone())),
        ])
        .await;
        let mut all: Vec<String> = runs.into_iter().flat_map(|r| r.unwrap()).collect();
        let claimed = all.len();
        all.sort();
        all.dedup();
        assert_eq!(
            (claimed, all.len()),
            (40, 40),
            "each job claimed exactly once"
        );
    }

    /// Abandoned partial uploads expire and their data is removed.
    async fn abandoned_uploads_expire(app: TestApp) {
        let photo = Uuid::new_v4().to_string();
        let bytes = jpeg(20_000, 3);
        let (token, _) = setup(&app, &[(&photo, &bytes)]).await;
        let res = create(&app, &token, &photo, &bytes).await;
        let location = res.headers()["location"].to_str().unwrap().to_string();
        let ct = (
            "content-type",
            "application/offset+octet-stream".to_string(),
        );
        let res = tus(
            &app,
            Method::PATCH,
            &location,
            &token,
            &[ct, ("upload-offset", "0".into())],
            bytes[..5000].to_vec(),
        )
        .await;
        assert_eq!(res.status(), 204);
        assert_eq!(stored_parts(&app).await, 1);
        // A part staged by a checksummed PATCH whose request died long ago goes with the next
        // sweep; the upload, not expired, stays.
        let upload_id = location.rsplit('/').next().unwrap();
        sqlx::query(
            "INSERT INTO upload_parts (upload_id, staged, part_offset, bytes, created_at) \
             VALUES ($1, 'dead-request', 5000, $2, 0)",
        )
        .bind(upload_id)
        .bind(bytes[5000..6000].to_vec())
        .execute(app.db().pool())
        .await
        .unwrap();
        assert_eq!(stored_parts(&app).await, 2);
        assert_eq!(
            foodcheck::ops::uploads::sweep_expired(&app.state, &Ctx::system())
                .await
                .unwrap(),
            0
        );
        assert_eq!(stored_parts(&app).await, 1);
        sqlx::query("UPDATE uploads SET expires_at = 0")
            .execute(app.db().pool())
            .await
            .unwrap();
        assert_eq!(
            foodcheck::ops::uploads::sweep_expired(&app.state, &Ctx::system())
                .await
                .unwrap(),
            1
        );
        assert_eq!(stored_parts(&app).await, 0);
        let res = tus(&app, Method::HEAD, &location, &token, &[], vec![]).await;
        assert_eq!(res.status(), 404);
        // Recorded as the system's housekeeping, naming the uploads removed.
        let upload_id = location.rsplit('/').next().unwrap();
        let entries = audit_entries(&app, "uploads_expired", "uploads").await;
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(
            (
                entries[0].actor_id.as_deref(),
                entries[0].actor_role.as_deref()
            ),
            (None, None)
        );
        assert_eq!(entries[0].after["removed"], json!(1));
        assert_eq!(entries[0].after["upload_ids"], json!([upload_id]));
        // Nothing left to remove: nothing recorded.
        assert_eq!(
            foodcheck::ops::uploads::sweep_expired(&app.state, &Ctx::system())
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            audit_entries(&app, "uploads_expired", "uploads")
                .await
                .len(),
            1
        );
    }

    /// A crash after the last part was stored with the final offset, but before the photo was
    /// attached (what SIGKILL in that window leaves behind): HEAD, PATCH and start-up each
    /// finish the upload from its parts in the database, so a client that sees the full
    /// offset and stops has not lost the photo.
    async fn crash_after_last_chunk_is_repaired(app: TestApp) {
        let photos: Vec<(String, Vec<u8>)> = (0..5u8)
            .map(|i| (Uuid::new_v4().to_string(), jpeg(40_000, 10 + i)))
            .collect();
        let refs: Vec<(&str, &[u8])> = photos
            .iter()
            .map(|(id, b)| (id.as_str(), b.as_slice()))
            .collect();
        let (token, _) = setup(&app, &refs).await;
        let ct = (
            "content-type",
            "application/offset+octet-stream".to_string(),
        );
        let mut locations = Vec::new();
        for (i, (id, bytes)) in photos.iter().enumerate() {
            let res = create(&app, &token, id, bytes).await;
            let location = res.headers()["location"].to_str().unwrap().to_string();
            let res = tus(
                &app,
                Method::PATCH,
                &location,
                &token,
                &[ct.clone(), ("upload-offset", "0".into())],
                bytes[..30_000].to_vec(),
            )
            .await;
            assert_eq!(res.status(), 204);
            let upload_id = location.rsplit('/').next().unwrap().to_string();
            if i == 4 {
                // The verified file was already in storage (a crash after storing it).
                let sha = hex_sha256(bytes);
                let dir = app.dir.path().join("blobs").join(&sha[..2]);
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join(&sha), bytes).unwrap();
            }
            // The crash window: the last part is stored and the offset says "all in", but
            // nothing attached the photo. The fourth lost its last part.
            if i != 3 {
                sqlx::query(
                    "INSERT INTO upload_parts (upload_id, staged, part_offset, bytes, created_at) \
                     VALUES ($1, '', 30000, $2, 0)",
                )
                .bind(&upload_id)
                .bind(bytes[30_000..].to_vec())
                .execute(app.db().pool())
                .await
                .unwrap();
            }
            sqlx::query("UPDATE uploads SET upload_offset = length WHERE id = $1")
                .bind(&upload_id)
                .execute(app.db().pool())
                .await
                .unwrap();
            locations.push(location);
        }
        let status = |id: String| {
            let app = &app;
            async move {
                let (s, b): (String, Option<String>) = sqlx::query_as(
                    "SELECT processing_status, blob_sha256 FROM photos WHERE id = $1",
                )
                .bind(id)
                .fetch_one(app.db().pool())
                .await
                .unwrap();
                (s, b.is_some())
            }
        };
        let attached = ("uploaded".to_string(), true);
        // HEAD (what tus-js-client and tuspy do on resume) finishes it.
        let res = tus(&app, Method::HEAD, &locations[0], &token, &[], vec![]).await;
        assert_eq!((res.status().as_u16(), offset(&res)), (200, 40_000));
        assert_eq!(status(photos[0].0.clone()).await, attached);
        // A retried final PATCH (zero bytes at the full offset) finishes it.
        let res = tus(
            &app,
            Method::PATCH,
            &locations[1],
            &token,
            &[ct.clone(), ("upload-offset", "40000".into())],
            vec![],
        )
        .await;
        assert_eq!((res.status().as_u16(), offset(&res)), (204, 40_000));
        assert_eq!(status(photos[1].0.clone()).await, attached);
        // Content already in storage: attached from the parts all the same.
        let res = tus(&app, Method::HEAD, &locations[4], &token, &[], vec![]).await;
        assert_eq!((res.status().as_u16(), offset(&res)), (200, 40_000));
        assert_eq!(status(photos[4].0.clone()).await, attached);
        // Start-up finishes the third without any client, and sets the fourth back to what
        // its parts hold.
        assert_eq!(
            foodcheck::ops::uploads::repair_stuck(&app.state, &Ctx::system())
                .await
                .unwrap(),
            2
        );
        assert_eq!(status(photos[2].0.clone()).await, attached);
        let res = tus(&app, Method::HEAD, &locations[3], &token, &[], vec![]).await;
        assert_eq!((res.status().as_u16(), offset(&res)), (200, 30_000));
        assert!(!status(photos[3].0.clone()).await.1);
        let res = tus(
            &app,
            Method::PATCH,
            &locations[3],
            &token,
            &[ct.clone(), ("upload-offset", "30000".into())],
            photos[3].1[30_000..].to_vec(),
        )
        .await;
        assert_eq!((res.status().as_u16(), offset(&res)), (204, 40_000));
        assert_eq!(status(photos[3].0.clone()).await, attached);
        // Each photo attached once, processing queued once each; no part left, and the
        // stored originals are the uploaded bytes.
        assert_eq!(
            foodcheck::ops::jobs::counts(app.db(), "photo.process")
                .await
                .unwrap(),
            vec![("queued".to_string(), 5)]
        );
        assert_eq!(stored_parts(&app).await, 0);
        for (_, bytes) in &photos {
            let sha = hex_sha256(bytes);
            let stored = std::fs::read(app.dir.path().join("blobs").join(&sha[..2]).join(&sha));
            assert_eq!(stored.unwrap(), *bytes);
        }
    }

    /// A per-user cap on the bytes that unfinished uploads reserve.
    async fn open_upload_bytes_are_capped(app: TestApp) {
        let spawn_cap = 100_000;
        assert_eq!(
            app.state.config.max_open_upload_bytes_per_user,
            spawn_cap as u64
        );
        let (p1, p2) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
        let (b1, b2) = (jpeg(60_000, 1), jpeg(60_000, 2));
        let (token, _) = setup(&app, &[(&p1, &b1), (&p2, &b2)]).await;
        let res = create(&app, &token, &p1, &b1).await;
        assert_eq!(res.status(), 201);
        let first = res.headers()["location"].to_str().unwrap().to_string();
        let res = create(&app, &token, &p2, &b2).await;
        assert_eq!(res.headers()["tus-resumable"], "1.0.0");
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_error(status, &body, 409, "open_uploads_limit");
        // Finishing (or terminating) the first frees its reservation.
        let res = tus(
            &app,
            Method::PATCH,
            &first,
            &token,
            &[
                (
                    "content-type",
                    "application/offset+octet-stream".to_string(),
                ),
                ("upload-offset", "0".into()),
            ],
            b1.clone(),
        )
        .await;
        assert_eq!(res.status(), 204);
        let res = create(&app, &token, &p2, &b2).await;
        assert_eq!((res.status().as_u16(), offset(&res)), (201, 0));
    }

    async fn spawn_capped(kind: crate::common::Kind) -> TestApp {
        TestApp::spawn_with(kind, |c| {
            c.run_workers = false;
            c.max_open_upload_bytes_per_user = 100_000;
        })
        .await
    }

    both_backends!(@spawn spawn; jobs_retry_with_backoff_then_fail, abandoned_uploads_expire,
        crash_after_last_chunk_is_repaired, jobs_are_claimed_once_across_instances);

    mod capped {
        use super::*;
        both_backends!(@spawn spawn_capped; open_upload_bytes_are_capped);
    }
}

/// Open uploads live in the database: any instance (here: one with a data directory of its
/// own, nothing on disk shared) takes the next chunk, and concurrent chunks stay consistent.
mod shared {
    use super::*;
    use crate::common::read_raw_response;
    use tokio::io::AsyncWriteExt;

    const MIB: usize = 1024 * 1024;

    async fn spawn(kind: crate::common::Kind) -> TestApp {
        TestApp::spawn_with(kind, |c| c.run_workers = false).await
    }

    /// A PATCH of `len` declared bytes on a raw connection; the caller writes the body.
    async fn raw_patch(
        app: &TestApp,
        location: &str,
        token: &str,
        at: usize,
        len: usize,
        extra: &str,
    ) -> tokio::net::TcpStream {
        let addr = app.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "PATCH {location} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n\
             Upload-Offset: {at}\r\n{extra}Content-Length: {len}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream
    }

    async fn db_offset(app: &TestApp, location: &str) -> i64 {
        let id = location.rsplit('/').next().unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT upload_offset FROM uploads WHERE id = $1")
            .bind(id)
            .fetch_one(app.db().pool())
            .await
            .unwrap();
        n
    }

    /// Waits (at most 10 s) until `done` holds.
    async fn until<F, Fut>(what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..1000 {
            if done().await {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("timed out waiting until {what}");
    }

    async fn original(app: &TestApp, token: &str, photo: &str) -> Vec<u8> {
        let res = app
            .client
            .get(app.url(&format!("/api/v1/photos/{photo}/original")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap().to_vec()
    }

    /// A PATCH cut off half way keeps its committed parts; after the instance that took them is
    /// gone, another instance (its own disk) reads the offset and the bytes from the database
    /// and the upload completes there.
    async fn cut_patch_resumes_on_another_instance(app: TestApp) {
        let photo = Uuid::new_v4().to_string();
        let bytes = jpeg(2 * MIB + MIB / 2, 21);
        let (token, _) = setup(&app, &[(&photo, &bytes)]).await;
        let res = create(&app, &token, &photo, &bytes).await;
        let location = res.headers()["location"].to_str().unwrap().to_string();
        // The whole file declared, 2.2 MiB sent, then the connection drops once two parts are
        // committed.
        let mut conn = raw_patch(&app, &location, &token, 0, bytes.len(), "").await;
        let sent = 2 * MIB + MIB / 5;
        conn.write_all(&bytes[..sent]).await.unwrap();
        until("two parts are committed", || async {
            db_offset(&app, &location).await >= 2 * MIB as i64
        })
        .await;
        drop(conn);
        let other = app.instance_with_own_disk().await;
        assert_ne!(other.state.config.data_dir, app.state.config.data_dir);
        let res = tus(&other, Method::HEAD, &location, &token, &[], vec![]).await;
        assert_eq!(res.status(), 200);
        let at = offset(&res) as usize;
        assert!(
            (2 * MIB..=sent).contains(&at),
            "the cut PATCH kept its committed parts: offset {at}"
        );
        let res = tus(
            &other,
            Method::PATCH,
            &location,
            &token,
            &[octet(), ("upload-offset", at.to_string())],
            bytes[at..].to_vec(),
        )
        .await;
        assert_eq!(
            (res.status().as_u16(), offset(&res)),
            (204, bytes.len() as i64)
        );
        // The bytes stored before the cut and after it make the file, byte for byte.
        assert_eq!(original(&other, &token, &photo).await, bytes);
        assert_eq!(
            stored_parts(&app).await,
            0,
            "the parts go once the file is stored"
        );
    }

    /// Two PATCHes at one offset, on two instances: one wins, the other gets 409
    /// `offset_mismatch`; with `Upload-Checksum` (staged parts) too.
    async fn concurrent_patches_at_one_offset(app: TestApp) {
        let photo = Uuid::new_v4().to_string();
        let bytes = jpeg(3 * MIB, 22);
        let (token, _) = setup(&app, &[(&photo, &bytes)]).await;
        let other = app.instance_with_own_disk().await;
        let res = create(&app, &token, &photo, &bytes).await;
        let location = res.headers()["location"].to_str().unwrap().to_string();
        // The first PATCH has sent half a part (nothing stored yet) when the second, at the
        // same offset, stores one and a half parts on the other instance.
        let first_len = MIB + MIB / 10;
        let mut first = raw_patch(&app, &location, &token, 0, first_len, "").await;
        first.write_all(&bytes[..MIB / 2]).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let second_len = MIB + MIB / 2;
        let res = tus(
            &other,
            Method::PATCH,
            &location,
            &token,
            &[octet(), ("upload-offset", "0".into())],
            bytes[..second_len].to_vec(),
        )
        .await;
        assert_eq!(
            (res.status().as_u16(), offset(&res)),
            (204, second_len as i64)
        );
        let _ = first.write_all(&bytes[MIB / 2..first_len]).await;
        let (status, body) = read_raw_response(first).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"]["code"], "offset_mismatch");
        assert_eq!(db_offset(&app, &location).await, second_len as i64);

        // Checksummed: the first stages a part and waits; the second's whole chunk is staged,
        // verified and counted, and completes the upload; the first then loses.
        let rest = &bytes[second_len..];
        let digest = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(rest))
        };
        let sum = format!("Upload-Checksum: sha256 {digest}\r\n");
        let mut first = raw_patch(&app, &location, &token, second_len, rest.len(), &sum).await;
        first.write_all(&rest[..MIB + MIB / 10]).await.unwrap();
        until("the first chunk staged a part", || async {
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM upload_parts WHERE staged <> ''")
                    .fetch_one(app.db().pool())
                    .await
                    .unwrap();
            n == 1
        })
        .await;
        assert_eq!(
            db_offset(&app, &location).await,
            second_len as i64,
            "a staged part does not count"
        );
        let res = tus(
            &other,
            Method::PATCH,
            &location,
            &token,
            &[
                octet(),
                ("upload-offset", second_len.to_string()),
                ("upload-checksum", format!("sha256 {digest}")),
            ],
            rest.to_vec(),
        )
        .await;
        assert_eq!(
            (res.status().as_u16(), offset(&res)),
            (204, bytes.len() as i64)
        );
        let _ = first.write_all(&rest[MIB + MIB / 10..]).await;
        let (status, body) = read_raw_response(first).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"]["code"], "offset_mismatch");
        assert_eq!(original(&other, &token, &photo).await, bytes);
        assert_eq!(stored_parts(&app).await, 0, "no part is left behind");
    }

    /// An upload terminated on one instance while a chunk is still arriving on the other: the
    /// chunk gets 409 (not a server error), nothing of it stays.
    async fn terminated_while_a_chunk_arrives(app: TestApp) {
        let photo = Uuid::new_v4().to_string();
        let bytes = jpeg(2 * MIB, 23);
        let (token, _) = setup(&app, &[(&photo, &bytes)]).await;
        let other = app.instance_with_own_disk().await;
        for checksummed in [true, false] {
            let res = create(&app, &token, &photo, &bytes).await;
            assert_eq!(res.status(), 201);
            let location = res.headers()["location"].to_str().unwrap().to_string();
            let extra = if checksummed {
                use base64::Engine;
                let digest =
                    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes));
                format!("Upload-Checksum: sha256 {digest}\r\n")
            } else {
                String::new()
            };
            let mut conn = raw_patch(&app, &location, &token, 0, bytes.len(), &extra).await;
            conn.write_all(&bytes[..MIB + MIB / 10]).await.unwrap();
            until("a part is stored", || async {
                stored_parts(&app).await == 1
            })
            .await;
            let res = tus(&other, Method::DELETE, &location, &token, &[], vec![]).await;
            assert_eq!(res.status(), 204);
            let _ = conn.write_all(&bytes[MIB + MIB / 10..]).await;
            let (status, body) = read_raw_response(conn).await;
            assert_eq!(status, 409, "checksummed {checksummed}: {body}");
            assert_eq!(body["error"]["code"], "offset_mismatch");
            assert_eq!(stored_parts(&app).await, 0, "checksummed {checksummed}");
        }
    }

    both_backends!(@spawn spawn; cut_patch_resumes_on_another_instance,
        concurrent_patches_at_one_offset, terminated_while_a_chunk_arrives);
}

const TEMPLATE: &str = "00000000-0000-4000-8000-000000002016";

/// A JPEG-looking file of `n` bytes (JPEG signature, then deterministic noise).
fn jpeg(n: usize, seed: u8) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
    v.extend((0..n - 4).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    v
}

/// Parts of open uploads stored in the database (staged or counted).
pub(crate) async fn stored_parts(app: &TestApp) -> usize {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM upload_parts")
        .fetch_one(app.db().pool())
        .await
        .unwrap();
    n as usize
}

pub(crate) async fn count_blobs(app: &TestApp) -> i64 {
    let mut conn = app.db().acquire().await.unwrap();
    foodcheck::store::uploads::count_blobs(&mut conn)
        .await
        .unwrap()
}

pub(crate) fn hex_sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

pub(crate) fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// An inspector with a task, an inspection and the given photo records synced.
async fn setup(app: &TestApp, photos: &[(&str, &[u8])]) -> (String, String) {
    let admin = app.token_for("admin", Role::Admin).await;
    let a = app.user("insp-a", Role::Inspector).await;
    let b = app.user("insp-b", Role::Inspector).await;
    app.user("outsider", Role::Inspector).await;
    let (s, e) = app
        .post("/api/v1/establishments", &admin, json!({"sign_name": "店", "licensed_name": "公司", "license_no": "JY21201150000001",
            "category": "small_restaurant", "address": "地址", "town": "周良街道", "risk_grade": "C"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    let token =
        team_with_photos(app, &admin, ("insp-a", &a), ("insp-b", &b), "phone", photos).await;
    (token, admin)
}

/// Another team (inspectors c and d, their own plan and task on the same establishment) with
/// an inspection holding the given photo records; returns c's token.
async fn second_team(app: &TestApp, admin: &str, photos: &[(&str, &[u8])]) -> String {
    let c = app.user("insp-c", Role::Inspector).await;
    let d = app.user("insp-d", Role::Inspector).await;
    team_with_photos(
        app,
        admin,
        ("insp-c", &c),
        ("insp-d", &d),
        "phone-c",
        photos,
    )
    .await
}

/// A plan drawn for the team of `first` and `second` (username, id) on the C-grade
/// establishment, and an inspection of its task synced by `first` from `device` with the given
/// photo records; returns `first`'s token.
async fn team_with_photos(
    app: &TestApp,
    admin: &str,
    first: (&str, &str),
    second: (&str, &str),
    device: &str,
    photos: &[(&str, &[u8])],
) -> String {
    let (s, plan) = app
        .post("/api/v1/plans", admin, json!({"name": format!("plan of {}", first.0), "round_title": "r", "theme": "t", "period_start": "2024-03-01",
            "period_end": "2024-03-31", "due_date": "2099-01-01", "template_id": TEMPLATE, "template_version": 1,
            "quotas": {"explicit": {"C": 1}}, "inspector_ids": [first.1, second.1], "team_size": 2}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{plan}");
    let (s, draw) = app
        .post(
            &format!("/api/v1/plans/{}/draw", plan["id"].as_str().unwrap()),
            admin,
            json!({"seed": first.0}),
        )
        .await;
    assert!(s.is_success(), "{draw}");
    let token = app.login_full(first.0, device).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, p) = app
        .get("/api/v1/sync?last_pulled_at=null&schema_version=2", &token)
        .await;
    let task = &p["changes"]["tasks"]["created"][0];
    let iid = Uuid::new_v4().to_string();
    let records: Vec<Value> = photos
        .iter()
        .map(|(id, bytes)| json!({"id": id, "inspection_id": iid, "item_code": null, "sha256": hex_sha256(bytes), "byte_size": bytes.len(), "taken_at": 1_710_000_000_000i64}))
        .collect();
    let (s, r) = app
        .post(&format!("/api/v1/sync?last_pulled_at={}", p["timestamp"]), &token,
            json!({"changes": {"inspections": {"created": [{"id": iid, "task_id": task["id"], "establishment_id": task["establishment_id"],
                "started_at": 1_710_000_000_000i64, "team": "[]", "representative_signed": false, "representative_refused": false, "submitted": false}]},
                "photos": {"created": records}}}))
        .await;
    assert_eq!((s, r), (StatusCode::OK, json!({})));
    token
}

pub(crate) async fn tus(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.body(body).send().await.unwrap()
}

pub(crate) fn offset(res: &reqwest::Response) -> i64 {
    res.headers()["upload-offset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn create(app: &TestApp, token: &str, photo: &str, bytes: &[u8]) -> reqwest::Response {
    let meta = format!(
        "photo_id {},sha256 {},filename {}",
        b64(photo),
        b64(&hex_sha256(bytes)),
        b64("IMG_0001.jpg")
    );
    tus(
        app,
        Method::POST,
        "/api/v1/uploads",
        token,
        &[
            ("upload-length", bytes.len().to_string()),
            ("upload-metadata", meta),
        ],
        vec![],
    )
    .await
}

async fn tus_upload_resumes_verifies_and_dedupes(app: TestApp) {
    let photo = Uuid::new_v4().to_string();
    let twin = Uuid::new_v4().to_string();
    let bytes = jpeg(300_000, 7);
    let (token, admin) = setup(&app, &[(&photo, &bytes), (&twin, &bytes)]).await;
    let res = tus(
        &app,
        Method::OPTIONS,
        "/api/v1/uploads",
        &token,
        &[],
        vec![],
    )
    .await;
    assert_eq!(res.status(), 204);
    assert!(res.headers()["tus-extension"]
        .to_str()
        .unwrap()
        .contains("checksum"));
    assert_eq!(res.headers()["tus-checksum-algorithm"], "sha1,sha256");

    let res = create(&app, &token, &photo, &bytes).await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(offset(&res), 0);
    assert!(res.headers().contains_key("upload-expires"));
    // First chunk with a correct sha1 checksum.
    let chunk = |from: usize, to: usize| bytes[from..to].to_vec();
    let sum = |b: &[u8], alg: &str| {
        use base64::Engine;
        let d = match alg {
            "sha1" => sha1::Sha1::digest(b).to_vec(),
            _ => Sha256::digest(b).to_vec(),
        };
        format!(
            "{alg} {}",
            base64::engine::general_purpose::STANDARD.encode(d)
        )
    };
    let ct = (
        "content-type",
        "application/offset+octet-stream".to_string(),
    );
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[
            ct.clone(),
            ("upload-offset", "0".into()),
            ("upload-checksum", sum(&chunk(0, 100_000), "sha1")),
        ],
        chunk(0, 100_000),
    )
    .await;
    assert_eq!((res.status().as_u16(), offset(&res)), (204, 100_000));
    // A corrupted chunk: 460 and the offset stays where it was.
    let mut bad = chunk(100_000, 200_000);
    bad[5] ^= 0xFF;
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[
            ct.clone(),
            ("upload-offset", "100000".into()),
            ("upload-checksum", sum(&chunk(100_000, 200_000), "sha256")),
        ],
        bad,
    )
    .await;
    assert_eq!(res.status().as_u16(), 460);
    let res = tus(&app, Method::HEAD, &location, &token, &[], vec![]).await;
    assert_eq!(
        (
            offset(&res),
            res.headers()["upload-length"].to_str().unwrap()
        ),
        (100_000, "300000")
    );
    // A wrong offset is a conflict.
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[ct.clone(), ("upload-offset", "5".into())],
        chunk(5, 10),
    )
    .await;
    assert_eq!(res.status(), 409);
    // Resume from the stored offset to the end.
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[ct.clone(), ("upload-offset", "100000".into())],
        chunk(100_000, 300_000),
    )
    .await;
    assert_eq!((res.status().as_u16(), offset(&res)), (204, 300_000));
    // The photo record shows the upload on the next pull; the file is stored byte for byte.
    let (_, p) = app
        .get("/api/v1/sync?last_pulled_at=null&schema_version=2", &token)
        .await;
    let rec = p["changes"]["photos"]["created"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == photo.as_str())
        .unwrap()
        .clone();
    assert_eq!(rec["processing_status"], "uploaded");
    let stored = std::fs::read(
        app.dir
            .path()
            .join("blobs")
            .join(&hex_sha256(&bytes)[..2])
            .join(hex_sha256(&bytes)),
    )
    .unwrap();
    assert_eq!(stored, bytes);
    // The same bytes for another photo record: stored once, complete at creation.
    let res = create(&app, &token, &twin, &bytes).await;
    assert_eq!((res.status().as_u16(), offset(&res)), (201, 300_000));
    assert_eq!(count_blobs(&app).await, 1);
    // Reviewers see the record; uploads are the inspectors'.
    let res = create(&app, &admin, &photo, &bytes).await;
    assert_eq!(res.status(), 403);
}

async fn tus_refusals(app: TestApp) {
    let photo = Uuid::new_v4().to_string();
    let other = Uuid::new_v4().to_string();
    let text = Uuid::new_v4().to_string();
    let bytes = jpeg(50_000, 1);
    let not_image = b"just some text, certainly not a photo".repeat(100);
    let (token, _) = setup(
        &app,
        &[
            (&photo, &bytes),
            (&other, &jpeg(50_000, 2)),
            (&text, &not_image),
        ],
    )
    .await;
    // Missing Tus-Resumable.
    let res = app
        .client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 412);
    // Over the size limit.
    let meta = format!(
        "photo_id {},sha256 {}",
        b64(&photo),
        b64(&hex_sha256(&bytes))
    );
    let res = tus(
        &app,
        Method::POST,
        "/api/v1/uploads",
        &token,
        &[
            ("upload-length", (30 * 1024 * 1024).to_string()),
            ("upload-metadata", meta),
        ],
        vec![],
    )
    .await;
    assert_eq!(res.status(), 413);
    // A declared sha256 that is not the record's.
    let meta = format!("photo_id {},sha256 {}", b64(&photo), b64(&"0".repeat(64)));
    let res = tus(
        &app,
        Method::POST,
        "/api/v1/uploads",
        &token,
        &[
            ("upload-length", bytes.len().to_string()),
            ("upload-metadata", meta),
        ],
        vec![],
    )
    .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_error(status, &body, 409, "sha256_mismatch");
    // Someone else's photo record: an inspector outside the team is told nothing.
    let outsider = app.login_full("outsider", "phone").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let res = create(&app, &outsider, &photo, &bytes).await;
    assert_eq!(res.status(), 404);
    // ...and cannot touch another's upload either.
    let res = create(&app, &token, &photo, &bytes).await;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let res = tus(&app, Method::HEAD, &location, &outsider, &[], vec![]).await;
    assert_eq!(res.status(), 404);
    // Bytes that do not hash to the declared sha256 are refused and removed.
    let ct = (
        "content-type",
        "application/offset+octet-stream".to_string(),
    );
    let mut wrong = bytes.clone();
    wrong[100] ^= 1;
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[ct.clone(), ("upload-offset", "0".into())],
        wrong,
    )
    .await;
    assert_eq!(res.status(), 409);
    let res = tus(&app, Method::HEAD, &location, &token, &[], vec![]).await;
    assert_eq!(res.status(), 404, "a refused upload is gone");
    assert_eq!(stored_parts(&app).await, 0, "partial data removed");
    // Not an image: 415 on completion, nothing stored.
    let res = create(&app, &token, &text, &not_image).await;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[ct.clone(), ("upload-offset", "0".into())],
        not_image.clone(),
    )
    .await;
    assert_eq!(res.status(), 415);
    assert_eq!(count_blobs(&app).await, 0);
    // Termination.
    let res = create(&app, &token, &other, &jpeg(50_000, 2)).await;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let res = tus(&app, Method::DELETE, &location, &token, &[], vec![]).await;
    assert_eq!(res.status(), 204);
    let res = tus(&app, Method::HEAD, &location, &token, &[], vec![]).await;
    assert_eq!(res.status(), 404);
    // Wrong content type on PATCH.
    let res = create(&app, &token, &other, &jpeg(50_000, 2)).await;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[("upload-offset", "0".into())],
        vec![1, 2, 3],
    )
    .await;
    assert_eq!(res.status(), 415);
}

/// A real JPEG (encoded by the image crate), `w` × `h`.
fn real_jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .unwrap();
    out
}

async fn processing_and_download(app: TestApp) {
    let photo = Uuid::new_v4().to_string();
    let bytes = real_jpeg(1200, 900);
    let (token, admin) = setup(&app, &[(&photo, &bytes)]).await;
    let res = create(&app, &token, &photo, &bytes).await;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let ct = (
        "content-type",
        "application/offset+octet-stream".to_string(),
    );
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[ct, ("upload-offset", "0".into())],
        bytes.clone(),
    )
    .await;
    assert_eq!(res.status(), 204);
    // Processing runs from the job queue, off the request path.
    let mut status = String::new();
    for _ in 0..100 {
        let (s,): (String,) = sqlx::query_as("SELECT processing_status FROM photos WHERE id = $1")
            .bind(&photo)
            .fetch_one(app.db().pool())
            .await
            .unwrap();
        status = s;
        if status == "processed" || status == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "processed");
    let (w, h, flags): (Option<i64>, Option<i64>, Option<String>) =
        sqlx::query_as("SELECT width, height, flags FROM photos WHERE id = $1")
            .bind(&photo)
            .fetch_one(app.db().pool())
            .await
            .unwrap();
    assert_eq!((w, h), (Some(1200), Some(900)));
    // The establishment has no registered location: the reviewer is told it cannot be checked.
    assert!(flags.unwrap().contains("no_location"));
    // Devices on schema 3 see what processing found on their next pull; schema 2 devices get
    // the status only.
    let (_, p3) = app
        .get("/api/v1/sync?last_pulled_at=null&schema_version=3", &token)
        .await;
    let rec = &p3["changes"]["photos"]["created"][0];
    assert_eq!(
        (
            rec["processing_status"].as_str(),
            rec["width"].as_i64(),
            rec["height"].as_i64()
        ),
        (Some("processed"), Some(1200), Some(900))
    );
    assert_eq!(rec["flags"], json!("[\"no_location\"]"));
    let (_, p2) = app
        .get("/api/v1/sync?last_pulled_at=null&schema_version=2", &token)
        .await;
    assert!(p2["changes"]["photos"]["created"][0].get("flags").is_none());
    let get = |path: String, token: String, extra: Option<(&'static str, String)>| {
        let mut req = app.client.get(app.url(&path)).bearer_auth(token);
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        req.send()
    };
    let res = get(
        format!("/api/v1/photos/{photo}/original"),
        token.clone(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(
        res.bytes().await.unwrap().to_vec(),
        bytes,
        "the original is kept byte for byte"
    );
    let res = get(
        format!("/api/v1/photos/{photo}/thumbnail"),
        token.clone(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let thumb = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (320, 240));
    let res = get(
        format!("/api/v1/photos/{photo}/preview"),
        admin.clone(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let res = get(
        format!("/api/v1/photos/{photo}/original"),
        token.clone(),
        Some(("range", "bytes=10-19".into())),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(
        res.headers()["content-range"].to_str().unwrap(),
        format!("bytes 10-19/{}", bytes.len())
    );
    assert_eq!(res.bytes().await.unwrap().to_vec(), bytes[10..20].to_vec());
    let res = get(
        format!("/api/v1/photos/{photo}/original"),
        token.clone(),
        Some(("range", format!("bytes={}-", bytes.len() + 5))),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 416);
    let res = get(
        format!("/api/v1/photos/{photo}/original"),
        token.clone(),
        Some(("if-none-match", etag)),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 304);
    let outsider = app.login_full("outsider", "phone").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let res = get(format!("/api/v1/photos/{photo}/original"), outsider, None)
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let lab = app.token_for("labby", Role::Lab).await;
    let res = get(format!("/api/v1/photos/{photo}/thumbnail"), lab, None)
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = get(format!("/api/v1/photos/{photo}/raw"), token, None)
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        foodcheck::ops::jobs::counts(app.db(), "photo.process")
            .await
            .unwrap(),
        vec![("done".to_string(), 1)]
    );
}

fn octet() -> (&'static str, String) {
    (
        "content-type",
        "application/offset+octet-stream".to_string(),
    )
}

/// Knowing another team's photo sha256 and size is not enough to get the file: an upload
/// from outside the team that holds the content has to send the bytes.
async fn dedupe_never_skips_proof_of_possession(app: TestApp) {
    let photo = Uuid::new_v4().to_string();
    let bytes = jpeg(80_000, 5);
    let (token, admin) = setup(&app, &[(&photo, &bytes)]).await;
    let res = create(&app, &token, &photo, &bytes).await;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[octet(), ("upload-offset", "0".into())],
        bytes.clone(),
    )
    .await;
    assert_eq!(res.status(), 204);
    // Team B claims the same content for a record of its own.
    let copy = Uuid::new_v4().to_string();
    let thief = second_team(&app, &admin, &[(&copy, &bytes)]).await;
    let res = create(&app, &thief, &copy, &bytes).await;
    assert_eq!(
        (res.status().as_u16(), offset(&res)),
        (201, 0),
        "no shortcut without the bytes"
    );
    let theirs = res.headers()["location"].to_str().unwrap().to_string();
    let res = app
        .client
        .get(app.url(&format!("/api/v1/photos/{copy}/original")))
        .bearer_auth(&thief)
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), 200, "the other team's original is not served");
    let (blob,): (Option<String>,) = sqlx::query_as("SELECT blob_sha256 FROM photos WHERE id = $1")
        .bind(&copy)
        .fetch_one(app.db().pool())
        .await
        .unwrap();
    assert_eq!(blob, None);
    // Sending the bytes is proof: then the record gets the (single stored) content.
    let res = tus(
        &app,
        Method::PATCH,
        &theirs,
        &thief,
        &[octet(), ("upload-offset", "0".into())],
        bytes.clone(),
    )
    .await;
    assert_eq!((res.status().as_u16(), offset(&res)), (204, 80_000));
    let res = app
        .client
        .get(app.url(&format!("/api/v1/photos/{copy}/original")))
        .bearer_auth(&thief)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().to_vec(), bytes);
    assert_eq!(count_blobs(&app).await, 1);
}

/// A repeated POST for a photo record goes on with the caller's open upload; a team mate's
/// POST replaces it; never two open uploads for one record.
async fn one_open_upload_per_record(app: TestApp) {
    let photo = Uuid::new_v4().to_string();
    let bytes = jpeg(60_000, 9);
    let (token, _) = setup(&app, &[(&photo, &bytes)]).await;
    let res = create(&app, &token, &photo, &bytes).await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[octet(), ("upload-offset", "0".into())],
        bytes[..5000].to_vec(),
    )
    .await;
    assert_eq!(res.status(), 204);
    for _ in 0..5 {
        let res = create(&app, &token, &photo, &bytes).await;
        assert_eq!(res.status(), 201);
        assert_eq!(res.headers()["location"].to_str().unwrap(), location);
        assert_eq!(
            offset(&res),
            5000,
            "the open upload goes on from its offset"
        );
    }
    let open = |app: &TestApp| {
        let pool = app.db().pool().clone();
        let photo = photo.clone();
        async move {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM uploads WHERE photo_id = $1 AND completed = 0",
            )
            .bind(photo)
            .fetch_one(&pool)
            .await
            .unwrap();
            n
        }
    };
    assert_eq!(open(&app).await, 1);
    // Team mate b (another device) starts over: a's upload is replaced, its data removed.
    let b = app.login_full("insp-b", "tablet").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let res = create(&app, &b, &photo, &bytes).await;
    assert_eq!((res.status().as_u16(), offset(&res)), (201, 0));
    let mine = res.headers()["location"].to_str().unwrap().to_string();
    assert_ne!(mine, location);
    assert_eq!(open(&app).await, 1);
    let res = tus(&app, Method::HEAD, &location, &token, &[], vec![]).await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        stored_parts(&app).await,
        0,
        "the replaced upload's parts are gone"
    );
    let res = tus(
        &app,
        Method::PATCH,
        &mine,
        &b,
        &[octet(), ("upload-offset", "0".into())],
        bytes.clone(),
    )
    .await;
    assert_eq!((res.status().as_u16(), offset(&res)), (204, 60_000));
}

/// An ISO-BMFF HEIC header (`ftypheic`), then filler: what an iPhone sends by default.
fn heic(n: usize) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 0x18];
    v.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
    v.extend((v.len()..n).map(|i| (i % 251) as u8));
    v
}

/// The first bytes decide the type: a HEIC is refused at its first chunk, and the photo
/// record says why (devices see `failed`).
async fn type_refused_at_first_chunk(app: TestApp) {
    let photo = Uuid::new_v4().to_string();
    let split = Uuid::new_v4().to_string();
    let bytes = heic(400_000);
    let png = {
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        v.extend((0..30_000).map(|i| (i % 7) as u8));
        v
    };
    let (token, _) = setup(&app, &[(&photo, &bytes), (&split, &png)]).await;
    let res = create(&app, &token, &photo, &bytes).await;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[octet(), ("upload-offset", "0".into())],
        bytes[..100_000].to_vec(),
    )
    .await;
    assert_eq!(res.headers()["tus-resumable"], "1.0.0");
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_error(status, &body, 415, "unsupported_media_type");
    assert!(body["error"]["message"].as_str().unwrap().contains("HEIC"));
    let res = tus(&app, Method::HEAD, &location, &token, &[], vec![]).await;
    assert_eq!(res.status(), 404, "the refused upload is gone");
    assert_eq!(stored_parts(&app).await, 0, "no partial data kept");
    let (st, err): (String, Option<String>) =
        sqlx::query_as("SELECT processing_status, processing_error FROM photos WHERE id = $1")
            .bind(&photo)
            .fetch_one(app.db().pool())
            .await
            .unwrap();
    assert_eq!(st, "failed");
    assert!(err.unwrap().contains("HEIC"));
    let (_, p) = app
        .get("/api/v1/sync?last_pulled_at=null&schema_version=2", &token)
        .await;
    let rec = p["changes"]["photos"]["created"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == photo.as_str())
        .unwrap()
        .clone();
    assert_eq!(rec["processing_status"], "failed");
    assert!(
        rec.get("processing_error").is_none(),
        "schema 2 has no such column"
    );
    // Schema 4: the device learns why, so the inspector can take the photo again.
    let (_, p4) = app
        .get("/api/v1/sync?last_pulled_at=null&schema_version=4", &token)
        .await;
    let rec4 = p4["changes"]["photos"]["created"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == photo.as_str())
        .unwrap()
        .clone();
    assert!(
        rec4["processing_error"].as_str().unwrap().contains("HEIC"),
        "{rec4}"
    );
    // A first chunk too short to decide (5 bytes of a PNG signature) is kept; the next decides.
    let res = create(&app, &token, &split, &png).await;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[octet(), ("upload-offset", "0".into())],
        png[..5].to_vec(),
    )
    .await;
    assert_eq!((res.status().as_u16(), offset(&res)), (204, 5));
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[octet(), ("upload-offset", "5".into())],
        png[5..].to_vec(),
    )
    .await;
    assert_eq!(
        (res.status().as_u16(), offset(&res)),
        (204, png.len() as i64)
    );
}

/// tus: `Tus-Resumable` on every response of the upload endpoints, errors included.
async fn tus_resumable_on_every_response(app: TestApp) {
    let photo = Uuid::new_v4().to_string();
    let bytes = jpeg(20_000, 4);
    let (token, _) = setup(&app, &[(&photo, &bytes)]).await;
    let unknown = format!("/api/v1/uploads/{}", Uuid::new_v4());
    let mut seen = Vec::new();
    // 404 (unknown upload), 401 (no token), 412 (no Tus-Resumable), 409 (wrong offset).
    let res = tus(&app, Method::HEAD, &unknown, &token, &[], vec![]).await;
    seen.push((
        res.status().as_u16(),
        res.headers().get("tus-resumable").cloned(),
    ));
    let res = app
        .client
        .head(app.url(&unknown))
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    seen.push((
        res.status().as_u16(),
        res.headers().get("tus-resumable").cloned(),
    ));
    let res = app
        .client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    seen.push((
        res.status().as_u16(),
        res.headers().get("tus-resumable").cloned(),
    ));
    let res = create(&app, &token, &photo, &bytes).await;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[octet(), ("upload-offset", "7".into())],
        bytes[7..10].to_vec(),
    )
    .await;
    seen.push((
        res.status().as_u16(),
        res.headers().get("tus-resumable").cloned(),
    ));
    let v = Some(reqwest::header::HeaderValue::from_static("1.0.0"));
    assert_eq!(
        seen,
        vec![
            (404, v.clone()),
            (401, v.clone()),
            (412, v.clone()),
            (409, v.clone())
        ]
    );
}

/// One audit entry as stored: who (user, role, device), which request, and the changes by
/// field (`{field: after}`, plus `before` when a field had one).
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) actor_id: Option<String>,
    pub(crate) actor_role: Option<String>,
    pub(crate) device_id: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) after: serde_json::Map<String, Value>,
    pub(crate) before: serde_json::Map<String, Value>,
}

pub(crate) async fn audit_entries(app: &TestApp, action: &str, record_id: &str) -> Vec<Entry> {
    type Row = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT actor_id, actor_role, device_id, request_id, changes FROM audit_events \
         WHERE action = $1 AND record_id = $2 ORDER BY id",
    )
    .bind(action)
    .bind(record_id)
    .fetch_all(app.db().pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(actor_id, actor_role, device_id, request_id, changes)| {
            let changes: Vec<Value> = serde_json::from_str(&changes).unwrap();
            let mut after = serde_json::Map::new();
            let mut before = serde_json::Map::new();
            for c in changes {
                let field = c["field"].as_str().unwrap().to_string();
                after.insert(field.clone(), c["after"].clone());
                before.insert(field, c["before"].clone());
            }
            Entry {
                actor_id,
                actor_role,
                device_id,
                request_id,
                after,
                before,
            }
        })
        .collect()
}

async fn user_id(app: &TestApp, username: &str) -> String {
    let (id,): (String,) = sqlx::query_as("SELECT id FROM users WHERE username = $1")
        .bind(username)
        .fetch_one(app.db().pool())
        .await
        .unwrap();
    id
}

fn request_id(id: &str) -> (&'static str, String) {
    ("x-request-id", id.to_string())
}

/// A finished upload records `photo_uploaded` with the caller (user, role, device) and the
/// request id, the content and the upload, in the transaction that attaches the file; content
/// the team already holds records it as deduplicated. Processing records `photo_processed`
/// (system). Downloads of the original record `evidence_downloaded` (whole file or range);
/// previews, thumbnails, 304s and refused downloads record nothing.
async fn uploads_and_evidence_downloads_are_audited(app: TestApp) {
    let photo = Uuid::new_v4().to_string();
    let twin = Uuid::new_v4().to_string();
    let bytes = real_jpeg(640, 480);
    let (token, admin) = setup(&app, &[(&photo, &bytes), (&twin, &bytes)]).await;
    let insp_a = user_id(&app, "insp-a").await;
    let sha = hex_sha256(&bytes);
    let res = create(&app, &token, &photo, &bytes).await;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let upload_id = location.rsplit('/').next().unwrap().to_string();
    let half = bytes.len() / 2;
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[
            octet(),
            ("upload-offset", "0".into()),
            request_id("req-chunk"),
        ],
        bytes[..half].to_vec(),
    )
    .await;
    assert_eq!(res.status(), 204);
    assert!(
        audit_entries(&app, "photo_uploaded", &photo)
            .await
            .is_empty(),
        "nothing is recorded before the file is attached"
    );
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[
            octet(),
            ("upload-offset", half.to_string()),
            request_id("req-last-chunk"),
        ],
        bytes[half..].to_vec(),
    )
    .await;
    assert_eq!(res.status(), 204);
    let entries = audit_entries(&app, "photo_uploaded", &photo).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(
        (
            e.actor_id.as_deref(),
            e.actor_role.as_deref(),
            e.device_id.as_deref(),
            e.request_id.as_deref()
        ),
        (
            Some(insp_a.as_str()),
            Some("inspector"),
            Some("phone"),
            Some("req-last-chunk")
        )
    );
    assert_eq!(e.after["sha256"], json!(sha));
    assert_eq!(e.after["byte_size"], json!(bytes.len()));
    assert_eq!(e.after["upload_id"], json!(upload_id));
    assert_eq!(e.after["media_type"], json!("image/jpeg"));
    assert_eq!(e.after["deduplicated"], json!(false));
    assert_eq!(e.after["new_content"], json!(true));
    assert_eq!(
        (
            &e.before["processing_status"],
            &e.after["processing_status"]
        ),
        (&json!("awaiting_upload"), &json!("uploaded"))
    );
    // The same content for the team's other record: complete at creation, deduplicated.
    let meta = format!("photo_id {},sha256 {}", b64(&twin), b64(&sha));
    let res = tus(
        &app,
        Method::POST,
        "/api/v1/uploads",
        &token,
        &[
            ("upload-length", bytes.len().to_string()),
            ("upload-metadata", meta),
            request_id("req-twin"),
        ],
        vec![],
    )
    .await;
    assert_eq!(
        (res.status().as_u16(), offset(&res)),
        (201, bytes.len() as i64)
    );
    let entries = audit_entries(&app, "photo_uploaded", &twin).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].request_id.as_deref(), Some("req-twin"));
    assert_eq!(entries[0].after["deduplicated"], json!(true));
    assert_eq!(entries[0].after["new_content"], json!(false));
    assert_eq!(entries[0].after["sha256"], json!(sha));

    // Processing (the worker, no user) records what it made.
    let mut processed = Vec::new();
    for _ in 0..100 {
        processed = audit_entries(&app, "photo_processed", &photo).await;
        if !processed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(processed.len(), 1, "{processed:?}");
    let p = &processed[0];
    assert_eq!(
        (p.actor_id.as_deref(), p.request_id.as_deref()),
        (None, None)
    );
    assert_eq!(p.after["processing_status"], json!("processed"));
    assert_eq!(p.before["processing_status"], json!("uploaded"));
    assert_eq!(p.after["renditions"], json!(["thumbnail", "preview"]));
    assert_eq!(
        (&p.after["width"], &p.after["height"]),
        (&json!(640), &json!(480))
    );

    let get = |path: String, token: &str, extra: Vec<(&'static str, String)>| {
        let mut req = app.client.get(app.url(&path)).bearer_auth(token);
        for (k, v) in extra {
            req = req.header(k, v);
        }
        req.send()
    };
    let original = format!("/api/v1/photos/{photo}/original");
    let res = get(original.clone(), &admin, vec![request_id("req-dl-1")])
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(res.bytes().await.unwrap().to_vec(), bytes);
    let res = get(
        original.clone(),
        &token,
        vec![request_id("req-dl-2"), ("range", "bytes=10-19".into())],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 206);
    // Not recorded: renditions, a 304 (nothing sent), another team's inspector (404).
    for variant in ["thumbnail", "preview"] {
        let res = get(format!("/api/v1/photos/{photo}/{variant}"), &token, vec![])
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{variant}");
    }
    let res = get(original.clone(), &token, vec![("if-none-match", etag)])
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    let outsider = app.login_full("outsider", "phone-o").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let res = get(original.clone(), &outsider, vec![]).await.unwrap();
    assert_eq!(res.status(), 404);

    let downloads = audit_entries(&app, "evidence_downloaded", &photo).await;
    assert_eq!(downloads.len(), 2, "{downloads:?}");
    let admin_id = user_id(&app, "admin").await;
    let who: Vec<_> = downloads
        .iter()
        .map(|d| {
            (
                d.actor_id.clone().unwrap(),
                d.actor_role.clone().unwrap(),
                d.request_id.clone().unwrap(),
                d.after.get("range").cloned(),
            )
        })
        .collect();
    assert_eq!(
        who,
        vec![
            (admin_id, "admin".into(), "req-dl-1".into(), None),
            (
                insp_a,
                "inspector".into(),
                "req-dl-2".into(),
                Some(json!(format!("10-19/{}", bytes.len())))
            ),
        ]
    );
    assert_eq!(downloads[0].after["sha256"], json!(sha));
}

/// An upload discarded for what it holds records `photo_upload_refused` with the reason code
/// the client saw: the type at the first chunk (and the record marked failed), or a file that
/// does not hash to the declared sha256. Refusals that write nothing record nothing.
async fn refused_uploads_are_audited(app: TestApp) {
    let heic_photo = Uuid::new_v4().to_string();
    let liar = Uuid::new_v4().to_string();
    let heic_bytes = heic(30_000);
    let declared = jpeg(30_000, 5);
    let (token, _) = setup(&app, &[(&heic_photo, &heic_bytes), (&liar, &declared)]).await;
    let insp_a = user_id(&app, "insp-a").await;

    let res = create(&app, &token, &heic_photo, &heic_bytes).await;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let upload_id = location.rsplit('/').next().unwrap().to_string();
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[
            octet(),
            ("upload-offset", "0".into()),
            request_id("req-heic"),
        ],
        heic_bytes.clone(),
    )
    .await;
    assert_eq!(res.status(), 415);
    let entries = audit_entries(&app, "photo_upload_refused", &heic_photo).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(
        (
            e.actor_id.as_deref(),
            e.actor_role.as_deref(),
            e.request_id.as_deref()
        ),
        (Some(insp_a.as_str()), Some("inspector"), Some("req-heic"))
    );
    assert_eq!(e.after["reason"], json!("unsupported_media_type"));
    assert_eq!(e.after["upload_id"], json!(upload_id));
    assert_eq!(e.after["processing_status"], json!("failed"));
    assert!(e.after["message"].as_str().unwrap().contains("HEIC"));

    // Other bytes than the record declares: all sent, then discarded at completion.
    let res = create(&app, &token, &liar, &declared).await;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let other = jpeg(30_000, 6);
    let res = tus(
        &app,
        Method::PATCH,
        &location,
        &token,
        &[
            octet(),
            ("upload-offset", "0".into()),
            request_id("req-liar"),
        ],
        other.clone(),
    )
    .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_error(status, &body, 409, "sha256_mismatch");
    let entries = audit_entries(&app, "photo_upload_refused", &liar).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].request_id.as_deref(), Some("req-liar"));
    assert_eq!(entries[0].after["reason"], json!("sha256_mismatch"));
    assert_eq!(entries[0].after["actual_sha256"], json!(hex_sha256(&other)));
    assert!(
        audit_entries(&app, "photo_uploaded", &liar)
            .await
            .is_empty(),
        "nothing was attached"
    );
    // A creation refused before anything is written (wrong sha256) records nothing.
    let res = create(&app, &token, &liar, &other).await;
    assert_eq!(res.status(), 409);
    assert_eq!(
        audit_entries(&app, "photo_upload_refused", &liar)
            .await
            .len(),
        1
    );
}
