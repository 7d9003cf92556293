//! The audit log's SQL. Events are appended inside the caller's write transaction, pending
//! (`seq` NULL) until the integrator sequences them.

use sqlx::AnyConnection;

use crate::audit::{Ctx, Event};

/// Appends `events` inside the caller's transaction, so the change and its entries commit
/// together. One statement per event: a use case records a handful.
pub async fn append(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    events: &[Event],
) -> Result<(), sqlx::Error> {
    let at = super::now_ms();
    for e in events {
        sqlx::query(
            "INSERT INTO audit_events (at, actor_id, actor_role, device_id, request_id, action, \
             record_type, record_id, changes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(at)
        .bind(ctx.actor.user_id.as_deref())
        .bind(ctx.actor.role.map(|r| r.as_str()))
        .bind(ctx.actor.device_id.as_deref())
        .bind(ctx.request_id.as_deref())
        .bind(e.action.as_str())
        .bind(e.record.as_str())
        .bind(&e.record_id)
        .bind(e.changes_json())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
