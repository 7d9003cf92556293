//! Resumable uploads (tus) and content-addressed blobs: SQL only. Every function runs on the
//! caller's connection; the use cases in `ops::uploads` and `ops::photos` compose them inside
//! their one write transaction.

use sqlx::{AnyConnection, FromRow};

use super::{backend_of, now_ms, Backend};

/// The job kind that processes an uploaded photo.
pub const PROCESS_JOB: &str = "photo.process";

/// A photo record as an upload needs it, with whether `user` may write it.
#[derive(Debug, Clone, FromRow)]
pub struct PhotoTarget {
    pub id: String,
    pub sha256: String,
    pub byte_size: i64,
    pub blob_sha256: Option<String>,
    pub task_id: String,
    pub is_member: i64,
}

pub async fn photo_target(
    conn: &mut AnyConnection,
    photo_id: &str,
    user: &str,
) -> Result<Option<PhotoTarget>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.id, p.sha256, p.byte_size, p.blob_sha256, i.task_id, \
         CASE WHEN EXISTS (SELECT 1 FROM task_members tm WHERE tm.task_id = i.task_id AND tm.inspector_id = $2) \
              THEN 1 ELSE 0 END AS is_member \
         FROM photos p JOIN inspections i ON i.id = p.inspection_id WHERE p.id = $1",
    )
    .bind(photo_id)
    .bind(user)
    .fetch_optional(conn)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct UploadRow {
    pub id: String,
    /// The photo record the upload is for, or
    pub photo_id: Option<String>,
    /// the sample attachment (exactly one of the two is set).
    pub attachment_id: Option<String>,
    /// The attachment's kind (`site`, `sample`, `seal`, `report`), for an attachment's upload.
    pub attachment_kind: Option<String>,
    pub created_by: String,
    pub length: i64,
    pub upload_offset: i64,
    pub sha256: String,
    pub metadata: String,
    pub completed: i64,
    pub expires_at: i64,
}

/// What an upload gives its bytes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    Photo(&'a str),
    Attachment(&'a str),
}

impl<'a> Owner<'a> {
    fn column(self) -> &'static str {
        match self {
            Owner::Photo(_) => "photo_id",
            Owner::Attachment(_) => "attachment_id",
        }
    }

    fn id(self) -> &'a str {
        match self {
            Owner::Photo(id) | Owner::Attachment(id) => id,
        }
    }
}

impl UploadRow {
    /// Whom the upload is for.
    pub fn owner(&self) -> Owner<'_> {
        match (&self.photo_id, &self.attachment_id) {
            (Some(p), _) => Owner::Photo(p),
            (None, Some(a)) => Owner::Attachment(a),
            // The table's CHECK makes this impossible.
            (None, None) => Owner::Photo(""),
        }
    }
}

const SELECT: &str =
    "SELECT u.id, u.photo_id, u.attachment_id, a.kind AS attachment_kind, u.created_by, \
     u.length, u.upload_offset, u.sha256, u.metadata, u.completed, u.expires_at \
     FROM uploads u LEFT JOIN sample_attachments a ON a.id = u.attachment_id";

pub struct NewUpload<'a> {
    pub id: &'a str,
    pub owner: Owner<'a>,
    pub created_by: &'a str,
    pub length: i64,
    pub sha256: &'a str,
    pub metadata: &'a str,
    pub expires_at: i64,
}

/// Locks the owner's (photo or attachment) and the user's rows on PostgreSQL, so that two
/// parallel creations cannot both pass the one-open-upload and open-bytes checks (SQLite has
/// one writer). Always the owner first, then the user: no lock cycle between two creations.
pub async fn lock_for_create(
    conn: &mut AnyConnection,
    owner: Owner<'_>,
    user: &str,
) -> Result<(), sqlx::Error> {
    if backend_of(conn) == Backend::Postgres {
        let table = match owner {
            Owner::Photo(_) => "photos",
            Owner::Attachment(_) => "sample_attachments",
        };
        sqlx::query(&format!("SELECT id FROM {table} WHERE id = $1 FOR UPDATE"))
            .bind(owner.id())
            .fetch_optional(&mut *conn)
            .await?;
        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
            .bind(user)
            .fetch_optional(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The open (incomplete) uploads of a photo record or attachment.
pub async fn open_for(
    conn: &mut AnyConnection,
    owner: Owner<'_>,
) -> Result<Vec<UploadRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE u.{} = $1 AND u.completed = 0",
        owner.column()
    ))
    .bind(owner.id())
    .fetch_all(conn)
    .await
}

/// The declared bytes a user's open uploads reserve.
pub async fn open_bytes(conn: &mut AnyConnection, user: &str) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(length), 0) AS BIGINT) FROM uploads WHERE created_by = $1 AND completed = 0",
    )
    .bind(user)
    .fetch_one(conn)
    .await?;
    Ok(n)
}

/// Inserts an upload at `offset`, complete or not.
pub async fn insert(
    conn: &mut AnyConnection,
    u: &NewUpload<'_>,
    offset: i64,
    completed: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO uploads (id, photo_id, attachment_id, created_by, length, upload_offset, sha256, metadata, completed, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .bind(u.id)
    .bind(match u.owner {
        Owner::Photo(id) => Some(id),
        Owner::Attachment(_) => None,
    })
    .bind(match u.owner {
        Owner::Attachment(id) => Some(id),
        Owner::Photo(_) => None,
    })
    .bind(u.created_by)
    .bind(u.length)
    .bind(offset)
    .bind(u.sha256)
    .bind(u.metadata)
    .bind(i64::from(completed))
    .bind(u.expires_at)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether `user` is in the team of a task whose photos already hold this content: only then
/// may an upload skip sending the bytes (anyone else proves possession by sending them).
pub async fn team_holds_blob(
    conn: &mut AnyConnection,
    sha256: &str,
    user: &str,
) -> Result<bool, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM photos p JOIN inspections i ON i.id = p.inspection_id \
         JOIN task_members tm ON tm.task_id = i.task_id \
         WHERE p.blob_sha256 = $1 AND tm.inspector_id = $2 LIMIT 1",
    )
    .bind(sha256)
    .bind(user)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// Uploads whose offset reached their length but that were never attached (a crash after the
/// last part was stored): start-up repairs them.
pub async fn stuck(conn: &mut AnyConnection) -> Result<Vec<UploadRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE u.completed = 0 AND u.upload_offset = u.length LIMIT 1000"
    ))
    .fetch_all(conn)
    .await
}

/// Sets the offset back to what the stored parts really hold, and drops any part past it.
pub async fn rewind(conn: &mut AnyConnection, id: &str, to: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE uploads SET upload_offset = $1, updated_at = $2 WHERE id = $3 AND completed = 0",
    )
    .bind(to)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM upload_parts WHERE upload_id = $1 AND staged = '' AND part_offset >= $2",
    )
    .bind(id)
    .bind(to)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores one part of an open upload at `from` and advances the offset past it, only if the
/// upload is still at `from` (two PATCHes cannot both append there). Returns whether it was;
/// the caller rolls back when not.
pub async fn append_part(
    conn: &mut AnyConnection,
    id: &str,
    from: i64,
    bytes: &[u8],
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let to = from + bytes.len() as i64;
    if !advance(conn, id, from, to, expires_at).await? {
        return Ok(false);
    }
    insert_part(conn, id, "", from, bytes).await?;
    Ok(true)
}

async fn insert_part(
    conn: &mut AnyConnection,
    id: &str,
    staged: &str,
    offset: i64,
    bytes: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO upload_parts (upload_id, staged, part_offset, bytes, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(staged)
    .bind(offset)
    .bind(bytes)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a part of a checksummed chunk under the chunk's own `staged` id: it does not count
/// until [`promote`] makes it. Only while the upload is open (it may have been finished,
/// terminated or replaced meanwhile); returns whether it was.
pub async fn stage_part(
    conn: &mut AnyConnection,
    id: &str,
    staged: &str,
    offset: i64,
    bytes: &[u8],
) -> Result<bool, sqlx::Error> {
    // PostgreSQL: the upload row's key lock keeps a concurrent termination from deleting it
    // between this check and the foreign key's (SQLite has one writer).
    let lock = match backend_of(conn) {
        Backend::Postgres => " FOR KEY SHARE",
        Backend::Sqlite => "",
    };
    let n = sqlx::query(&format!(
        "INSERT INTO upload_parts (upload_id, staged, part_offset, bytes, created_at) \
         SELECT id, $2, $3, $4, $5 FROM uploads WHERE id = $1 AND completed = 0{lock}"
    ))
    .bind(id)
    .bind(staged)
    .bind(offset)
    .bind(bytes)
    .bind(now_ms())
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Makes a verified chunk's staged parts count and advances the offset from `from` to `to`,
/// only if the upload is still at `from`. Returns whether it was.
pub async fn promote(
    conn: &mut AnyConnection,
    id: &str,
    staged: &str,
    from: i64,
    to: i64,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    if !advance(conn, id, from, to, expires_at).await? {
        return Ok(false);
    }
    sqlx::query("UPDATE upload_parts SET staged = '' WHERE upload_id = $1 AND staged = $2")
        .bind(id)
        .bind(staged)
        .execute(conn)
        .await?;
    Ok(true)
}

/// Drops a chunk's staged parts (a checksum mismatch, a cut or lost chunk).
pub async fn drop_staged(
    conn: &mut AnyConnection,
    id: &str,
    staged: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM upload_parts WHERE upload_id = $1 AND staged = $2")
        .bind(id)
        .bind(staged)
        .execute(conn)
        .await?;
    Ok(())
}

/// Drops staged parts older than `before`: their request died before it could (a crash).
pub async fn drop_stale_staged(conn: &mut AnyConnection, before: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM upload_parts WHERE staged <> '' AND created_at < $1")
            .bind(before)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// The counted parts of an upload, as (offset, length), in order.
pub async fn parts(conn: &mut AnyConnection, id: &str) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT part_offset, CAST(LENGTH(bytes) AS BIGINT) FROM upload_parts \
         WHERE upload_id = $1 AND staged = '' ORDER BY part_offset",
    )
    .bind(id)
    .fetch_all(conn)
    .await
}

/// The bytes of the counted part at `offset`.
pub async fn part(
    conn: &mut AnyConnection,
    id: &str,
    offset: i64,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as(
        "SELECT bytes FROM upload_parts WHERE upload_id = $1 AND staged = '' AND part_offset = $2",
    )
    .bind(id)
    .bind(offset)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.0))
}

/// Drops the parts of an upload that got its file (they are in storage now).
pub async fn drop_parts(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM upload_parts WHERE upload_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a photo record without its file as refused (`failed` with the reason), so the device
/// sees it on its next pull. Returns whether the record changed (one that already has its
/// file keeps it).
pub async fn mark_refused(
    conn: &mut AnyConnection,
    photo_id: &str,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let seq = super::sync::next_seq(conn).await?;
    let n = sqlx::query(
        "UPDATE photos SET processing_status = 'failed', processing_error = $1, seq = $2, updated_at = $3 \
         WHERE id = $4 AND blob_sha256 IS NULL",
    )
    .bind(reason)
    .bind(seq)
    .bind(now_ms())
    .bind(photo_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<UploadRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE u.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Records progress only if the offset is still `from` (two PATCHes of one upload cannot both
/// advance it). Returns whether it was.
pub async fn advance(
    conn: &mut AnyConnection,
    id: &str,
    from: i64,
    to: i64,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("UPDATE uploads SET upload_offset = $1, expires_at = $2, updated_at = $3 WHERE id = $4 AND upload_offset = $5 AND completed = 0")
        .bind(to)
        .bind(expires_at)
        .bind(now_ms())
        .bind(id)
        .bind(from)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Deletes an upload; its parts go with it (`ON DELETE CASCADE`).
pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Incomplete uploads whose expiry passed.
pub async fn expired(conn: &mut AnyConnection, now: i64) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM uploads WHERE completed = 0 AND expires_at < $1 LIMIT 1000")
            .bind(now)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Deletes an upload only if it is still open and expired (a PATCH may have revived it since
/// it was listed). Returns whether it did.
pub async fn delete_expired(
    conn: &mut AnyConnection,
    id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("DELETE FROM uploads WHERE id = $1 AND completed = 0 AND expires_at < $2")
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Marks the upload complete, only if it is still open at offset `from` (its length: all its
/// parts are in); returns whether it was.
pub async fn mark_complete(
    conn: &mut AnyConnection,
    id: &str,
    from: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE uploads SET upload_offset = length, completed = 1, updated_at = $1 \
         WHERE id = $2 AND upload_offset = $3 AND completed = 0",
    )
    .bind(now_ms())
    .bind(id)
    .bind(from)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// A photo record's file and processing state, before an attachment or processing changes it.
#[derive(Debug, Clone, FromRow)]
pub struct PhotoState {
    pub blob_sha256: Option<String>,
    pub processing_status: String,
    pub processing_error: Option<String>,
}

pub async fn photo_state(
    conn: &mut AnyConnection,
    photo_id: &str,
) -> Result<Option<PhotoState>, sqlx::Error> {
    sqlx::query_as(
        "SELECT blob_sha256, processing_status, processing_error FROM photos WHERE id = $1",
    )
    .bind(photo_id)
    .fetch_optional(conn)
    .await
}

/// The content stored once per sha256. Returns whether it is new (else it was stored before).
pub async fn insert_blob(
    conn: &mut AnyConnection,
    sha256: &str,
    byte_size: i64,
    media_type: &str,
    storage_key: &str,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "INSERT INTO blobs (sha256, byte_size, media_type, storage_key, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha256)
    .bind(byte_size)
    .bind(media_type)
    .bind(storage_key)
    .bind(now_ms())
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Gives the photo record its file (devices see it on their next pull: a new `seq`).
pub async fn attach_photo(
    conn: &mut AnyConnection,
    photo_id: &str,
    sha256: &str,
    media_type: &str,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let seq = super::sync::next_seq(conn).await?;
    sqlx::query(
        "UPDATE photos SET blob_sha256 = $1, media_type = $2, uploaded_at = $3, processing_status = 'uploaded', \
         processing_error = NULL, seq = $4, updated_at = $3 WHERE id = $5",
    )
    .bind(sha256)
    .bind(media_type)
    .bind(now)
    .bind(seq)
    .bind(photo_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn count_blobs(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM blobs")
        .fetch_one(conn)
        .await?;
    Ok(n)
}

/// What processing a photo needs.
#[derive(Debug, Clone, FromRow)]
pub struct ProcessingInput {
    pub photo_id: String,
    pub sha256: String,
    pub storage_key: String,
    pub media_type: String,
    pub taken_at: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub insp_lng: Option<f64>,
    pub insp_lat: Option<f64>,
    pub insp_crs: Option<String>,
    pub est_lng: Option<f64>,
    pub est_lat: Option<f64>,
}

pub async fn processing_input(
    conn: &mut AnyConnection,
    photo_id: &str,
) -> Result<Option<ProcessingInput>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.id AS photo_id, b.sha256, b.storage_key, b.media_type, p.taken_at, i.started_at, i.finished_at, \
         i.lng AS insp_lng, i.lat AS insp_lat, i.crs AS insp_crs, e.lng AS est_lng, e.lat AS est_lat \
         FROM photos p JOIN blobs b ON b.sha256 = p.blob_sha256 JOIN inspections i ON i.id = p.inspection_id \
         JOIN establishments e ON e.id = i.establishment_id WHERE p.id = $1",
    )
    .bind(photo_id)
    .fetch_optional(conn)
    .await
}

/// What processing found; the photo record changes so devices see it on their next pull.
pub struct Processed<'a> {
    pub status: &'a str,
    pub error: Option<&'a str>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub exif_json: Option<&'a str>,
    pub exif_taken_at: Option<i64>,
    pub exif_lng: Option<f64>,
    pub exif_lat: Option<f64>,
    pub flags_json: Option<&'a str>,
}

pub async fn save_processing(
    conn: &mut AnyConnection,
    photo_id: &str,
    p: &Processed<'_>,
) -> Result<(), sqlx::Error> {
    let seq = super::sync::next_seq(conn).await?;
    sqlx::query(
        "UPDATE photos SET processing_status = $1, processing_error = $2, width = $3, height = $4, exif = $5, \
         exif_taken_at = $6, exif_lng = $7, exif_lat = $8, flags = $9, seq = $10, updated_at = $11 WHERE id = $12",
    )
    .bind(p.status)
    .bind(p.error)
    .bind(p.width)
    .bind(p.height)
    .bind(p.exif_json)
    .bind(p.exif_taken_at)
    .bind(super::OptF64(p.exif_lng))
    .bind(super::OptF64(p.exif_lat))
    .bind(p.flags_json)
    .bind(seq)
    .bind(now_ms())
    .bind(photo_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A photo as its download endpoint needs it, with whether `user` is in its task's team.
#[derive(Debug, Clone, FromRow)]
pub struct PhotoFile {
    pub id: String,
    pub sha256: Option<String>,
    pub storage_key: Option<String>,
    pub media_type: Option<String>,
    pub processing_status: String,
    pub is_member: i64,
}

pub async fn photo_file(
    conn: &mut AnyConnection,
    photo_id: &str,
    user: &str,
) -> Result<Option<PhotoFile>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.id, b.sha256, b.storage_key, b.media_type, p.processing_status, \
         CASE WHEN EXISTS (SELECT 1 FROM task_members tm WHERE tm.task_id = i.task_id AND tm.inspector_id = $2) \
              THEN 1 ELSE 0 END AS is_member \
         FROM photos p JOIN inspections i ON i.id = p.inspection_id LEFT JOIN blobs b ON b.sha256 = p.blob_sha256 \
         WHERE p.id = $1",
    )
    .bind(photo_id)
    .bind(user)
    .fetch_optional(conn)
    .await
}
