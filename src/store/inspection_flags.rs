//! SQL behind the inspection's own geofence flags: its reported point beside its
//! establishment's registered one, and the write of `server_flags`.

use sqlx::{AnyConnection, FromRow};

use super::{backend_of, placeholders};

/// An inspection's point as the app reported it, and its establishment's WGS-84 point.
#[derive(Debug, Clone, FromRow)]
pub struct InspectionPlace {
    pub id: String,
    pub lng: Option<f64>,
    pub lat: Option<f64>,
    pub crs: Option<String>,
    pub server_flags: Option<String>,
    pub est_lng: Option<f64>,
    pub est_lat: Option<f64>,
}

pub async fn places(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<Vec<InspectionPlace>, sqlx::Error> {
    let backend = backend_of(conn);
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT i.id, i.lng, i.lat, i.crs, i.server_flags, e.lng AS est_lng, e.lat AS est_lat \
             FROM inspections i JOIN establishments e ON e.id = i.establishment_id WHERE i.id IN {}",
            placeholders(backend, 1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, InspectionPlace>(&sql);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// Sets the flags without bumping `seq`: called inside the push that wrote the inspection,
/// whose sequence number it already carries, so devices receive the flags with that change.
pub async fn set_server_flags(
    conn: &mut AnyConnection,
    id: &str,
    flags: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE inspections SET server_flags = $1 WHERE id = $2")
        .bind(flags)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
