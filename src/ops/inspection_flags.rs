//! The inspection's own geofence flags (issue 9, item 6): the photo rule of
//! [`crate::photo::geofence`] applied to the point the app reported for the inspection, CRS-aware,
//! kept in the inspection's `server_flags` beside the flags set at submission. Devices receive
//! them with the inspection; reviewers see them in `GET /api/v1/inspections`.

use sqlx::AnyConnection;

use crate::geo::Crs;
use crate::photo::geofence::{inspection_flags, merge_server_flags, GeofenceConfig};
use crate::store::inspection_flags as q;

/// Recomputes the geofence flags of the inspections `ids` (those written by a push), inside
/// the caller's transaction. Only rows whose flags change are written.
pub async fn refresh(
    conn: &mut AnyConnection,
    ids: &[String],
    cfg: &GeofenceConfig,
) -> crate::ops::Result<()> {
    for p in q::places(conn, ids).await? {
        let point = match (
            p.lng,
            p.lat,
            p.crs.as_deref().and_then(|c| c.parse::<Crs>().ok()),
        ) {
            (Some(lng), Some(lat), Some(crs)) => Some((lng, lat, crs)),
            _ => None,
        };
        let geofence = inspection_flags(point, p.est_lng.zip(p.est_lat), cfg);
        let merged = merge_server_flags(p.server_flags.as_deref(), &geofence);
        // No flags and none stored: leave `null` as it is.
        let unchanged = match p.server_flags.as_deref() {
            None => merged == "[]",
            Some(old) => old == merged,
        };
        if !unchanged {
            q::set_server_flags(conn, &p.id, &merged).await?;
        }
    }
    Ok(())
}
