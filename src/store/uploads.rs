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

pub async fn create(db: &Db, u: &NewUpload<'_>) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO uploads (id, photo_id, created_by, length, upload_offset, sha256, metadata, completed, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 0, $5, $6, 0, $7, $8, $8)",
    )
    .bind(u.id)
    .bind(u.photo_id)
    .bind(u.created_by)
    .bind(u.length)
    .bind(u.sha256)
    .bind(u.metadata)
    .bind(u.expires_at)
    .bind(now)
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

/// Records the stored blob (once per content) and attaches it to the photo, whose change
/// reaches devices on their next pull. Completes the upload, if any.
pub async fn attach(
    db: &Db,
    upload_id: Option<&str>,
    photo_id: &str,
    sha256: &str,
    byte_size: i64,
    media_type: &str,
    storage_key: &str,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let seq = super::sync::next_seq(tx.conn()).await?;
    attach_in(tx.conn(), sha256, byte_size, media_type, storage_key, now).await?;
    sqlx::query(
        "UPDATE photos SET blob_sha256 = $1, media_type = $2, uploaded_at = $3, processing_status = 'uploaded', \
         seq = $4, updated_at = $3 WHERE id = $5",
    )
    .bind(sha256)
    .bind(media_type)
    .bind(now)
    .bind(seq)
    .bind(photo_id)
    .execute(tx.conn())
    .await?;
    // Processing (EXIF, renditions, flags) runs off the request path, from the job queue.
    let payload = serde_json::json!({ "photo_id": photo_id }).to_string();
    super::jobs::enqueue(tx.conn(), PROCESS_JOB, &payload, 5).await?;
    if let Some(id) = upload_id {
        sqlx::query("UPDATE uploads SET completed = 1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await?;
    }
    tx.commit().await
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
