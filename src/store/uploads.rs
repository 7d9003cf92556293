//! Resumable uploads (tus) and content-addressed blobs.

use sqlx::{AnyConnection, FromRow};

use super::{now_ms, Db};

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
    db: &Db,
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
    .fetch_optional(db.pool())
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct UploadRow {
    pub id: String,
    pub photo_id: String,
    pub created_by: String,
    pub length: i64,
    pub upload_offset: i64,
    pub sha256: String,
    pub metadata: String,
    pub completed: i64,
    pub expires_at: i64,
}

const COLUMNS: &str =
    "id, photo_id, created_by, length, upload_offset, sha256, metadata, completed, expires_at";

pub struct NewUpload<'a> {
    pub id: &'a str,
    pub photo_id: &'a str,
    pub created_by: &'a str,
    pub length: i64,
    pub sha256: &'a str,
    pub metadata: &'a str,
    pub expires_at: i64,
}

/// What [`create`] did.
#[derive(Debug)]
pub enum Created {
    /// A new upload; the listed uploads of other users for the same photo were replaced
    /// (their partial data is the caller's to remove).
    New { replaced: Vec<String> },
    /// The caller already has an open upload for this photo record: that one goes on.
    Existing(UploadRow),
    /// The caller's open uploads already reserve this many bytes; the new one would pass the cap.
    OverCap { open_bytes: i64 },
}

/// Creates an upload, keeping one open upload per photo record and at most `cap_bytes` of
/// declared length in a user's open uploads, in one transaction (two parallel POSTs cannot
/// both pass the checks: the photo's and the user's rows are locked on PostgreSQL, SQLite has one writer).
pub async fn create(db: &Db, u: &NewUpload<'_>, cap_bytes: i64) -> Result<Created, sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    if db.backend() == super::Backend::Postgres {
        // Always the photo first, then the user: no lock cycle between two creations.
        sqlx::query("SELECT id FROM photos WHERE id = $1 FOR UPDATE")
            .bind(u.photo_id)
            .fetch_optional(tx.conn())
            .await?;
        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
            .bind(u.created_by)
            .fetch_optional(tx.conn())
            .await?;
    }
    let open: Vec<UploadRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM uploads WHERE photo_id = $1 AND completed = 0"
    ))
    .bind(u.photo_id)
    .fetch_all(tx.conn())
    .await?;
    if let Some(mine) = open
        .iter()
        .find(|o| o.created_by == u.created_by && o.expires_at > now)
    {
        return Ok(Created::Existing(mine.clone()));
    }
    // Someone else's (a team mate's other device) or an expired one: the newest upload wins.
    let replaced: Vec<String> = open.into_iter().map(|o| o.id).collect();
    for id in &replaced {
        sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await?;
    }
    let (open_bytes,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(length), 0) AS BIGINT) FROM uploads WHERE created_by = $1 AND completed = 0",
    )
    .bind(u.created_by)
    .fetch_one(tx.conn())
    .await?;
    if open_bytes + u.length > cap_bytes {
        drop(tx); // rolls back
        return Ok(Created::OverCap { open_bytes });
    }
    insert(tx.conn(), u, 0, 0, now).await?;
    tx.commit().await?;
    Ok(Created::New { replaced })
}

async fn insert(
    conn: &mut AnyConnection,
    u: &NewUpload<'_>,
    offset: i64,
    completed: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO uploads (id, photo_id, created_by, length, upload_offset, sha256, metadata, completed, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
    )
    .bind(u.id)
    .bind(u.photo_id)
    .bind(u.created_by)
    .bind(u.length)
    .bind(offset)
    .bind(u.sha256)
    .bind(u.metadata)
    .bind(completed)
    .bind(u.expires_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether `user` is in the team of a task whose photos already hold this content: only then
/// may an upload skip sending the bytes (anyone else proves possession by sending them).
pub async fn team_holds_blob(db: &Db, sha256: &str, user: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM photos p JOIN inspections i ON i.id = p.inspection_id \
         JOIN task_members tm ON tm.task_id = i.task_id \
         WHERE p.blob_sha256 = $1 AND tm.inspector_id = $2 LIMIT 1",
    )
    .bind(sha256)
    .bind(user)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.is_some())
}

/// An upload complete at creation (the team already holds the content): the upload row, the
/// attachment and the processing job in one transaction.
pub async fn create_complete(
    db: &Db,
    u: &NewUpload<'_>,
    media_type: &str,
    storage_key: &str,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    insert(tx.conn(), u, u.length, 1, now).await?;
    attach_photo(
        tx.conn(),
        u.photo_id,
        u.sha256,
        u.length,
        media_type,
        storage_key,
        now,
    )
    .await?;
    tx.commit().await
}

/// Uploads whose offset reached their length but that were never attached (a crash between the
/// two in an older version, or a crash after the final offset write): start-up repairs them.
pub async fn stuck(db: &Db) -> Result<Vec<UploadRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM uploads WHERE completed = 0 AND upload_offset = length LIMIT 1000"
    ))
    .fetch_all(db.pool())
    .await
}

/// Sets the offset back to what the partial file really holds (its data was lost).
pub async fn rewind(db: &Db, id: &str, to: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE uploads SET upload_offset = $1, updated_at = $2 WHERE id = $3 AND completed = 0",
    )
    .bind(to)
    .bind(now_ms())
    .bind(id)
    .execute(tx.conn())
    .await?;
    tx.commit().await
}

/// A file refused for what it is (not JPEG/PNG/WebP, or not the declared content): the upload
/// is removed and the photo record, unless it already has its file, says why, so the device
/// sees `failed` on its next pull.
pub async fn refuse(
    db: &Db,
    upload_id: &str,
    photo_id: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(upload_id)
        .execute(tx.conn())
        .await?;
    let seq = super::sync::next_seq(tx.conn()).await?;
    sqlx::query(
        "UPDATE photos SET processing_status = 'failed', processing_error = $1, seq = $2, updated_at = $3 \
         WHERE id = $4 AND blob_sha256 IS NULL",
    )
    .bind(reason)
    .bind(seq)
    .bind(now)
    .bind(photo_id)
    .execute(tx.conn())
    .await?;
    tx.commit().await
}

pub async fn get(db: &Db, id: &str) -> Result<Option<UploadRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM uploads WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await
}

/// Records progress only if the offset is still `from` (two PATCHes of one upload cannot both
/// advance it).
pub async fn advance(
    db: &Db,
    id: &str,
    from: i64,
    to: i64,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let n = sqlx::query("UPDATE uploads SET upload_offset = $1, expires_at = $2, updated_at = $3 WHERE id = $4 AND upload_offset = $5 AND completed = 0")
        .bind(to)
        .bind(expires_at)
        .bind(now_ms())
        .bind(id)
        .bind(from)
        .execute(tx.conn())
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(n == 1)
}

pub async fn delete(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(id)
        .execute(tx.conn())
        .await?;
    tx.commit().await
}

/// Incomplete uploads whose expiry passed.
pub async fn expired(db: &Db, now: i64) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM uploads WHERE completed = 0 AND expires_at < $1 LIMIT 1000")
            .bind(now)
            .fetch_all(db.pool())
            .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub async fn blob_exists(db: &Db, sha256: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT sha256 FROM blobs WHERE sha256 = $1")
        .bind(sha256)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.is_some())
}

/// The final step of an upload, in one transaction: the offset reaches the length, the blob
/// is recorded (once per content), the photo gets it (devices see it on their next pull) and
/// processing is queued. Only if the upload is still at offset `from` and open; returns
/// whether it was (else nothing is written).
pub async fn complete(
    db: &Db,
    upload: &UploadRow,
    from: i64,
    sha256: &str,
    media_type: &str,
    storage_key: &str,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let n = sqlx::query(
        "UPDATE uploads SET upload_offset = length, completed = 1, updated_at = $1 \
         WHERE id = $2 AND upload_offset = $3 AND completed = 0",
    )
    .bind(now)
    .bind(&upload.id)
    .bind(from)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if n != 1 {
        drop(tx); // rolls back
        return Ok(false);
    }
    attach_photo(
        tx.conn(),
        &upload.photo_id,
        sha256,
        upload.length,
        media_type,
        storage_key,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

async fn attach_photo(
    conn: &mut AnyConnection,
    photo_id: &str,
    sha256: &str,
    byte_size: i64,
    media_type: &str,
    storage_key: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let seq = super::sync::next_seq(conn).await?;
    attach_in(conn, sha256, byte_size, media_type, storage_key, now).await?;
    sqlx::query(
        "UPDATE photos SET blob_sha256 = $1, media_type = $2, uploaded_at = $3, processing_status = 'uploaded', \
         processing_error = NULL, seq = $4, updated_at = $3 WHERE id = $5",
    )
    .bind(sha256)
    .bind(media_type)
    .bind(now)
    .bind(seq)
    .bind(photo_id)
    .execute(&mut *conn)
    .await?;
    // Processing (EXIF, renditions, flags) runs off the request path, from the job queue.
    let payload = serde_json::json!({ "photo_id": photo_id }).to_string();
    super::jobs::enqueue(conn, PROCESS_JOB, &payload, 5).await?;
    Ok(())
}

async fn attach_in(
    conn: &mut AnyConnection,
    sha256: &str,
    byte_size: i64,
    media_type: &str,
    storage_key: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO blobs (sha256, byte_size, media_type, storage_key, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha256)
    .bind(byte_size)
    .bind(media_type)
    .bind(storage_key)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn count_blobs(db: &Db) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM blobs")
        .fetch_one(db.pool())
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
    db: &Db,
    photo_id: &str,
) -> Result<Option<ProcessingInput>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.id AS photo_id, b.sha256, b.storage_key, b.media_type, p.taken_at, i.started_at, i.finished_at,          i.lng AS insp_lng, i.lat AS insp_lat, i.crs AS insp_crs, e.lng AS est_lng, e.lat AS est_lat          FROM photos p JOIN blobs b ON b.sha256 = p.blob_sha256 JOIN inspections i ON i.id = p.inspection_id          JOIN establishments e ON e.id = i.establishment_id WHERE p.id = $1",
    )
    .bind(photo_id)
    .fetch_optional(db.pool())
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
    db: &Db,
    photo_id: &str,
    p: &Processed<'_>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let seq = super::sync::next_seq(tx.conn()).await?;
    sqlx::query(
        "UPDATE photos SET processing_status = $1, processing_error = $2, width = $3, height = $4, exif = $5,          exif_taken_at = $6, exif_lng = $7, exif_lat = $8, flags = $9, seq = $10, updated_at = $11 WHERE id = $12",
    )
    .bind(p.status)
    .bind(p.error)
    .bind(p.width)
    .bind(p.height)
    .bind(p.exif_json)
    .bind(p.exif_taken_at)
    .bind(p.exif_lng)
    .bind(p.exif_lat)
    .bind(p.flags_json)
    .bind(seq)
    .bind(now)
    .bind(photo_id)
    .execute(tx.conn())
    .await?;
    tx.commit().await
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
    db: &Db,
    photo_id: &str,
    user: &str,
) -> Result<Option<PhotoFile>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.id, b.sha256, b.storage_key, b.media_type, p.processing_status,          CASE WHEN EXISTS (SELECT 1 FROM task_members tm WHERE tm.task_id = i.task_id AND tm.inspector_id = $2)               THEN 1 ELSE 0 END AS is_member          FROM photos p JOIN inspections i ON i.id = p.inspection_id LEFT JOIN blobs b ON b.sha256 = p.blob_sha256          WHERE p.id = $1",
    )
    .bind(photo_id)
    .bind(user)
    .fetch_optional(db.pool())
    .await
}
