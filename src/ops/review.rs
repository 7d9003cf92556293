//! A reviewer's decision on a submitted inspection, in one write transaction: load → decide
//! (pure, `review::decide`) → write the history row, the inspection, the task, the follow-up
//! (on approval) and the audit events, all stamped with one sync sequence number so the
//! team's devices pull every change.

use serde_json::Value;

use super::{access, Ctx, Error, Result};
use crate::audit::{Action, Event, RecordKind};
use crate::auth::Role;
use crate::checklist::rule::ResultCode;
use crate::review::{
    self, Current, Decision, ItemComment, Refusal, ReviewRecord, ReviewRequest, ReviewState,
};
use crate::store::review::{self as q, DecisionUpdate, NewReview, ReviewRow};
use crate::store::{self, Db};
use crate::sync::decide::result_code;

/// The inspection's review after a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectionReview {
    pub inspection_id: String,
    pub task_id: String,
    pub state: Option<ReviewState>,
    pub round: i64,
    pub computed_result: Option<ResultCode>,
    pub override_result: Option<ResultCode>,
    pub override_reason: Option<String>,
    /// The override if any, else the computed result.
    pub effective_result: Option<ResultCode>,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<i64>,
}

/// What a decision leaves behind.
#[derive(Debug, Clone, PartialEq)]
pub struct Reviewed {
    pub inspection: InspectionReview,
    /// The history row just written.
    pub review: ReviewRecord,
    /// The follow-up (整改) opened by an approval of a 基本符合 / 不符合 result.
    pub followup_id: Option<String>,
}

fn parse_result(s: &str) -> Option<ResultCode> {
    serde_json::from_value(Value::String(s.to_string())).ok()
}

fn corrupt(what: &str, id: &str, value: &str) -> Error {
    Error::Internal(anyhow::anyhow!("{what} of {id} is {value:?}"))
}

fn review_state(id: &str, s: Option<&str>) -> Result<Option<ReviewState>> {
    s.map(|s| ReviewState::parse(s).ok_or_else(|| corrupt("review_state", id, s)))
        .transpose()
}

fn result(id: &str, what: &str, s: Option<&str>) -> Result<Option<ResultCode>> {
    s.map(|s| parse_result(s).ok_or_else(|| corrupt(what, id, s)))
        .transpose()
}

/// A stored history row as the domain's record.
pub fn record_of(r: ReviewRow) -> Result<ReviewRecord> {
    let decision =
        Decision::parse(&r.decision).ok_or_else(|| corrupt("decision", &r.id, &r.decision))?;
    let item_comments: Vec<ItemComment> = serde_json::from_str(&r.item_comments)
        .map_err(|_| corrupt("item_comments", &r.id, &r.item_comments))?;
    let override_result = result(&r.id, "override_result", r.override_result.as_deref())?;
    Ok(ReviewRecord {
        id: r.id,
        inspection_id: r.inspection_id,
        round: r.round,
        decision,
        comment: r.comment,
        item_comments,
        override_result,
        override_reason: r.override_reason,
        internal_note: r.internal_note,
        reviewer_id: r.reviewer_id,
        reviewer_name: r.reviewer_name,
        decided_at: r.decided_at,
    })
}

/// Every decision on an inspection, oldest first (admin, reviewer).
pub async fn history(db: &Db, ctx: &Ctx, inspection_id: &str) -> Result<Vec<ReviewRecord>> {
    access::require(ctx, &[Role::Reviewer, Role::Admin])?;
    let mut conn = db.acquire().await?;
    q::history(&mut conn, inspection_id)
        .await?
        .into_iter()
        .map(record_of)
        .collect()
}

fn refused(r: Refusal) -> Error {
    match r {
        Refusal::NotDecidable(_) => Error::conflict(r.code(), r.message()),
        _ => Error::invalid(r.code(), r.message()),
    }
}

/// Decides a submitted inspection (reviewer, admin): approve, return with comments, or reject
/// with a reason. Exactly one of two concurrent decisions wins; the other gets 409
/// `review_conflict` and changes nothing.
pub async fn decide(
    db: &Db,
    ctx: &Ctx,
    inspection_id: &str,
    req: &ReviewRequest,
    settings: &crate::followup::Settings,
) -> Result<Reviewed> {
    access::require(ctx, &[Role::Reviewer, Role::Admin])?;
    let reviewer = access::author(ctx).to_string();
    let mut tx = db.begin_write().await?;
    // The inspection's task, locked first (PostgreSQL): a push deciding on the inspection and
    // this decision run one after the other, each seeing the other's result.
    store::sync::lock_task_of_inspection(tx.conn(), inspection_id).await?;
    let t = q::target(tx.conn(), inspection_id)
        .await?
        .ok_or_else(|| Error::not_found("no such inspection"))?;
    let stored_state = review_state(&t.id, t.review_state.as_deref())?;
    let computed = result(&t.id, "computed_result", t.computed_result.as_deref())?;
    let stored_override = result(&t.id, "override_result", t.override_result.as_deref())?;
    let task_state = crate::plan::TaskState::parse(&t.task_state)
        .ok_or_else(|| corrupt("task state", &t.task_id, &t.task_state))?;
    let current = Current {
        submitted: t.submitted != 0,
        state: stored_state,
        round: t.review_round,
        computed,
        task_state,
    };
    let template = store::checklists::version_in(tx.conn(), &t.template_id, t.template_version)
        .await?
        .ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "checklist version {}:{} of inspection {} is missing",
                t.template_id,
                t.template_version,
                t.id
            ))
        })?;
    let v = review::decide(&current, |code| template.content.item(code).is_some(), req)
        .map_err(refused)?;

    // Every row the decision touches carries this sequence number (devices pull them).
    let seq = store::sync::next_seq(tx.conn()).await?;
    let now = store::now_ms();
    let (override_result, override_reason) = match &v.override_result {
        Some((r, why)) => (Some(result_code(*r)), Some(why.as_str())),
        None => (None, None),
    };
    let applied = q::apply_decision(
        tx.conn(),
        &DecisionUpdate {
            inspection_id: &t.id,
            expected_round: v.stored_round,
            round: v.round,
            review_state: v.to_state.as_str(),
            submitted: if v.unlock { 0 } else { 1 },
            override_result,
            override_reason,
            reviewed_by: &reviewer,
            reviewed_at: now,
            seq,
        },
    )
    .await?;
    if !applied {
        // Another reviewer decided (or the team resubmitted) since the load: nothing written.
        return Err(Error::conflict(
            "review_conflict",
            "the inspection was decided by someone else meanwhile; reload it",
        ));
    }
    let review_id = uuid::Uuid::new_v4().to_string();
    let item_comments_json =
        serde_json::to_string(&v.item_comments).map_err(|e| Error::Internal(e.into()))?;
    q::insert_review(
        tx.conn(),
        &NewReview {
            id: &review_id,
            inspection_id: &t.id,
            round: v.round,
            decision: v.decision.as_str(),
            comment: v.comment.as_deref(),
            item_comments: &item_comments_json,
            override_result,
            override_reason,
            internal_note: v.internal_note.as_deref(),
            reviewer_id: &reviewer,
            decided_at: now,
            seq,
        },
    )
    .await?;
    let mut events = Vec::new();
    let mut task_event = None;
    if let Some((from, to)) = v.task_move {
        if q::move_task(tx.conn(), &t.task_id, from, to, seq, now).await? {
            task_event = Some(
                Event::new(Action::TaskStateChanged, RecordKind::Task, &t.task_id)
                    .change("state", from, to)
                    .set("review_id", &review_id),
            );
        }
    }
    // A returned or rejected recheck no longer decides its follow-up.
    let reopened = match v.decision {
        Decision::Returned | Decision::Rejected => {
            crate::ops::followup::on_recheck_undone(tx.conn(), ctx, &t.task_id, &t.id, &review_id)
                .await?
        }
        Decision::Approved => None,
    };
    let followup_id = match &v.followup {
        Some(order) => {
            crate::ops::followup::open_on_approval(
                tx.conn(),
                ctx,
                &t.id,
                v.effective,
                order,
                settings,
            )
            .await?
        }
        None => None,
    };
    // A failing approval revokes the establishment's current red listings (same transaction).
    let revoked = match v.decision {
        Decision::Approved => {
            crate::ops::lists::on_approval(tx.conn(), ctx, &t.id, v.effective, settings.zone)
                .await?
        }
        _ => Vec::new(),
    };

    let before_state = ReviewState::of(current.submitted, stored_state);
    let mut event = Event::new(Action::InspectionReviewed, RecordKind::Inspection, &t.id)
        .set("review_id", &review_id)
        .set("decision", v.decision)
        .set("round", v.round)
        .change("review_state", before_state, v.to_state)
        .change("review_round", t.review_round, v.round)
        .change("submitted", true, !v.unlock)
        .set("computed_result", v.computed)
        .change("override_result", stored_override, override_result)
        .change("override_reason", &t.override_reason, override_reason)
        .set("effective_result", v.effective)
        .change("reviewed_by", &t.reviewed_by, &reviewer)
        .change("reviewed_at", t.reviewed_at, now);
    if let Some(c) = &v.comment {
        event = event.set("comment", c);
    }
    if !v.item_comments.is_empty() {
        event = event.set("item_comments", &v.item_comments);
    }
    if let Some(n) = &v.internal_note {
        event = event.set("internal_note", n);
    }
    if let Some(f) = &followup_id {
        event = event.set("followup_id", f);
    }
    if let Some(f) = &reopened {
        event = event.set("followup_reopened", f);
    }
    if !revoked.is_empty() {
        event = event.set("list_entries_revoked", &revoked);
    }
    events.push(event);
    events.extend(task_event);
    store::audit::append(tx.conn(), ctx, &events).await?;

    let row = q::review(tx.conn(), &review_id)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("review {review_id} vanished")))?;
    let record = record_of(row)?;
    tx.commit().await?;
    Ok(Reviewed {
        inspection: InspectionReview {
            inspection_id: t.id,
            task_id: t.task_id,
            state: Some(v.to_state),
            round: v.round,
            computed_result: Some(v.computed),
            override_result: v.override_result.as_ref().map(|(r, _)| *r),
            override_reason: v.override_result.map(|(_, why)| why),
            effective_result: Some(v.effective),
            reviewed_by: Some(reviewer),
            reviewed_at: Some(now),
        },
        review: record,
        followup_id,
    })
}
