//! Task state changes: an inspector starts their team's task, an admin cancels one with a
//! reason. One write transaction each, with its audit event.

use super::{access, Ctx, Error, Result};
use crate::audit::{Action, Event, RecordKind};
use crate::auth::Role;
use crate::plan::TaskState;
use crate::store::{self, Db};

/// Starts a task (an inspector of its team): `assigned` → `in_progress`.
pub async fn start(db: &Db, ctx: &Ctx, id: &str) -> Result<()> {
    access::require(ctx, &[Role::Inspector])?;
    transition(db, ctx, id, TaskState::InProgress, None).await
}

/// Cancels a task with a reason (admin), unless it is submitted or already cancelled.
pub async fn cancel(db: &Db, ctx: &Ctx, id: &str, reason: &str) -> Result<()> {
    access::require(ctx, &[Role::Admin])?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Error::invalid(
            "validation_failed",
            "reason must be 1 to 500 characters",
        ));
    }
    transition(db, ctx, id, TaskState::Cancelled, Some(reason)).await
}

async fn transition(
    db: &Db,
    ctx: &Ctx,
    id: &str,
    to: TaskState,
    reason: Option<&str>,
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let task = store::plans::get_task(tx.conn(), id)
        .await?
        .ok_or_else(|| Error::not_found("no such task"))?;
    // Inspectors act on their own team's tasks only; others' look absent (ids reveal nothing).
    if ctx.actor.role == Some(Role::Inspector) {
        let user = ctx.user_id().unwrap_or_default();
        if !store::plans::is_member(tx.conn(), id, user).await? {
            return Err(Error::not_found("no such task"));
        }
    }
    let from = task.state;
    if !from.can_move_to(to) {
        return Err(Error::conflict(
            "invalid_state",
            format!(
                "a task that is {} cannot become {}",
                from.as_str(),
                to.as_str()
            ),
        ));
    }
    if !store::plans::set_task_state(tx.conn(), id, from, to, reason).await? {
        return Err(Error::conflict(
            "invalid_state",
            "the task changed meanwhile; reload it",
        ));
    }
    let action = if to == TaskState::Cancelled {
        Action::TaskCancelled
    } else {
        Action::TaskStateChanged
    };
    let mut event = Event::new(action, RecordKind::Task, id).change("state", from, to);
    if let Some(r) = reason {
        event = event.change("cancel_reason", &task.cancel_reason, r);
    }
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(())
}
