//! A sample's attachments: the site, sample and seal photos (declared by the sample's
//! samplers) and the lab report PDF (declared by the sample's lab). A declaration is the
//! record; its bytes then come through the same tus uploads as inspection photos
//! (`ops::uploads`, with `attachment_id` in `Upload-Metadata`). Photos are processed from the
//! job queue like inspection photos (EXIF read, EXIF-free renditions, decoding limits); a PDF
//! is kept as it came.
//!
//! Who: declaring and uploading, the sample's samplers (site/sample/seal) or an account of the
//! sample's lab (report); any other account is answered as for a missing sample (404).
//! Reading, whoever may see the sample ([`super::sampling::visible`]).
//!
//! Audit events: `SampleAttachmentDeclared` (the declaration, in its transaction),
//! `SampleAttachmentUploaded` / `SampleAttachmentUploadRefused` (`ops::uploads`),
//! `SampleAttachmentProcessed` (the worker, as the system) and `EvidenceDownloaded` for every
//! download of an original, all on the attachment (`sample_attachment`).

use serde::Serialize;
use serde_json::Value;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::sampling::{self as sampling_ops, Viewer};
use super::{access, Ctx, Error, Result};
use crate::audit::{Action, Event, RecordKind};
use crate::auth::Role;
use crate::photo::files::rendition_key;
use crate::photo::media::{self, Limits};
use crate::photo::ProcessingStatus;
use crate::sampling::attachment::{self as domain, Declarer, Kind, NewAttachment};
use crate::state::AppState;
use crate::store::jobs::Job;
use crate::store::sample_attachments::{self as q, AttachmentRow, NewAttachmentRow};
use crate::store::{self, Db};

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("{e}"))
}

fn no_attachment() -> Error {
    Error::not_found("no such attachment of this sample")
}

/// The renditions made of an attachment photo (as of inspection photos).
pub const RENDITIONS: [&str; 2] = ["thumbnail", "preview"];

/// An attachment as stored.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AttachmentView {
    pub id: String,
    pub sample_id: String,
    pub kind: Kind,
    /// As declared; the uploaded file hashes to it.
    pub sha256: String,
    pub byte_size: i64,
    /// When the photo was taken or the report issued, Unix ms.
    pub taken_at: i64,
    /// User id of who declared it.
    pub declared_by: String,
    /// `awaiting_upload` → `uploaded` (photos, until processed) → `processed`, or `failed`
    /// (`processing_error` says why: a refused type, a file that does not decode).
    pub processing_status: ProcessingStatus,
    pub processing_error: Option<String>,
    /// The stored type, sniffed from the bytes: `image/jpeg`, `image/png`, `image/webp` or
    /// `application/pdf`; `null` before the upload.
    pub media_type: Option<String>,
    /// Photos, once processed.
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// When the bytes arrived, Unix ms.
    pub uploaded_at: Option<i64>,
    /// When it was declared, Unix ms.
    pub created_at: i64,
}

fn view(r: &AttachmentRow) -> Result<AttachmentView> {
    Ok(AttachmentView {
        id: r.id.clone(),
        sample_id: r.sample_id.clone(),
        kind: Kind::parse(&r.kind).ok_or_else(|| internal(&r.kind))?,
        sha256: r.sha256.clone(),
        byte_size: r.byte_size,
        taken_at: r.taken_at,
        declared_by: r.declared_by.clone(),
        processing_status: ProcessingStatus::parse(&r.processing_status)
            .ok_or_else(|| internal(&r.processing_status))?,
        processing_error: r.processing_error.clone(),
        media_type: r.media_type.clone(),
        width: r.width,
        height: r.height,
        uploaded_at: r.uploaded_at,
        created_at: r.created_at,
    })
}

/// A sample's attachments, for views of the sample the caller may already see.
pub(super) async fn views_in(
    conn: &mut AnyConnection,
    sample_id: &str,
) -> Result<Vec<AttachmentView>> {
    q::of_sample(conn, sample_id)
        .await?
        .iter()
        .map(view)
        .collect()
}

fn body_sha256(sample_id: &str, n: &NewAttachment) -> Result<String> {
    let body = serde_json::to_vec(&(sample_id, domain::normalized(n))).map_err(internal)?;
    Ok(sampling_ops::sha256_hex(&body))
}

fn id_conflict() -> Error {
    Error::conflict(
        "attachment_id_conflict",
        "an attachment with this id was declared with other content; a declaration cannot be changed",
    )
}

/// The stored declaration `id` after a replay check: the same declaration → it; another → 409
/// `attachment_id_conflict`.
async fn replay(
    conn: &mut AnyConnection,
    id: &str,
    body_sha256: &str,
) -> Result<Option<AttachmentView>> {
    match q::get(conn, id).await? {
        None => Ok(None),
        Some(r) if r.body_sha256 == body_sha256 => Ok(Some(view(&r)?)),
        Some(_) => Err(id_conflict()),
    }
}

/// Declares an attachment of sample `sample_id` inside the caller's transaction `conn` (the
/// HTTP edge through [`declare`]; a sync push may call it in its own), with its
/// `SampleAttachmentDeclared` event. The caller must see the sample (else 404) and be its
/// declarer: a sampler for site/sample/seal, its lab for the report (else 403). Returns the
/// attachment and whether it was declared now (`false`: the same declaration again).
/// Refusals: 422 `validation_failed` (`id`, `sha256`, `byte_size`, `taken_at`), 409
/// `attachment_id_conflict`. `seq` is the write transaction's sequence number
/// (`store::sync::next_seq`): declarations sync to the samplers' devices (schema 7).
pub async fn declare_in(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    max_bytes: i64,
    sample_id: &str,
    n: &NewAttachment,
    seq: i64,
) -> Result<(AttachmentView, bool)> {
    access::require(ctx, &[Role::Inspector, Role::Lab])?;
    // One writer per sample (PostgreSQL): a declaration is decided from what is stored.
    crate::store::sync::lock_keys(conn, "sample", &[sample_id.to_string()]).await?;
    let (sample, viewer) = sampling_ops::load_visible(conn, ctx, sample_id).await?;
    // The id may already be taken by an attachment of another sample: the caller must see
    // that one too, else it is answered as a missing sample (an id never tells whose it is).
    if let Some(stored) = q::get(conn, &n.id).await? {
        if stored.sample_id != sample.id {
            sampling_ops::load_visible(conn, ctx, &stored.sample_id).await?;
        }
    }
    let allowed = match n.kind.declarer() {
        Declarer::Sampler => viewer == Viewer::Sampler,
        Declarer::Lab => viewer == Viewer::Lab,
    };
    if !allowed {
        return Err(Error::forbidden(match n.kind.declarer() {
            Declarer::Sampler => {
                "site, sample and seal photos are declared by the sample's samplers"
            }
            Declarer::Lab => "the lab report is declared by the sample's lab",
        }));
    }
    domain::check(n, max_bytes, store::now_ms()).map_err(Error::validation_failed)?;
    let n = domain::normalized(n);
    let body = body_sha256(&sample.id, &n)?;
    if let Some(done) = replay(conn, &n.id, &body).await? {
        return Ok((done, false));
    }
    let row = NewAttachmentRow {
        id: &n.id,
        sample_id: &sample.id,
        kind: n.kind.code(),
        sha256: &n.sha256,
        byte_size: n.byte_size,
        taken_at: n.taken_at,
        body_sha256: &body,
        declared_by: access::author(ctx),
    };
    let origin = sampling_ops::origin_of(ctx);
    let stamp = store::sampling::Stamp {
        seq,
        origin_device: origin.as_deref(),
    };
    if let Err(e) = q::insert(conn, &row, stamp).await {
        if store::is_unique_violation(&e) {
            // A concurrent declaration of the same id won (see [`declare`]).
            return Err(id_conflict());
        }
        return Err(e.into());
    }
    let stored = q::get(conn, &n.id)
        .await?
        .ok_or_else(|| internal("lost attachment"))?;
    let v = view(&stored)?;
    let event = Event::new(
        Action::SampleAttachmentDeclared,
        RecordKind::SampleAttachment,
        &v.id,
    )
    .set("sample_id", &v.sample_id)
    .set("kind", v.kind)
    .set("sha256", &v.sha256)
    .set("byte_size", v.byte_size)
    .set("taken_at", v.taken_at);
    store::audit::append(conn, ctx, &[event]).await?;
    Ok((v, true))
}

/// [`declare_in`] in its own transaction. A concurrent declaration of the same id that won is
/// answered as a replay when it is the same.
pub async fn declare(
    db: &Db,
    ctx: &Ctx,
    max_bytes: i64,
    sample_id: &str,
    n: &NewAttachment,
) -> Result<(AttachmentView, bool)> {
    let mut tx = db.begin_write().await?;
    // The change counter first, as every synced write takes it (see `ops::sampling`).
    let seq = store::sync::next_seq(tx.conn()).await?;
    match declare_in(tx.conn(), ctx, max_bytes, sample_id, n, seq).await {
        Ok(done) => {
            tx.commit().await?;
            Ok(done)
        }
        Err(Error::Conflict {
            code: "attachment_id_conflict",
            ..
        }) => {
            drop(tx);
            let mut conn = db.acquire().await?;
            let body = body_sha256(sample_id, &domain::normalized(n))?;
            match replay(&mut conn, &n.id, &body).await? {
                Some(done) => Ok((done, false)),
                None => Err(id_conflict()),
            }
        }
        Err(e) => Err(e),
    }
}

/// A sample's attachments (whoever may read the sample, its 复检 lab too; else 404).
pub async fn list(db: &Db, ctx: &Ctx, sample_id: &str) -> Result<Vec<AttachmentView>> {
    let mut conn = db.acquire().await?;
    let (sample, _) = sampling_ops::load_readable(&mut conn, ctx, sample_id).await?;
    views_in(&mut conn, &sample.id).await
}

/// An attachment's file as its download needs it.
#[derive(Debug, Clone)]
pub struct AttachmentFile {
    pub attachment: AttachmentView,
    /// Where the original is stored; `None` before the upload.
    pub storage_key: Option<String>,
}

/// Attachment `id` of sample `sample_id`, for whoever may read the sample, its 复检 lab too
/// (else 404).
pub async fn file(db: &Db, ctx: &Ctx, sample_id: &str, id: &str) -> Result<AttachmentFile> {
    let mut conn = db.acquire().await?;
    let (sample, _) = sampling_ops::load_readable(&mut conn, ctx, sample_id).await?;
    let row = q::get(&mut conn, id)
        .await?
        .filter(|a| a.sample_id == sample.id)
        .ok_or_else(no_attachment)?;
    Ok(AttachmentFile {
        storage_key: q::storage_key(&mut conn, id).await?,
        attachment: view(&row)?,
    })
}

/// Records that the actor is being sent an attachment's original (before the first byte).
pub async fn evidence_downloaded(
    db: &Db,
    ctx: &Ctx,
    a: &AttachmentView,
    range: Option<String>,
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let event = Event::new(
        Action::EvidenceDownloaded,
        RecordKind::SampleAttachment,
        &a.id,
    )
    .set("sample_id", &a.sample_id)
    .set("sha256", &a.sha256)
    .set("range", range);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(())
}

/// Inside a lab result's transaction: `id` must be a `report` of sample `sample_id` whose PDF
/// is uploaded (`processed`); else 422 `invalid_report_attachment`.
pub(super) async fn check_report_in(
    conn: &mut AnyConnection,
    sample_id: &str,
    id: &str,
) -> Result<()> {
    let refuse = |why: &str| {
        Error::invalid(
            "invalid_report_attachment",
            format!("report_attachment_id {id:?} {why}"),
        )
    };
    let a = q::get(conn, id)
        .await?
        .filter(|a| a.sample_id == sample_id)
        .ok_or_else(|| refuse("is not an attachment of this sample"))?;
    if a.kind != Kind::Report.code() {
        return Err(refuse("is not a report"));
    }
    if a.processing_status != ProcessingStatus::Processed.as_str() {
        return Err(refuse("has no uploaded PDF yet"));
    }
    Ok(())
}

// ---- Processing (the job queue) ------------------------------------------------------------

/// Runs one claimed `sample_attachment.process` job and records its outcome.
pub async fn run_job(state: &AppState, job: &Job) -> Result<()> {
    let id = serde_json::from_str::<Value>(&job.payload)
        .ok()
        .and_then(|v| v["attachment_id"].as_str().map(str::to_string));
    let Some(id) = id else {
        return super::jobs::fail(&state.db, job, &format!("bad payload {}", job.payload))
            .await
            .map(|_| ());
    };
    match process(state, job, &id).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let error = match &e {
                Error::Internal(cause) => format!("{cause:#}"),
                other => other.to_string(),
            };
            tracing::warn!(job = %job.id, kind = %job.kind, %error, "job attempt failed");
            let mut tx = state.db.begin_write().await?;
            let retry = store::jobs::fail(tx.conn(), job, &error).await?;
            let event = Event::new(
                Action::SampleAttachmentProcessed,
                RecordKind::SampleAttachment,
                &id,
            )
            .set(
                "attempt_error",
                error.chars().take(2000).collect::<String>(),
            )
            .set("attempt", job.attempts)
            .set("will_retry", retry);
            store::audit::append(tx.conn(), &Ctx::system(), &[event]).await?;
            tx.commit().await?;
            Ok(())
        }
    }
}

/// Processes an uploaded attachment photo as inspection photos are: EXIF read, upright 320 px
/// and 1600 px JPEG renditions without EXIF under the decoding limits. What it found, the job's
/// completion and `SampleAttachmentProcessed` are one transaction; a file that cannot be
/// decoded is recorded as `failed`.
async fn process(state: &AppState, job: &Job, id: &str) -> Result<()> {
    let input = {
        let mut conn = state.db.acquire().await?;
        q::processing_input(&mut conn, id).await?
    };
    let Some(input) = input else {
        return Err(internal(format!("attachment {id} has no uploaded file")));
    };
    let original = state.storage.get_all(&input.storage_key).await?;
    let (exif, renditions) = tokio::task::spawn_blocking(move || {
        let exif = media::read_exif(&original);
        let renditions = media::renditions(&original, &Limits::default());
        (exif, renditions)
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?;
    let (status, error, size, exif_json) = match renditions {
        Ok(r) => {
            for (variant, bytes) in RENDITIONS.iter().zip([&r.thumbnail_jpeg, &r.preview_jpeg]) {
                state
                    .storage
                    .put(&rendition_key(&input.sha256, variant), bytes.clone())
                    .await?;
            }
            let exif_json = serde_json::to_string(&exif).map_err(internal)?;
            (
                ProcessingStatus::Processed,
                None,
                Some((i64::from(r.width), i64::from(r.height))),
                Some(exif_json),
            )
        }
        Err(e) => (ProcessingStatus::Failed, Some(e.to_string()), None, None),
    };
    let mut tx = state.db.begin_write().await?;
    crate::store::sync::lock_sample_of_attachment(tx.conn(), id).await?;
    let before = q::state(tx.conn(), id).await?;
    q::save_processing(
        tx.conn(),
        id,
        status.as_str(),
        error.as_deref(),
        size,
        exif_json.as_deref(),
    )
    .await?;
    store::jobs::complete(tx.conn(), &job.id).await?;
    let (b_status, b_error) = before
        .map(|b| (Some(b.processing_status), b.processing_error))
        .unwrap_or_default();
    let mut event = Event::new(
        Action::SampleAttachmentProcessed,
        RecordKind::SampleAttachment,
        id,
    )
    .change("processing_status", b_status, status.as_str())
    .change("processing_error", b_error, error.as_deref());
    if let Some((w, h)) = size {
        event = event
            .set("renditions", RENDITIONS)
            .set("width", w)
            .set("height", h);
    }
    store::audit::append(tx.conn(), &Ctx::system(), &[event]).await?;
    tx.commit().await?;
    Ok(())
}
