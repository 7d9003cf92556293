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
    store::sync::lock_tasks(tx.conn(), &[id.to_string()]).await?;
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

/// Gives a task to another team (admin, reviewer): after its inspection was rejected, or before
/// its team started ([`crate::plan::reassign`] says when). One write transaction: the members
/// change at one sync sequence number, so the new members' devices get the task and its
/// records as new, the removed members' devices are told to delete them, and those who stay
/// see the new team. A recheck task's follow-up records its new team.
pub async fn reassign(
    db: &Db,
    ctx: &Ctx,
    id: &str,
    team: &[String],
    reason: &str,
) -> Result<crate::plan::reassign::Reassignment> {
    use crate::plan::reassign::{self, Facts};
    access::require(ctx, &[Role::Admin, Role::Reviewer])?;
    let mut tx = db.begin_write().await?;
    // The task, locked first (PostgreSQL): a push that moved the task or added an inspection
    // has committed, and none starts deciding on it, until this commits.
    store::sync::lock_tasks(tx.conn(), &[id.to_string()]).await?;
    let seq = store::sync::next_seq(tx.conn()).await?;
    let task = store::plans::get_task(tx.conn(), id)
        .await?
        .ok_or_else(|| Error::not_found("no such task"))?;
    let current: Vec<String> = store::plans::members_of(tx.conn(), &[id.to_string()])
        .await?
        .into_iter()
        .map(|(_, inspector, _, _, _)| inspector)
        .collect();
    let mut inspections = Vec::new();
    for (submitted, state) in store::plans::inspection_states(tx.conn(), id).await? {
        let state = match state.as_deref() {
            Some(s) => Some(crate::review::ReviewState::parse(s).ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("review_state of an inspection is {s:?}"))
            })?),
            // Submitted before review existed counts as waiting.
            None if submitted != 0 => Some(crate::review::ReviewState::Submitted),
            None => None,
        };
        inspections.push(state);
    }
    let facts = super::followup::team_facts(tx.conn(), &task.establishment_id, team).await?;
    let r = reassign::decide(
        &Facts {
            state: task.state,
            current: &current,
            inspections: &inspections,
            team: &facts,
        },
        team,
        reason,
    )
    .map_err(|e| {
        if e.is_conflict() {
            Error::conflict(e.code(), e.to_string())
        } else {
            Error::invalid(e.code(), e.to_string())
        }
    })?;
    store::sync::change_team(tx.conn(), id, &r.team, &r.added, &r.removed, seq).await?;
    let followup = store::plans::followup_of_task(tx.conn(), id).await?;
    if let Some(f) = &followup {
        store::followup::set_recheck_team(tx.conn(), f, &r.team).await?;
    }
    let mut event = Event::new(Action::TaskReassigned, RecordKind::Task, id)
        .change("team", &current, &r.team)
        .set("added", &r.added)
        .set("removed", &r.removed)
        .set("reason", &r.reason);
    if let Some(f) = &followup {
        event = event.set("followup_id", f);
    }
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(r)
}
