//! Photo use cases off the upload path: processing an uploaded photo from the job queue (EXIF
//! capture time, GPS and orientation; upright 320 px and 1600 px JPEG renditions without EXIF;
//! geofence flags for reviewers) and downloads of the files. The original stays untouched as
//! evidence, and every download of an original is recorded.

use serde_json::Value;

use crate::audit::{Action, Ctx, Event, RecordKind};
use crate::auth::Role;
use crate::geo::Crs;
use crate::ops::{Error, Result};
use crate::photo::files::rendition_key;
use crate::photo::geofence::{self, GeofenceConfig};
use crate::photo::media::{self, Limits};
use crate::state::AppState;
use crate::store::jobs::Job;
use crate::store::uploads::{PhotoFile, Processed};
use crate::store::{self, Db};

/// The renditions processing makes, by variant name.
pub const RENDITIONS: [&str; 2] = ["thumbnail", "preview"];

/// Processes one photo for `job`. What it found is saved, the job completed and a
/// `PhotoProcessed` event recorded in one transaction; a file that cannot be decoded is
/// recorded as `failed` (it will not decode next time either). An error fails this attempt:
/// the queue retries with backoff (see [`attempt_failed`]), and a poisoned file fails alone.
pub async fn process(state: &AppState, job: &Job, photo_id: &str) -> Result<()> {
    let input = {
        let mut conn = state.db.acquire().await?;
        store::uploads::processing_input(&mut conn, photo_id).await?
    };
    let Some(input) = input else {
        return Err(Error::Internal(anyhow::anyhow!(
            "photo {photo_id} has no uploaded file"
        )));
    };
    let original = state.storage.get_all(&input.storage_key).await?;
    let (exif, renditions) = tokio::task::spawn_blocking(move || {
        let exif = media::read_exif(&original);
        let renditions = media::renditions(&original, &Limits::default());
        (exif, renditions)
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?;
    let renditions = match renditions {
        Ok(r) => r,
        Err(e) => {
            let message = e.to_string();
            let processed = Processed {
                status: "failed",
                error: Some(&message),
                width: None,
                height: None,
                exif_json: None,
                exif_taken_at: None,
                exif_lng: None,
                exif_lat: None,
                flags_json: None,
            };
            return save(&state.db, job, photo_id, &processed, |e| e).await;
        }
    };
    for (variant, bytes) in RENDITIONS
        .iter()
        .zip([&renditions.thumbnail_jpeg, &renditions.preview_jpeg])
    {
        // A put is atomic: a reader never sees half a file.
        state
            .storage
            .put(&rendition_key(&input.sha256, variant), bytes.clone())
            .await?;
    }
    let photo_gps = exif.gps_lng.zip(exif.gps_lat);
    let inspection_point = match (
        input.insp_lng,
        input.insp_lat,
        input
            .insp_crs
            .as_deref()
            .and_then(|c| c.parse::<Crs>().ok()),
    ) {
        (Some(lng), Some(lat), Some(crs)) => Some((lng, lat, crs)),
        _ => None,
    };
    let flags = geofence::flags(
        photo_gps,
        inspection_point,
        input.est_lng.zip(input.est_lat),
        exif.captured_at_ms.or(Some(input.taken_at)),
        Some((input.started_at, input.finished_at)),
        &GeofenceConfig {
            radius_m: state.config.geofence_radius_m,
            ..GeofenceConfig::default()
        },
    );
    let internal = |e: serde_json::Error| Error::Internal(e.into());
    let exif_json = serde_json::to_string(&exif).map_err(internal)?;
    let flags_json = serde_json::to_string(&flags).map_err(internal)?;
    let (width, height) = (i64::from(renditions.width), i64::from(renditions.height));
    let processed = Processed {
        status: "processed",
        error: None,
        width: Some(width),
        height: Some(height),
        exif_json: Some(&exif_json),
        exif_taken_at: exif.captured_at_ms,
        exif_lng: exif.gps_lng,
        exif_lat: exif.gps_lat,
        flags_json: Some(&flags_json),
    };
    let flags = serde_json::to_value(&flags).unwrap_or(Value::Null);
    save(&state.db, job, photo_id, &processed, |e| {
        e.set("renditions", RENDITIONS)
            .set("width", width)
            .set("height", height)
            .set("flags", flags)
    })
    .await
}

/// Saves what processing found, completes the job and records `PhotoProcessed` (with the
/// status change and what `more` adds), in one transaction.
async fn save(
    db: &Db,
    job: &Job,
    photo_id: &str,
    p: &Processed<'_>,
    more: impl FnOnce(Event) -> Event,
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    store::sync::lock_task_of_photo(tx.conn(), photo_id).await?;
    let before = store::uploads::photo_state(tx.conn(), photo_id).await?;
    store::uploads::save_processing(tx.conn(), photo_id, p).await?;
    store::jobs::complete(tx.conn(), &job.id).await?;
    let (status, error) = before
        .map(|b| (Some(b.processing_status), b.processing_error))
        .unwrap_or_default();
    let event = Event::new(Action::PhotoProcessed, RecordKind::Photo, photo_id)
        .change("processing_status", status, p.status)
        .change("processing_error", error, p.error);
    store::audit::append(tx.conn(), &Ctx::system(), &[more(event)]).await?;
    tx.commit().await?;
    Ok(())
}

/// A failed processing attempt (storage unreachable, the file vanished...): the job is retried
/// with backoff or fails for good, and the error is recorded as a `PhotoProcessed` event, in
/// one transaction. Returns whether the job will be retried.
pub async fn attempt_failed(db: &Db, job: &Job, photo_id: &str, error: &str) -> Result<bool> {
    let mut tx = db.begin_write().await?;
    let retry = store::jobs::fail(tx.conn(), job, error).await?;
    let event = Event::new(Action::PhotoProcessed, RecordKind::Photo, photo_id)
        .set(
            "attempt_error",
            error.chars().take(2000).collect::<String>(),
        )
        .set("attempt", job.attempts)
        .set("will_retry", retry);
    store::audit::append(tx.conn(), &Ctx::system(), &[event]).await?;
    tx.commit().await?;
    Ok(retry)
}

/// Runs queued jobs until `stop` is set. Several instances may run this against one
/// PostgreSQL database: claims skip each other's locked rows.
pub async fn worker(state: AppState, stop: tokio::sync::watch::Receiver<bool>) {
    const LEASE_MS: i64 = 5 * 60 * 1000;
    loop {
        if *stop.borrow() {
            return;
        }
        match super::jobs::claim(&state.db, LEASE_MS).await {
            Ok(Some(job)) => {
                if let Err(e) = run(&state, &job).await {
                    tracing::warn!(job = %job.id, error = %e, "recording a job outcome failed");
                }
            }
            Ok(None) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
            Err(e) => {
                tracing::warn!(error = %e, "claiming a job failed");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    }
}

/// Runs one claimed job and records its outcome.
async fn run(state: &AppState, job: &Job) -> Result<()> {
    if job.kind == store::sample_attachments::PROCESS_JOB {
        return super::sample_attachments::run_job(state, job).await;
    }
    let photo = (job.kind == store::uploads::PROCESS_JOB)
        .then(|| serde_json::from_str::<Value>(&job.payload).ok())
        .flatten()
        .and_then(|v| v["photo_id"].as_str().map(str::to_string));
    let Some(photo_id) = photo else {
        let error = if job.kind == store::uploads::PROCESS_JOB {
            format!("bad payload {}", job.payload)
        } else {
            format!("unknown job kind {}", job.kind)
        };
        tracing::warn!(job = %job.id, kind = %job.kind, %error, "job attempt failed");
        return super::jobs::fail(&state.db, job, &error).await.map(|_| ());
    };
    match process(state, job, &photo_id).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let error = match &e {
                Error::Internal(cause) => format!("{cause:#}"),
                other => other.to_string(),
            };
            tracing::warn!(job = %job.id, kind = %job.kind, %error, "job attempt failed");
            attempt_failed(&state.db, job, &photo_id, &error)
                .await
                .map(|_| ())
        }
    }
}

/// A photo's file as its download needs it, when the actor may see it: inspectors their
/// team's photos, reviewers and admins all (labs none).
pub async fn file(db: &Db, ctx: &Ctx, photo_id: &str) -> Result<PhotoFile> {
    let role = ctx.actor.role;
    if !matches!(role, Some(Role::Admin | Role::Reviewer | Role::Inspector)) {
        return Err(Error::forbidden(
            "this action needs the role admin or reviewer or inspector",
        ));
    }
    let mut conn = db.acquire().await?;
    store::uploads::photo_file(&mut conn, photo_id, ctx.user_id().unwrap_or(""))
        .await?
        .filter(|p| role != Some(Role::Inspector) || p.is_member == 1)
        .ok_or_else(|| Error::not_found("no such photo"))
}

/// Records that the actor is being sent (part of) a photo's original, the evidence: before
/// the first byte goes out, so no original leaves unrecorded. `range` is the byte range
/// served (`start-end/length`), `None` for the whole file.
pub async fn evidence_downloaded(
    db: &Db,
    ctx: &Ctx,
    photo: &PhotoFile,
    range: Option<String>,
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let event = Event::new(Action::EvidenceDownloaded, RecordKind::Photo, &photo.id)
        .set("sha256", &photo.sha256)
        .set("range", range);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(())
}
