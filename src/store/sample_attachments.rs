//! A sample's attachments (site, sample and seal photos; the lab report PDF): SQL only. The
//! use cases in `ops::sample_attachments` and `ops::uploads` compose these inside their one
//! write transaction.

use sqlx::{AnyConnection, FromRow};

use super::now_ms;

/// The job kind that processes an uploaded attachment photo.
pub const PROCESS_JOB: &str = "sample_attachment.process";

const COLUMNS: &str = "a.id, a.sample_id, a.kind, a.sha256, a.byte_size, a.taken_at, a.body_sha256, \
    a.declared_by, a.blob_sha256, a.media_type, a.uploaded_at, a.processing_status, a.processing_error, \
    a.width, a.height, a.created_at, a.updated_at";

#[derive(Debug, Clone, FromRow)]
pub struct AttachmentRow {
    pub id: String,
    pub sample_id: String,
    pub kind: String,
    pub sha256: String,
    pub byte_size: i64,
    pub taken_at: i64,
    pub body_sha256: String,
    pub declared_by: String,
    pub blob_sha256: Option<String>,
    pub media_type: Option<String>,
    pub uploaded_at: Option<i64>,
    pub processing_status: String,
    pub processing_error: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub struct NewAttachmentRow<'a> {
    pub id: &'a str,
    pub sample_id: &'a str,
    pub kind: &'a str,
    pub sha256: &'a str,
    pub byte_size: i64,
    pub taken_at: i64,
    pub body_sha256: &'a str,
    pub declared_by: &'a str,
}

/// Inserts a declaration; `stamp` is its sync bookkeeping (migration 0036): the write
/// transaction's sequence number and the `user/device` that declared it.
pub async fn insert(
    conn: &mut AnyConnection,
    a: &NewAttachmentRow<'_>,
    stamp: super::sampling::Stamp<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sample_attachments (id, sample_id, kind, sha256, byte_size, taken_at, body_sha256, declared_by, \
         processing_status, created_at, updated_at, seq, created_seq, origin_device) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'awaiting_upload', $9, $9, $10, $10, $11)",
    )
    .bind(a.id)
    .bind(a.sample_id)
    .bind(a.kind)
    .bind(a.sha256)
    .bind(a.byte_size)
    .bind(a.taken_at)
    .bind(a.body_sha256)
    .bind(a.declared_by)
    .bind(now_ms())
    .bind(stamp.seq)
    .bind(stamp.origin_device)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<AttachmentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sample_attachments a WHERE a.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A sample's attachments, in declaration order.
pub async fn of_sample(
    conn: &mut AnyConnection,
    sample_id: &str,
) -> Result<Vec<AttachmentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sample_attachments a WHERE a.sample_id = $1 ORDER BY a.created_at, a.id"
    ))
    .bind(sample_id)
    .fetch_all(conn)
    .await
}

/// A sample attachment for the sync pull (schema 7), with what tells whether it is new to the
/// device.
#[derive(Debug, Clone, FromRow)]
pub struct SyncAttachment {
    pub id: String,
    pub sample_id: String,
    pub kind: String,
    pub sha256: String,
    pub byte_size: i64,
    pub taken_at: i64,
    pub processing_status: String,
    pub processing_error: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub created_seq: i64,
    pub origin_device: Option<String>,
}

/// The site, sample and seal photos of samples `sample_ids` changed in `window` (the lab's
/// report is not synced: lab results are not).
pub async fn for_pull(
    conn: &mut AnyConnection,
    sample_ids: &[&str],
    window: super::sync::Window,
) -> Result<Vec<SyncAttachment>, sqlx::Error> {
    super::sync::select_in(
        conn,
        "SELECT a.id, a.sample_id, a.kind, a.sha256, a.byte_size, a.taken_at, a.processing_status, \
         a.processing_error, a.width, a.height, a.created_seq, a.origin_device FROM sample_attachments a",
        "a.sample_id",
        sample_ids,
        Some((&["a.seq"][..], window)),
        "AND a.kind <> 'report' ORDER BY a.seq, a.id",
    )
    .await
}

/// An attachment as an upload needs it, with whether `user` is one of its sample's samplers
/// or an account of its sample's lab.
#[derive(Debug, Clone, FromRow)]
pub struct AttachmentTarget {
    pub id: String,
    pub sample_id: String,
    pub kind: String,
    pub sha256: String,
    pub byte_size: i64,
    pub is_sampler: i64,
    pub is_lab: i64,
}

pub async fn target(
    conn: &mut AnyConnection,
    id: &str,
    user: &str,
) -> Result<Option<AttachmentTarget>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.id, a.sample_id, a.kind, a.sha256, a.byte_size, \
         CASE WHEN EXISTS (SELECT 1 FROM sample_samplers ss WHERE ss.sample_id = a.sample_id AND ss.user_id = $2) \
              THEN 1 ELSE 0 END AS is_sampler, \
         CASE WHEN EXISTS (SELECT 1 FROM users u WHERE u.id = $2 AND u.role = 'lab' AND u.lab_id = s.lab_id) \
              THEN 1 ELSE 0 END AS is_lab \
         FROM sample_attachments a JOIN samples s ON s.id = a.sample_id WHERE a.id = $1",
    )
    .bind(id)
    .bind(user)
    .fetch_optional(conn)
    .await
}

/// Whether `user` may already read this content as an attachment: of a sample they sample, or
/// of a sample sent to their lab. Only then may an upload skip sending the bytes.
pub async fn user_holds_blob(
    conn: &mut AnyConnection,
    sha256: &str,
    user: &str,
) -> Result<bool, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM sample_attachments a JOIN samples s ON s.id = a.sample_id \
         WHERE a.blob_sha256 = $1 AND ( \
           EXISTS (SELECT 1 FROM sample_samplers ss WHERE ss.sample_id = a.sample_id AND ss.user_id = $2) \
           OR EXISTS (SELECT 1 FROM users u WHERE u.id = $2 AND u.role = 'lab' AND u.lab_id = s.lab_id)) \
         LIMIT 1",
    )
    .bind(sha256)
    .bind(user)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// An attachment's file and processing state, before an upload or processing changes it.
#[derive(Debug, Clone, FromRow)]
pub struct AttachmentState {
    pub blob_sha256: Option<String>,
    pub processing_status: String,
    pub processing_error: Option<String>,
}

pub async fn state(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<AttachmentState>, sqlx::Error> {
    sqlx::query_as(
        "SELECT blob_sha256, processing_status, processing_error FROM sample_attachments WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Marks an attachment without its file as refused (`failed` with the reason). Returns whether
/// it changed (one that already has its file keeps it).
pub async fn mark_refused(
    conn: &mut AnyConnection,
    id: &str,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    // A new `seq`: the samplers' devices pull the refusal (sync schema 7).
    let seq = super::sync::next_seq(conn).await?;
    let n = sqlx::query(
        "UPDATE sample_attachments SET processing_status = 'failed', processing_error = $1, updated_at = $2, \
         seq = $4 WHERE id = $3 AND blob_sha256 IS NULL",
    )
    .bind(reason)
    .bind(now_ms())
    .bind(id)
    .bind(seq)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Gives the attachment its file, with the status it now has (`uploaded` for a photo to
/// process, `processed` for a PDF, kept as it is).
pub async fn attach(
    conn: &mut AnyConnection,
    id: &str,
    sha256: &str,
    media_type: &str,
    status: &str,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let seq = super::sync::next_seq(conn).await?;
    sqlx::query(
        "UPDATE sample_attachments SET blob_sha256 = $1, media_type = $2, uploaded_at = $3, processing_status = $4, \
         processing_error = NULL, updated_at = $3, seq = $6 WHERE id = $5",
    )
    .bind(sha256)
    .bind(media_type)
    .bind(now)
    .bind(status)
    .bind(id)
    .bind(seq)
    .execute(conn)
    .await?;
    Ok(())
}

/// What processing an attachment photo needs.
#[derive(Debug, Clone, FromRow)]
pub struct ProcessingInput {
    pub id: String,
    pub sha256: String,
    pub storage_key: String,
}

pub async fn processing_input(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<ProcessingInput>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.id, b.sha256, b.storage_key FROM sample_attachments a \
         JOIN blobs b ON b.sha256 = a.blob_sha256 WHERE a.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// What processing found.
pub async fn save_processing(
    conn: &mut AnyConnection,
    id: &str,
    status: &str,
    error: Option<&str>,
    size: Option<(i64, i64)>,
    exif_json: Option<&str>,
) -> Result<(), sqlx::Error> {
    let seq = super::sync::next_seq(conn).await?;
    sqlx::query(
        "UPDATE sample_attachments SET processing_status = $1, processing_error = $2, width = $3, height = $4, \
         exif = $5, updated_at = $6, seq = $8 WHERE id = $7",
    )
    .bind(status)
    .bind(error)
    .bind(size.map(|s| s.0))
    .bind(size.map(|s| s.1))
    .bind(exif_json)
    .bind(now_ms())
    .bind(id)
    .bind(seq)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn storage_key(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT b.storage_key FROM sample_attachments a JOIN blobs b ON b.sha256 = a.blob_sha256 WHERE a.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.0))
}

/// Names the report PDF of a sample's stored lab result.
pub async fn set_result_report(
    conn: &mut AnyConnection,
    sample_id: &str,
    attachment_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE lab_results SET report_attachment_id = $1 WHERE sample_id = $2")
        .bind(attachment_id)
        .bind(sample_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The report PDF a sample's lab result names, if any.
pub async fn result_report(
    conn: &mut AnyConnection,
    sample_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT report_attachment_id FROM lab_results WHERE sample_id = $1")
            .bind(sample_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.and_then(|r| r.0))
}
