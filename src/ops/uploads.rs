//! Upload use cases behind the tus endpoints (`http::uploads` keeps the protocol: headers,
//! 412/460, streaming a chunk into the partial file) and the background sweeps. An upload
//! gives its bytes to a photo record (an inspection's, by its team's inspectors) or to a
//! sample attachment (`ops::sample_attachments`: site, sample and seal photos by the sample's
//! samplers, the report PDF by the sample's lab): one flow for both, with the same
//! resumption, hash check, limits and content-addressed storage; the target decides which
//! files it accepts ([`Accept`]). Each write is one transaction; the ones that change
//! evidence record typed audit events in it (for an attachment: `SampleAttachmentUploaded`,
//! `SampleAttachmentUploadRefused`, on the attachment, with the same fields):
//!
//! - `PhotoUploaded` on the photo record when it gets its file: `sha256`, `byte_size`,
//!   `media_type`, `upload_id`, `deduplicated` (true when no bytes were sent because the
//!   caller's team already held the content), `new_content` (false when the same bytes were
//!   stored before, for any record), and the `processing_status`/`processing_error` change.
//! - `PhotoUploadRefused` on the photo record when an upload is discarded for what it holds:
//!   `reason` (`unsupported_media_type` or `sha256_mismatch`, the error code the client
//!   sees), `message`, `upload_id`, and the record's status change when it is marked `failed`.
//! - `UploadsExpired` (a batch) when the sweep removes abandoned uploads: `removed`,
//!   `upload_ids`.
//!
//! Creating, advancing, rewinding and terminating an upload record nothing: an open upload is
//! transient protocol state, not evidence; what it leads to (the file attached, or refused) is.
//!
//! Crash safety: the final offset, the blob, the attachment and the processing job are
//! written in one transaction, after the verified file is in storage; an upload found with
//! all its bytes but not attached is finished by the next HEAD, PATCH, POST or start-up
//! ([`settle`], [`repair_stuck`]).

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::audit::{Action, Ctx, Event, RecordKind};
use crate::auth::Role;
use crate::ops::{Error, Result};
use crate::photo::files::{blob_key, Accept};
use crate::photo::pdf;
use crate::sampling::attachment::{Declarer, Kind as AttachmentKind};
use crate::state::AppState;
use crate::store::sample_attachments as qa;
use crate::store::uploads::{self as q, NewUpload};
pub use crate::store::uploads::{Owner, UploadRow};
use crate::store::{self, now_ms, Db};

/// Incomplete uploads are kept this long after their last chunk.
pub const EXPIRY_MS: i64 = 24 * 3600 * 1000;

/// Where the partial data of an open upload is kept.
pub fn partial_path(state: &AppState, id: &str) -> PathBuf {
    uploads_dir(state).join(format!("{id}.part"))
}

fn uploads_dir(state: &AppState) -> PathBuf {
    state.config.data_dir.join("uploads")
}

fn io(e: std::io::Error) -> Error {
    Error::Internal(e.into())
}

/// Uploads are the inspectors' (photos, sample photos) and the labs' (report PDFs); the edge
/// checks it too, before reading any header.
fn require_uploader(ctx: &Ctx) -> Result<&str> {
    match (ctx.actor.role, ctx.user_id()) {
        (Some(Role::Inspector | Role::Lab), Some(user)) => Ok(user),
        _ => Err(Error::forbidden(
            "this action needs the role inspector or lab",
        )),
    }
}

/// What an upload's target accepts.
pub fn accept_of(u: &UploadRow) -> Accept {
    match u.owner() {
        Owner::Photo(_) => Accept::Photo,
        Owner::Attachment(_) => u
            .attachment_kind
            .as_deref()
            .and_then(AttachmentKind::parse)
            .map_or(Accept::Photo, AttachmentKind::accept),
    }
}

/// What a tus creation asks for (parsed from its headers by the edge).
pub struct Creation<'a> {
    /// The photo record or the sample attachment the bytes are for.
    pub owner: Owner<'a>,
    /// Lowercase hex, as declared in `Upload-Metadata`.
    pub sha256: &'a str,
    pub length: i64,
    /// The raw `Upload-Metadata` header, answered back on HEAD.
    pub metadata: &'a str,
}

/// What [`create`] did.
#[derive(Debug)]
pub enum Created {
    /// The caller's team already holds this content: the upload is complete at creation and
    /// the photo record has its file.
    Complete {
        id: String,
        length: i64,
        expires_at: i64,
    },
    /// The caller already has an open upload for this photo record: that one goes on.
    Existing(UploadRow),
    /// A new, empty upload.
    New(UploadRow),
    /// The caller's open upload had all its bytes but was refused when finished (its type):
    /// the reason, as the photo record keeps it.
    Refused(String),
}

/// The declared content of an upload's target, once the caller may write it.
struct Target {
    sha256: String,
    byte_size: i64,
    accept: Accept,
}

/// The target the caller may give bytes to: a photo record of an inspection of the caller's
/// team (inspectors), or a sample attachment of a sample the caller samples (site, sample,
/// seal; inspectors) or of the caller's lab (report; lab accounts). Anything else: 404 (403
/// for a lab account naming a photo record).
async fn target(
    conn: &mut sqlx::AnyConnection,
    ctx: &Ctx,
    owner: Owner<'_>,
    user: &str,
) -> Result<Target> {
    match owner {
        Owner::Photo(photo_id) => {
            if ctx.actor.role != Some(Role::Inspector) {
                return Err(Error::forbidden(
                    "photo records' files are uploaded by inspectors",
                ));
            }
            let t = q::photo_target(conn, photo_id, user)
                .await?
                .filter(|t| t.is_member == 1)
                .ok_or_else(|| {
                    Error::not_found(
                        "no photo record with that id that you may write; sync the record first",
                    )
                })?;
            Ok(Target {
                sha256: t.sha256,
                byte_size: t.byte_size,
                accept: Accept::Photo,
            })
        }
        Owner::Attachment(id) => {
            let missing = || {
                Error::not_found(
                    "no sample attachment with that id that you may upload; declare it first",
                )
            };
            let t = qa::target(conn, id, user).await?.ok_or_else(missing)?;
            let kind = AttachmentKind::parse(&t.kind).ok_or_else(missing)?;
            let may = match kind.declarer() {
                Declarer::Sampler => ctx.actor.role == Some(Role::Inspector) && t.is_sampler == 1,
                Declarer::Lab => ctx.actor.role == Some(Role::Lab) && t.is_lab == 1,
            };
            if !may {
                return Err(missing());
            }
            Ok(Target {
                sha256: t.sha256,
                byte_size: t.byte_size,
                accept: kind.accept(),
            })
        }
    }
}

/// Starts an upload of a photo record's or a sample attachment's file. The caller must be
/// allowed to write the target (else 404, see [`target`]), and the declared sha256 and length
/// must be the record's (409 `sha256_mismatch`, `size_mismatch`). One open upload per record:
/// the caller's own goes on, another's or an expired one is replaced. The caller's open
/// uploads may reserve at most `max_open_upload_bytes_per_user` declared bytes (409
/// `open_uploads_limit`).
pub async fn create(state: &AppState, ctx: &Ctx, c: &Creation<'_>) -> Result<Created> {
    let user = require_uploader(ctx)?;
    let (target, holds) = {
        let mut conn = state.db.acquire().await?;
        let target = target(&mut conn, ctx, c.owner, user).await?;
        let holds = q::team_holds_blob(&mut conn, c.sha256, user).await?
            || qa::user_holds_blob(&mut conn, c.sha256, user).await?;
        (target, holds)
    };
    if target.sha256 != c.sha256 {
        return Err(Error::conflict(
            "sha256_mismatch",
            "the declared sha256 is not the record's sha256",
        ));
    }
    if target.byte_size != c.length {
        return Err(Error::conflict(
            "size_mismatch",
            "Upload-Length is not the record's byte_size",
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let expires_at = now_ms() + EXPIRY_MS;
    let new = NewUpload {
        id: &id,
        owner: c.owner,
        created_by: user,
        length: c.length,
        sha256: c.sha256,
        metadata: c.metadata,
        expires_at,
    };
    // Content the caller may already read (their team's photos, the attachments of samples
    // they sample or their lab tests): nothing to send. Anyone else proves possession by
    // sending the bytes, even when the content is stored already: knowing a sha256 must never
    // be enough to get a file. Stored content of a type this target refuses is sent again
    // (and refused at its first chunk).
    if holds {
        if let Some(media) = sniff_stored(state, c.sha256, target.accept).await {
            create_complete(&state.db, ctx, &new, target.accept, media).await?;
            return Ok(Created::Complete {
                id,
                length: c.length,
                expires_at,
            });
        }
    }
    tokio::fs::create_dir_all(uploads_dir(state))
        .await
        .map_err(io)?;
    let cap = i64::try_from(state.config.max_open_upload_bytes_per_user).unwrap_or(i64::MAX);
    let replaced = {
        let mut tx = state.db.begin_write().await?;
        q::lock_for_create(tx.conn(), c.owner, user).await?;
        let open = q::open_for(tx.conn(), c.owner).await?;
        let now = now_ms();
        if let Some(mine) = open
            .iter()
            .find(|o| o.created_by == user && o.expires_at > now)
        {
            // One open upload per photo record and user: a repeated POST (a lost response, an
            // app restart without the upload URL) goes on with the upload already there.
            let mine = mine.clone();
            drop(tx); // nothing written
            return match settle(state, ctx, mine).await? {
                Settled::Ready(u) => Ok(Created::Existing(u)),
                Settled::Refused(reason) => Ok(Created::Refused(reason)),
            };
        }
        // Someone else's (a team mate's other device) or an expired one: the newest upload wins.
        let replaced: Vec<String> = open.into_iter().map(|o| o.id).collect();
        for old in &replaced {
            q::delete(tx.conn(), old).await?;
        }
        let open_bytes = q::open_bytes(tx.conn(), user).await?;
        if open_bytes + c.length > cap {
            drop(tx); // rolls back the replacements
            return Err(Error::conflict(
                "open_uploads_limit",
                format!(
                    "your unfinished uploads already reserve {open_bytes} bytes (at most {cap}); \
                     finish or terminate one first"
                ),
            ));
        }
        q::insert(tx.conn(), &new, 0, false).await?;
        tx.commit().await?;
        replaced
    };
    for old in replaced {
        let _ = tokio::fs::remove_file(partial_path(state, &old)).await;
    }
    tokio::fs::File::create(partial_path(state, &id))
        .await
        .map_err(io)?;
    Ok(Created::New(owned(&state.db, ctx, &id).await?))
}

/// An upload complete at creation: the upload row, the attachment, the processing job and
/// `PhotoUploaded` (deduplicated) in one transaction.
async fn create_complete(
    db: &Db,
    ctx: &Ctx,
    new: &NewUpload<'_>,
    accept: Accept,
    media: &str,
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    q::insert(tx.conn(), new, new.length, true).await?;
    let event = attach_in(
        tx.conn(),
        new.owner,
        accept,
        new.sha256,
        new.length,
        media,
        new.id,
        true,
    )
    .await?;
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(())
}

/// The caller's upload `id` (someone else's reveals nothing: 404).
pub async fn owned(db: &Db, ctx: &Ctx, id: &str) -> Result<UploadRow> {
    let user = require_uploader(ctx)?;
    let mut conn = db.acquire().await?;
    match q::get(&mut conn, id).await? {
        Some(u) if u.created_by == user => Ok(u),
        _ => Err(Error::not_found("no such upload")),
    }
}

/// An upload as a request finds it, after any repair.
#[derive(Debug)]
pub enum Settled {
    Ready(UploadRow),
    /// Refused when finished (its type): the reason; the upload is gone.
    Refused(String),
}

/// All bytes in but not attached (a crash right after the last chunk): finished now, so that
/// a client which sees the full offset and stops has not lost the photo. Returns the upload
/// as it is then.
pub async fn settle(state: &AppState, ctx: &Ctx, u: UploadRow) -> Result<Settled> {
    if u.completed != 0 || u.upload_offset != u.length {
        return Ok(Settled::Ready(u));
    }
    if let Finish::Refused(reason) = finish_stuck(state, ctx, &u).await? {
        return Ok(Settled::Refused(reason));
    }
    Ok(Settled::Ready(owned(&state.db, ctx, &u.id).await?))
}

/// Records a chunk's progress, only if the upload is still at the offset the chunk started
/// from (else 409 `offset_mismatch`: another request moved it).
pub async fn advance(db: &Db, u: &UploadRow, to: i64, expires_at: i64) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let moved = q::advance(tx.conn(), &u.id, u.upload_offset, to, expires_at).await?;
    tx.commit().await?;
    if moved {
        Ok(())
    } else {
        Err(moved_meanwhile())
    }
}

fn moved_meanwhile() -> Error {
    Error::conflict(
        "offset_mismatch",
        "another request moved the upload meanwhile",
    )
}

/// What finishing an upload came to.
#[derive(Debug)]
pub enum Finish {
    /// Attached (here or by a parallel request), or, without the bytes to finish from, rewound
    /// to what is really there.
    Done,
    /// Refused for its type: the reason; the upload is gone, the photo record says why.
    Refused(String),
}

/// The whole file is in: check its hash and type, store it once per content, then in one
/// transaction set the final offset, attach it, queue processing and record `PhotoUploaded`
/// (only if the upload is still at its offset; else 409 `offset_mismatch` unless a parallel
/// request finished it). A file that does not hash to the declared sha256 is discarded (409
/// `sha256_mismatch`).
pub async fn finish(state: &AppState, ctx: &Ctx, u: &UploadRow) -> Result<Finish> {
    let path = partial_path(state, &u.id);
    let mut f = tokio::fs::File::open(&path).await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut head = Vec::new();
    // The last bytes, where a PDF's trailer is.
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        if head.len() < 16 {
            let want = (16 - head.len()).min(n);
            head.extend_from_slice(&buf[..want]);
        }
        tail.extend_from_slice(&buf[n.saturating_sub(pdf::TAIL_LEN)..n]);
        let drop_n = tail.len().saturating_sub(pdf::TAIL_LEN);
        tail.drain(..drop_n);
        hasher.update(&buf[..n]);
    }
    drop(f);
    let actual = hex::encode(hasher.finalize());
    if actual != u.sha256 {
        let _ = tokio::fs::remove_file(&path).await;
        let message = format!(
            "the file hashes to {actual}, not the declared sha256; the upload is discarded"
        );
        let event = refused_event(u, "sha256_mismatch", &message).set("actual_sha256", &actual);
        let mut tx = state.db.begin_write().await?;
        q::delete(tx.conn(), &u.id).await?;
        store::audit::append(tx.conn(), ctx, &[event]).await?;
        tx.commit().await?;
        return Err(Error::conflict("sha256_mismatch", message));
    }
    let accept = accept_of(u);
    let Some(media) = accept.sniff(&head) else {
        return Ok(Finish::Refused(refuse_type(state, ctx, u, &head).await?));
    };
    if accept == Accept::Pdf {
        if let Err(e) = check_pdf(&path, &head, &tail, u.length).await? {
            let reason = format!("the file is not a complete PDF: {e}");
            return Ok(Finish::Refused(refuse(state, ctx, u, reason).await?));
        }
    }
    let key = blob_key(&actual);
    // Stored once per content: the same bytes uploaded again add nothing.
    if !state.storage.exists(&key).await {
        state.storage.put_file(&key, &path).await?;
    }
    if !attach(&state.db, ctx, u, &actual, media).await? {
        // Finished meanwhile by a parallel request (a HEAD repair, a retried PATCH)?
        finished_meanwhile(&state.db, &u.id).await?;
    }
    // Only once attached: until then the partial file is what a repair finishes from.
    let _ = tokio::fs::remove_file(&path).await;
    Ok(Finish::Done)
}

/// Ok when the upload was completed by someone else; else 409 `offset_mismatch`.
async fn finished_meanwhile(db: &Db, id: &str) -> Result<()> {
    let mut conn = db.acquire().await?;
    match q::get(&mut conn, id).await? {
        Some(n) if n.completed == 1 => Ok(()),
        _ => Err(moved_meanwhile()),
    }
}

/// An open upload whose partial file is gone. Local storage moves the verified file into
/// place before the final transaction, so a crash between the two leaves exactly this: the
/// content, stored under the sha256 this upload declared and checked, and the upload still at
/// its previous offset. (Nothing else removes the partial file of an upload that stays open:
/// termination, expiry, refusal and replacement remove the upload too.) The client's resent
/// last chunk then completes it from the stored content; without it, 404.
pub async fn complete_from_store(state: &AppState, ctx: &Ctx, u: &UploadRow) -> Result<()> {
    let Some(media) = sniff_stored(state, &u.sha256, accept_of(u)).await else {
        return Err(Error::not_found("the upload's data is gone (expired?)"));
    };
    if !attach(&state.db, ctx, u, &u.sha256, media).await? {
        finished_meanwhile(&state.db, &u.id).await?;
    }
    Ok(())
}

/// The PDF structure check of a complete upload (see `photo::pdf`): `Ok(Err(why))` when it is
/// not a PDF a reader can open.
async fn check_pdf(
    path: &std::path::Path,
    head: &[u8],
    tail: &[u8],
    len: i64,
) -> Result<std::result::Result<(), pdf::NotPdf>> {
    use tokio::io::AsyncSeekExt;
    if let Err(e) = pdf::check_header(head) {
        return Ok(Err(e));
    }
    let offset = match pdf::startxref(tail, len as u64) {
        Ok(o) => o,
        Err(e) => return Ok(Err(e)),
    };
    let mut f = tokio::fs::File::open(path).await.map_err(io)?;
    f.seek(std::io::SeekFrom::Start(offset)).await.map_err(io)?;
    let mut probe = Vec::with_capacity(pdf::XREF_PROBE_LEN);
    f.take(pdf::XREF_PROBE_LEN as u64)
        .read_to_end(&mut probe)
        .await
        .map_err(io)?;
    Ok(pdf::check_xref_at(offset, &probe))
}

/// Refuses the upload for its type (`head`, its first bytes): see [`refuse`]. Returns the
/// reason.
pub async fn refuse_type(
    state: &AppState,
    ctx: &Ctx,
    u: &UploadRow,
    head: &[u8],
) -> Result<String> {
    refuse(state, ctx, u, accept_of(u).refusal_reason(head)).await
}

/// Refuses the upload for what it holds: the partial data and the upload go, the target
/// record (unless it already has its file) keeps the reason as processing `failed` (a photo
/// record is seen so by devices on their next pull), and `PhotoUploadRefused` /
/// `SampleAttachmentUploadRefused` is recorded. Returns the reason.
pub async fn refuse(state: &AppState, ctx: &Ctx, u: &UploadRow, reason: String) -> Result<String> {
    let _ = tokio::fs::remove_file(partial_path(state, &u.id)).await;
    let mut tx = state.db.begin_write().await?;
    let (before, marked) = match u.owner() {
        Owner::Photo(photo_id) => {
            store::sync::lock_task_of_photo(tx.conn(), photo_id).await?;
            let before = q::photo_state(tx.conn(), photo_id)
                .await?
                .map(|b| (b.processing_status, b.processing_error));
            q::delete(tx.conn(), &u.id).await?;
            (before, q::mark_refused(tx.conn(), photo_id, &reason).await?)
        }
        Owner::Attachment(id) => {
            store::sync::lock_sample_of_attachment(tx.conn(), id).await?;
            let before = qa::state(tx.conn(), id)
                .await?
                .map(|b| (b.processing_status, b.processing_error));
            q::delete(tx.conn(), &u.id).await?;
            (before, qa::mark_refused(tx.conn(), id, &reason).await?)
        }
    };
    let mut event = refused_event(u, "unsupported_media_type", &reason);
    if marked {
        let (status, error) = before.map(|(s, e)| (Some(s), e)).unwrap_or_default();
        event = event.change("processing_status", status, "failed").change(
            "processing_error",
            error,
            &reason,
        );
    }
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(reason)
}

fn refused_event(u: &UploadRow, code: &str, message: &str) -> Event {
    let event = match u.owner() {
        Owner::Photo(id) => Event::new(Action::PhotoUploadRefused, RecordKind::Photo, id),
        Owner::Attachment(id) => Event::new(
            Action::SampleAttachmentUploadRefused,
            RecordKind::SampleAttachment,
            id,
        ),
    };
    event
        .set("reason", code)
        .set("message", message)
        .set("upload_id", &u.id)
        .set("sha256", &u.sha256)
}

/// The final transaction of an upload that sent its bytes: offset, blob, attachment, job and
/// `PhotoUploaded`, only if the upload is still at its offset and open. Returns whether it was
/// (else nothing is written).
async fn attach(db: &Db, ctx: &Ctx, u: &UploadRow, sha256: &str, media: &str) -> Result<bool> {
    let mut tx = db.begin_write().await?;
    if !q::mark_complete(tx.conn(), &u.id, u.upload_offset).await? {
        return Ok(false); // rolls back
    }
    let event = attach_in(
        tx.conn(),
        u.owner(),
        accept_of(u),
        sha256,
        u.length,
        media,
        &u.id,
        false,
    )
    .await?;
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(true)
}

/// Inside the caller's transaction: the blob is recorded (once per content), the record gets
/// it (a photo record: devices see it on their next pull) and processing is queued (photos;
/// a PDF is stored as it is, processed at once). Returns the `PhotoUploaded` /
/// `SampleAttachmentUploaded` event.
#[allow(clippy::too_many_arguments)]
async fn attach_in(
    conn: &mut sqlx::AnyConnection,
    owner: Owner<'_>,
    accept: Accept,
    sha256: &str,
    byte_size: i64,
    media: &str,
    upload_id: &str,
    deduplicated: bool,
) -> Result<Event> {
    let new_content = q::insert_blob(conn, sha256, byte_size, media, &blob_key(sha256)).await?;
    let (event, before, status) = match owner {
        Owner::Photo(photo_id) => {
            store::sync::lock_task_of_photo(conn, photo_id).await?;
            let before = q::photo_state(conn, photo_id)
                .await?
                .map(|b| (b.processing_status, b.processing_error));
            q::attach_photo(conn, photo_id, sha256, media).await?;
            // Processing (EXIF, renditions, flags) runs off the request path, from the job queue.
            let payload = serde_json::json!({ "photo_id": photo_id }).to_string();
            store::jobs::enqueue(conn, q::PROCESS_JOB, &payload, 5).await?;
            let event = Event::new(Action::PhotoUploaded, RecordKind::Photo, photo_id);
            (event, before, "uploaded")
        }
        Owner::Attachment(id) => {
            store::sync::lock_sample_of_attachment(conn, id).await?;
            let before = qa::state(conn, id)
                .await?
                .map(|b| (b.processing_status, b.processing_error));
            let status = match accept {
                // A PDF is kept as it came: nothing to make from it.
                Accept::Pdf => "processed",
                Accept::Photo => {
                    let payload = serde_json::json!({ "attachment_id": id }).to_string();
                    store::jobs::enqueue(conn, qa::PROCESS_JOB, &payload, 5).await?;
                    "uploaded"
                }
            };
            qa::attach(conn, id, sha256, media, status).await?;
            let event = Event::new(
                Action::SampleAttachmentUploaded,
                RecordKind::SampleAttachment,
                id,
            );
            (event, before, status)
        }
    };
    let (before_status, error) = before.map(|(s, e)| (Some(s), e)).unwrap_or_default();
    Ok(event
        .set("sha256", sha256)
        .set("byte_size", byte_size)
        .set("media_type", media)
        .set("upload_id", upload_id)
        .set("deduplicated", deduplicated)
        .set("new_content", new_content)
        .change("processing_status", before_status, status)
        .change("processing_error", error, None::<String>))
}

/// The type of the stored content `sha256`, when it is stored and of a type `accept` takes.
async fn sniff_stored(state: &AppState, sha256: &str, accept: Accept) -> Option<&'static str> {
    let head = state.storage.head_bytes(&blob_key(sha256), 16).await?;
    accept.sniff(&head)
}

/// Finishes an upload whose offset reached its length but that is not attached (a crash
/// between the two). Without the bytes to finish from, the offset goes back to what is really
/// there and the client's next HEAD tells it to send the rest.
async fn finish_stuck(state: &AppState, ctx: &Ctx, u: &UploadRow) -> Result<Finish> {
    let path = partial_path(state, &u.id);
    let on_disk = tokio::fs::metadata(&path)
        .await
        .ok()
        .map(|m| m.len() as i64);
    let rewind_to = match on_disk {
        Some(n) if n == u.length => return finish(state, ctx, u).await,
        Some(n) => n.min(u.length),
        None => {
            // Older versions moved the file to storage before attaching it: the stored blob
            // (content-addressed, written only after its hash was checked) finishes it.
            if let Some(media) = sniff_stored(state, &u.sha256, accept_of(u)).await {
                attach(&state.db, ctx, u, &u.sha256, media).await?;
                return Ok(Finish::Done);
            }
            tokio::fs::create_dir_all(uploads_dir(state))
                .await
                .map_err(io)?;
            tokio::fs::File::create(&path).await.map_err(io)?;
            0
        }
    };
    let mut tx = state.db.begin_write().await?;
    q::rewind(tx.conn(), &u.id, rewind_to).await?;
    tx.commit().await?;
    Ok(Finish::Done)
}

/// At start-up (and hourly): finishes every upload left complete-but-unattached. Returns how
/// many were finished or rewound.
pub async fn repair_stuck(state: &AppState, ctx: &Ctx) -> Result<usize> {
    let stuck = {
        let mut conn = state.db.acquire().await?;
        q::stuck(&mut conn).await?
    };
    let mut repaired = 0;
    for u in &stuck {
        match finish_stuck(state, ctx, u).await {
            Ok(Finish::Done) => repaired += 1,
            Ok(Finish::Refused(reason)) => {
                tracing::info!(upload = %u.id, %reason, "a stuck upload was refused for its type")
            }
            Err(e) => tracing::warn!(upload = %u.id, error = %e, "could not finish a stuck upload"),
        }
    }
    Ok(repaired)
}

/// Abandons the caller's upload (tus termination); its partial data is removed.
pub async fn terminate(state: &AppState, ctx: &Ctx, id: &str) -> Result<()> {
    let u = owned(&state.db, ctx, id).await?;
    if u.completed == 0 {
        let _ = tokio::fs::remove_file(partial_path(state, &u.id)).await;
    }
    let mut tx = state.db.begin_write().await?;
    q::delete(tx.conn(), &u.id).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes abandoned partial uploads (the hourly sweep): the rows and `UploadsExpired` in one
/// transaction, then their partial files. Returns how many were removed.
pub async fn sweep_expired(state: &AppState, ctx: &Ctx) -> Result<usize> {
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let mut removed = Vec::new();
    for id in q::expired(tx.conn(), now).await? {
        // Still expired: a PATCH may have revived it since it was listed.
        if q::delete_expired(tx.conn(), &id, now).await? {
            removed.push(id);
        }
    }
    if !removed.is_empty() {
        let event = Event::new(Action::UploadsExpired, RecordKind::Batch, "uploads")
            .set("removed", removed.len())
            .set("upload_ids", &removed);
        store::audit::append(tx.conn(), ctx, &[event]).await?;
    }
    tx.commit().await?;
    // After the commit: a crash before this leaves orphaned files, never a row without its data.
    for id in &removed {
        let _ = tokio::fs::remove_file(partial_path(state, id)).await;
    }
    Ok(removed.len())
}
