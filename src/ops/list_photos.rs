//! Taking a public photo down again. Photos become public only by being attached to an entry
//! of a published issue, and published entries never change; when a public photo must go (a
//! customer's face, a car's plate, a document the reviewer missed), the takedown is a record
//! of its own, final and audited, and every public read leaves the photo out from its commit
//! (entry pages, histories, HTML pages, the photo route). The photo stays with its
//! inspection and on the internal views; the reason is internal.

use serde::Serialize;
use utoipa::ToSchema;

use super::{access, Ctx, Error, Result};
use crate::audit::{Action, Event, RecordKind};
use crate::auth::Role;
use crate::clock::rfc3339;
use crate::lists;
use crate::store::lists::{self as q, TakedownRow};
use crate::store::{self, Db};

const OFFICE: &[Role] = &[Role::Reviewer, Role::Admin];

/// A public photo taken down.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PhotoTakedown {
    pub photo_id: String,
    /// Internal: why (never public).
    pub reason: String,
    /// User id of the reviewer or admin.
    pub taken_down_by: String,
    /// RFC 3339.
    pub taken_down_at: String,
}

impl From<TakedownRow> for PhotoTakedown {
    fn from(r: TakedownRow) -> PhotoTakedown {
        PhotoTakedown {
            photo_id: r.photo_id,
            reason: r.reason,
            taken_down_by: r.taken_down_by,
            taken_down_at: rfc3339(r.taken_down_at),
        }
    }
}

/// Takes a photo off every public read. Only a photo that is public (attached to an entry of
/// a published issue) can be taken down: any other is 404, as on the public side.
pub async fn take_down(db: &Db, ctx: &Ctx, photo_id: &str, reason: &str) -> Result<PhotoTakedown> {
    access::require(ctx, OFFICE)?;
    if let Some(p) = lists::check_text("reason", reason, lists::MAX_TEXT_CHARS) {
        return Err(super::lists::field_errors(vec![p]));
    }
    let by = ctx
        .user_id()
        .ok_or_else(|| Error::forbidden("a takedown is made by a signed-in user"))?
        .to_string();
    let mut tx = db.begin_write().await?;
    let conn = tx.conn();
    if !q::photo_is_published(conn, photo_id).await? {
        return Err(Error::not_found("no such public photo"));
    }
    if q::takedown(conn, photo_id).await?.is_some() {
        return Err(Error::conflict(
            "already_taken_down",
            "the photo is already taken down",
        ));
    }
    let row = TakedownRow {
        photo_id: photo_id.to_string(),
        reason: reason.trim().to_string(),
        taken_down_by: by,
        taken_down_at: store::now_ms(),
    };
    q::insert_takedown(conn, &row).await.map_err(|e| {
        if store::is_unique_violation(&e) {
            Error::conflict("already_taken_down", "the photo is already taken down")
        } else {
            e.into()
        }
    })?;
    let event = Event::new(Action::PublicPhotoTakenDown, RecordKind::Photo, photo_id)
        .set("reason", &row.reason);
    store::audit::append(conn, ctx, &[event]).await?;
    tx.commit().await?;
    Ok(row.into())
}
