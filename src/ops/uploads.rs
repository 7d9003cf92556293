//! Upload use cases behind the tus endpoints (`http::uploads` keeps the protocol: headers,
//! 412/460, cutting a chunk into parts) and the background sweeps. An upload
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
//! Where an open upload's bytes are: in the database (`upload_parts`), never on the disk of
//! the instance that took them, so that behind a round-robin proxy the next PATCH or HEAD may
//! reach any instance. A chunk is stored as parts of at most [`PART_BYTES`], each committed in
//! the transaction that advances the offset past it, so the committed parts are always
//! exactly bytes `0..upload_offset` and a PATCH cut off half way keeps its committed parts. A
//! chunk sent with `Upload-Checksum` is staged part by part under its own id and counted (in
//! one transaction with the offset) only when the whole chunk matched. The database and not
//! S3 multipart: it serves both storage backends and SQLite deployments alike, needs no second
//! service to be consistent with the offset, and S3 multipart parts must be at least 5 MiB
//! (tus clients send smaller chunks). Photos are at most `max_photo_bytes` (25 MB) and the
//! parts of an upload go as soon as its file is in storage.
//!
//! Crash safety: the last part commits the final offset; the complete file is then assembled
//! from the parts into a local scratch file (not state: any instance can assemble it again),
//! checked and stored, and the blob, the attachment, the processing job and the removal of
//! the parts are written in one transaction. An upload found with all its bytes but not
//! attached is finished by the next HEAD, PATCH, POST or start-up ([`settle`],
//! [`repair_stuck`]), on any instance.

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// The largest part of an upload stored in one row (and held in memory by one request).
pub const PART_BYTES: usize = 1024 * 1024;

/// A staged part older than this belongs to a request that died (the whole body must arrive
/// within `body_read_timeout_secs`, 300 s by default): the sweep removes it.
const STALE_STAGED_MS: i64 = 3600 * 1000;

/// Earlier versions kept an open upload's bytes in `<data_dir>/uploads/<id>.part`, on the
/// instance that took them. Migration 0038 set those uploads back to offset 0 (their clients
/// send them again, as a client whose upload reached another instance had to anyway), so the
/// files are removed at start-up; so are scratch files of assemblies a crash cut short (older
/// than an hour: another instance sharing the data directory may be assembling one now).
/// Returns how many `.part` files were removed.
pub async fn remove_local_leftovers(data_dir: &std::path::Path) -> usize {
    let mut removed = 0;
    let dir = data_dir.join("uploads");
    if let Ok(mut entries) = tokio::fs::read_dir(&dir).await {
        while let Ok(Some(e)) = entries.next_entry().await {
            if e.path().extension().is_some_and(|x| x == "part")
                && tokio::fs::remove_file(e.path()).await.is_ok()
            {
                removed += 1;
            }
        }
        let _ = tokio::fs::remove_dir(&dir).await; // only when empty
    }
    if let Ok(mut entries) = tokio::fs::read_dir(data_dir.join(SCRATCH_DIR)).await {
        let hour = std::time::Duration::from_secs(3600);
        while let Ok(Some(e)) = entries.next_entry().await {
            let old = e
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > hour);
            if old && e.path().extension().is_some_and(|x| x == "upload") {
                let _ = tokio::fs::remove_file(e.path()).await;
            }
        }
    }
    removed
}

/// Where complete uploads are assembled (under the data directory: a local store moves the
/// file into place, which needs the same filesystem).
const SCRATCH_DIR: &str = "tmp";

/// A local scratch file, removed when dropped (unless it was moved into storage).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
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
    let cap = i64::try_from(state.config.max_open_upload_bytes_per_user).unwrap_or(i64::MAX);
    {
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
        // Someone else's (a team mate's other device) or an expired one: the newest upload wins
        // (its parts go with it).
        for old in &open {
            q::delete(tx.conn(), &old.id).await?;
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
    }
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
    if let Finish::Refused(reason) = finish(state, ctx, &u).await? {
        return Ok(Settled::Refused(reason));
    }
    Ok(Settled::Ready(owned(&state.db, ctx, &u.id).await?))
}

/// Renews an upload's expiry (an empty PATCH), only if it is still at offset `at` (else 409
/// `offset_mismatch`: another request moved it).
pub async fn touch(db: &Db, id: &str, at: i64, expires_at: i64) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let moved = q::advance(tx.conn(), id, at, at, expires_at).await?;
    tx.commit().await?;
    if moved {
        Ok(())
    } else {
        Err(moved_meanwhile())
    }
}

/// Stores the part `bytes` at `from` and advances the offset past it, in one transaction, only
/// if the upload is still at `from` (else 409 `offset_mismatch`: another request moved it).
pub async fn append_part(
    db: &Db,
    id: &str,
    from: i64,
    bytes: &[u8],
    expires_at: i64,
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    if !q::append_part(tx.conn(), id, from, bytes, expires_at).await? {
        return Err(moved_meanwhile()); // rolls back
    }
    tx.commit().await?;
    Ok(())
}

/// Stores a part of a checksummed chunk (`staged`: the chunk's id); it counts only once
/// [`promote`]d. 409 `offset_mismatch` when the upload was finished, terminated or replaced
/// meanwhile.
pub async fn stage_part(db: &Db, id: &str, staged: &str, offset: i64, bytes: &[u8]) -> Result<()> {
    let mut tx = db.begin_write().await?;
    if !q::stage_part(tx.conn(), id, staged, offset, bytes).await? {
        return Err(moved_meanwhile());
    }
    tx.commit().await?;
    Ok(())
}

/// Counts a verified chunk's staged parts and advances the offset from `from` to `to`, only if
/// the upload is still at `from`; else its parts are dropped and 409 `offset_mismatch`.
pub async fn promote(
    db: &Db,
    id: &str,
    staged: &str,
    from: i64,
    to: i64,
    expires_at: i64,
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    if q::promote(tx.conn(), id, staged, from, to, expires_at).await? {
        tx.commit().await?;
        return Ok(());
    }
    drop(tx);
    drop_staged(db, id, staged).await?;
    Err(moved_meanwhile())
}

/// Drops a chunk's staged parts (checksum mismatch, cut off).
pub async fn drop_staged(db: &Db, id: &str, staged: &str) -> Result<()> {
    let mut tx = db.begin_write().await?;
    q::drop_staged(tx.conn(), id, staged).await?;
    tx.commit().await?;
    Ok(())
}

/// The first `n` bytes of an upload's counted parts (fewer if it holds fewer): a resumed
/// upload's type is decided from them.
pub async fn head_of(db: &Db, id: &str, n: usize) -> Result<Vec<u8>> {
    let mut conn = db.acquire().await?;
    let mut head = Vec::new();
    for (offset, _) in q::parts(&mut conn, id).await? {
        if head.len() >= n || offset != head.len() as i64 {
            break;
        }
        let Some(bytes) = q::part(&mut conn, id, offset).await? else {
            break;
        };
        head.extend_from_slice(&bytes[..bytes.len().min(n - head.len())]);
    }
    Ok(head)
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
    /// Attached (here or by a parallel request).
    Done,
    /// Fewer bytes stored than the offset said (parts lost): the offset went back to what is
    /// really there, and the client's next HEAD tells it to send the rest.
    Rewound(i64),
    /// Refused for its type: the reason; the upload is gone, the photo record says why.
    Refused(String),
}

/// The whole file is in (its parts reach the length): it is assembled from the parts into a
/// local scratch file, its hash and type are checked, it is stored once per content, then in
/// one transaction the upload is marked complete, attached, its parts dropped, processing
/// queued and `PhotoUploaded` recorded (only if the upload is still open; else it is done when
/// a parallel request finished it, or 409 `offset_mismatch`). A file that does not hash to the
/// declared sha256 is discarded (409 `sha256_mismatch`).
pub async fn finish(state: &AppState, ctx: &Ctx, u: &UploadRow) -> Result<Finish> {
    let dir = state.config.data_dir.join(SCRATCH_DIR);
    tokio::fs::create_dir_all(&dir).await.map_err(io)?;
    let scratch = Scratch(dir.join(format!("{}-{}.upload", u.id, uuid::Uuid::new_v4())));
    let mut f = tokio::fs::File::create(&scratch.0).await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut head = Vec::new();
    // The last bytes, where a PDF's trailer is.
    let mut tail: Vec<u8> = Vec::new();
    let mut at = 0i64;
    {
        // One part in memory at a time.
        let mut conn = state.db.acquire().await?;
        for (offset, _) in q::parts(&mut conn, &u.id).await? {
            if offset != at || at >= u.length {
                break;
            }
            let Some(bytes) = q::part(&mut conn, &u.id, offset).await? else {
                break;
            };
            let n = bytes.len();
            if head.len() < 16 {
                let want = (16 - head.len()).min(n);
                head.extend_from_slice(&bytes[..want]);
            }
            tail.extend_from_slice(&bytes[n.saturating_sub(pdf::TAIL_LEN)..]);
            let drop_n = tail.len().saturating_sub(pdf::TAIL_LEN);
            tail.drain(..drop_n);
            hasher.update(&bytes);
            f.write_all(&bytes).await.map_err(io)?;
            at += n as i64;
        }
    }
    if at != u.length {
        drop(f);
        return short_of_parts(state, &u.id, at.min(u.length)).await;
    }
    f.sync_data().await.map_err(io)?;
    drop(f);
    let actual = hex::encode(hasher.finalize());
    if actual != u.sha256 {
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
        if let Err(e) = check_pdf(&scratch.0, &head, &tail, u.length).await? {
            let reason = format!("the file is not a complete PDF: {e}");
            return Ok(Finish::Refused(refuse(state, ctx, u, reason).await?));
        }
    }
    let key = blob_key(&actual);
    // Stored once per content: the same bytes uploaded again add nothing.
    if !state.storage.exists(&key).await {
        state.storage.put_file(&key, &scratch.0).await?;
    }
    if !attach(&state.db, ctx, u, &actual, media).await? {
        // Finished meanwhile by a parallel request (a HEAD repair, a retried PATCH)?
        finished_meanwhile(&state.db, &u.id).await?;
    }
    Ok(Finish::Done)
}

/// The parts of an upload that should be complete stop at `at`: finished (and its parts
/// dropped) by a parallel request meanwhile, terminated, or its parts lost; the offset then
/// goes back to what is there.
async fn short_of_parts(state: &AppState, id: &str, at: i64) -> Result<Finish> {
    let mut tx = state.db.begin_write().await?;
    match q::get(tx.conn(), id).await? {
        Some(n) if n.completed == 1 => return Ok(Finish::Done),
        None => return Err(Error::not_found("no such upload")),
        Some(_) => {}
    }
    q::rewind(tx.conn(), id, at).await?;
    tx.commit().await?;
    Ok(Finish::Rewound(at))
}

/// Ok when the upload was completed by someone else; else 409 `offset_mismatch`.
async fn finished_meanwhile(db: &Db, id: &str) -> Result<()> {
    let mut conn = db.acquire().await?;
    match q::get(&mut conn, id).await? {
        Some(n) if n.completed == 1 => Ok(()),
        _ => Err(moved_meanwhile()),
    }
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

/// The final transaction of an upload that sent all its bytes: complete, blob, attachment,
/// job, `PhotoUploaded`, and its parts dropped, only if the upload is still open at its full
/// length. Returns whether it was (else nothing is written).
async fn attach(db: &Db, ctx: &Ctx, u: &UploadRow, sha256: &str, media: &str) -> Result<bool> {
    let mut tx = db.begin_write().await?;
    if !q::mark_complete(tx.conn(), &u.id, u.length).await? {
        return Ok(false); // rolls back
    }
    q::drop_parts(tx.conn(), &u.id).await?;
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

/// At start-up (and hourly): finishes every upload left complete-but-unattached. Returns how
/// many were finished or rewound.
pub async fn repair_stuck(state: &AppState, ctx: &Ctx) -> Result<usize> {
    let stuck = {
        let mut conn = state.db.acquire().await?;
        q::stuck(&mut conn).await?
    };
    let mut repaired = 0;
    for u in &stuck {
        match finish(state, ctx, u).await {
            Ok(Finish::Done | Finish::Rewound(_)) => repaired += 1,
            Ok(Finish::Refused(reason)) => {
                tracing::info!(upload = %u.id, %reason, "a stuck upload was refused for its type")
            }
            Err(e) => tracing::warn!(upload = %u.id, error = %e, "could not finish a stuck upload"),
        }
    }
    Ok(repaired)
}

/// Abandons the caller's upload (tus termination); its parts go with it.
pub async fn terminate(state: &AppState, ctx: &Ctx, id: &str) -> Result<()> {
    let u = owned(&state.db, ctx, id).await?;
    let mut tx = state.db.begin_write().await?;
    q::delete(tx.conn(), &u.id).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes abandoned partial uploads (the hourly sweep): the rows, their parts and
/// `UploadsExpired` in one transaction, and the staged parts of requests that died. Returns
/// how many uploads were removed.
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
    q::drop_stale_staged(tx.conn(), now - STALE_STAGED_MS).await?;
    tx.commit().await?;
    Ok(removed.len())
}
