//! Processing an uploaded photo, from the job queue: EXIF (capture time, GPS, orientation),
//! upright 320 px and 1600 px JPEG renditions without EXIF, and geofence flags for reviewers.
//! The original stays untouched as evidence.

use crate::geo::Crs;
use crate::http::photos::rendition_key;
use crate::photo::geofence::{self, GeofenceConfig};
use crate::photo::media::{self, Limits};
use crate::state::AppState;
use crate::store::{self, uploads::Processed};

/// Processes one photo; an error fails this attempt (the queue retries with backoff, and a
/// poisoned file fails alone).
pub async fn process(state: &AppState, photo_id: &str) -> anyhow::Result<()> {
    let Some(input) = store::uploads::processing_input(&state.db, photo_id).await? else {
        anyhow::bail!("photo {photo_id} has no uploaded file");
    };
    let original = state.storage.get_all(&input.storage_key).await?;
    let outcome = tokio::task::spawn_blocking(move || {
        let exif = media::read_exif(&original);
        let renditions = media::renditions(&original, &Limits::default());
        (exif, renditions)
    })
    .await?;
    let (exif, renditions) = outcome;
    let renditions = match renditions {
        Ok(r) => r,
        Err(e) => {
            // A file that cannot be decoded will not decode next time either: record it.
            let message = e.to_string();
            store::uploads::save_processing(
                &state.db,
                photo_id,
                &Processed {
                    status: "failed",
                    error: Some(&message),
                    width: None,
                    height: None,
                    exif_json: None,
                    exif_taken_at: None,
                    exif_lng: None,
                    exif_lat: None,
                    flags_json: None,
                },
            )
            .await?;
            return Ok(());
        }
    };
    for (variant, bytes) in [
        ("thumbnail", &renditions.thumbnail_jpeg),
        ("preview", &renditions.preview_jpeg),
    ] {
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
    let exif_json = serde_json::to_string(&exif)?;
    let flags_json = serde_json::to_string(&flags)?;
    store::uploads::save_processing(
        &state.db,
        photo_id,
        &Processed {
            status: "processed",
            error: None,
            width: Some(i64::from(renditions.width)),
            height: Some(i64::from(renditions.height)),
            exif_json: Some(&exif_json),
            exif_taken_at: exif.captured_at_ms,
            exif_lng: exif.gps_lng,
            exif_lat: exif.gps_lat,
            flags_json: Some(&flags_json),
        },
    )
    .await?;
    Ok(())
}

/// Runs queued jobs until `stop` is set. Several instances may run this against one
/// PostgreSQL database: claims skip each other's locked rows.
pub async fn worker(state: AppState, stop: tokio::sync::watch::Receiver<bool>) {
    const LEASE_MS: i64 = 5 * 60 * 1000;
    loop {
        if *stop.borrow() {
            return;
        }
        match store::jobs::claim(&state.db, LEASE_MS).await {
            Ok(Some(job)) => {
                let result = match job.kind.as_str() {
                    store::uploads::PROCESS_JOB => {
                        let photo = serde_json::from_str::<serde_json::Value>(&job.payload)
                            .ok()
                            .and_then(|v| v["photo_id"].as_str().map(str::to_string));
                        match photo {
                            Some(id) => process(&state, &id).await,
                            None => Err(anyhow::anyhow!("bad payload {}", job.payload)),
                        }
                    }
                    other => Err(anyhow::anyhow!("unknown job kind {other}")),
                };
                let saved = match result {
                    Ok(()) => store::jobs::complete(&state.db, &job.id).await,
                    Err(e) => {
                        tracing::warn!(job = %job.id, kind = %job.kind, error = %e, "job attempt failed");
                        store::jobs::fail(&state.db, &job, &format!("{e:#}"))
                            .await
                            .map(|_| ())
                    }
                };
                if let Err(e) = saved {
                    tracing::warn!(error = %e, "recording a job outcome failed");
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
