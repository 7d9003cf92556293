//! Review of submitted inspections by the food-safety section: the states and decisions, and
//! the pure rules (no I/O):
//! - [`decide`]: a reviewer's decision over the loaded inspection → the writes, or a refusal;
//! - [`device_lock`]: what a review state means for the team's devices (which pushes are
//!   refused, and with which code).
//!
//! `ops::review` loads, calls [`decide`] and writes; `sync::decide` applies [`device_lock`].

use std::collections::HashSet;

pub mod detail;
pub mod queues;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::checklist::rule::ResultCode;
use crate::followup::FollowupOrder;
use crate::plan::TaskState;

/// An inspection's review state, stored in `inspections.review_state` (NULL while the team is
/// still working on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    /// Submitted by the team, waiting for a reviewer.
    Submitted,
    /// Approved: final; opens a follow-up for 基本符合 / 不符合.
    Approved,
    /// Sent back to the team with comments; unlocked on their devices until resubmitted.
    Returned,
    /// Voided with a reason; the task can be reassigned.
    Rejected,
}

impl ReviewState {
    pub const ALL: [ReviewState; 4] = [
        ReviewState::Submitted,
        ReviewState::Approved,
        ReviewState::Returned,
        ReviewState::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Submitted => "submitted",
            ReviewState::Approved => "approved",
            ReviewState::Returned => "returned",
            ReviewState::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewState> {
        ReviewState::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The state of an inspection as stored: `review_state`, or `submitted` for one submitted
    /// before review states were recorded (the column stayed NULL then).
    pub fn of(submitted: bool, stored: Option<ReviewState>) -> Option<ReviewState> {
        match stored {
            Some(s) => Some(s),
            None if submitted => Some(ReviewState::Submitted),
            None => None,
        }
    }
}

/// A reviewer's decision, stored in `reviews.decision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Final: the result stands (the override if any); a follow-up opens for 基本符合 / 不符合.
    Approved,
    /// Back to the team with comments: unlocked on their devices, fixed and resubmitted.
    Returned,
    /// Voided with a reason: the inspection stays locked, the task goes back to `assigned`.
    Rejected,
}

impl Decision {
    pub const ALL: [Decision; 3] = [Decision::Approved, Decision::Returned, Decision::Rejected];

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Returned => "returned",
            Decision::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        Decision::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The review state a decision leaves the inspection in.
    pub fn state(self) -> ReviewState {
        match self {
            Decision::Approved => ReviewState::Approved,
            Decision::Returned => ReviewState::Returned,
            Decision::Rejected => ReviewState::Rejected,
        }
    }
}

/// A comment on one checklist item of the inspection's checklist version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemComment {
    /// An item code of the inspection's checklist version, e.g. `2.3`.
    pub item_code: String,
    /// What to fix or check, 1–1,000 characters.
    pub comment: String,
}

/// The body of `POST /api/v1/inspections/{id}/review`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub decision: Decision,
    /// General comment to the team (up to 2,000 characters). Not with `rejected` (use
    /// `reason`). A `returned` decision needs it or at least one item comment.
    pub comment: Option<String>,
    /// Comments on checklist items (at most 200, one per item code, codes of the
    /// inspection's checklist version).
    #[serde(default)]
    pub item_comments: Vec<ItemComment>,
    /// Why the inspection is voided: required with `rejected` (up to 1,000 characters), not
    /// allowed with the other decisions.
    pub reason: Option<String>,
    /// Only with `approved`: the result that stands instead of the computed one (which stays
    /// recorded beside it). Needs `override_reason`.
    pub override_result: Option<ResultCode>,
    /// Why the computed result is overridden (up to 1,000 characters).
    pub override_reason: Option<String>,
    /// The section's own note (up to 4,000 characters): never synced to devices, printed or
    /// published.
    pub internal_note: Option<String>,
    /// Only with `approved`: the 整改 order for a 基本符合 / 不符合 result (ignored for 符合).
    pub followup: Option<FollowupOrder>,
}

/// Limits on the texts of a decision (characters).
pub const MAX_COMMENT: usize = 2000;
pub const MAX_ITEM_COMMENT: usize = 1000;
pub const MAX_REASON: usize = 1000;
pub const MAX_INTERNAL_NOTE: usize = 4000;
pub const MAX_ITEM_COMMENTS: usize = 200;

/// What a decision needs to know of the inspection, as loaded in its transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    pub submitted: bool,
    pub state: Option<ReviewState>,
    /// `review_round`: submissions so far (0 for one submitted before rounds were counted).
    pub round: i64,
    pub computed: Option<ResultCode>,
    pub task_state: TaskState,
}

/// The writes of an accepted decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub decision: Decision,
    /// The round decided (the inspection's `review_round`; at least 1).
    pub round: i64,
    /// The round as stored, which the conditional update expects.
    pub stored_round: i64,
    pub to_state: ReviewState,
    /// The general comment, or a rejection's reason (`reviews.comment`).
    pub comment: Option<String>,
    pub item_comments: Vec<ItemComment>,
    /// The overriding result and its reason.
    pub override_result: Option<(ResultCode, String)>,
    pub internal_note: Option<String>,
    pub computed: ResultCode,
    /// The result that stands: the override, else the computed one.
    pub effective: ResultCode,
    /// `returned`: the lock lifts (`submitted` back to false) so the team can fix it.
    pub unlock: bool,
    /// The task's move (from, to), if any: `returned` → `in_progress`, `rejected` →
    /// `assigned`, from `submitted` only.
    pub task_move: Option<(TaskState, TaskState)>,
    /// `approved`: the follow-up seam is called with this order.
    pub followup: Option<FollowupOrder>,
}

/// Why a decision is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// 409 `review_conflict`: only a submitted inspection can be decided (e.g. approving a
    /// returned one not yet resubmitted, or a second reviewer after the first).
    NotDecidable(Option<ReviewState>),
    /// 422 `comment_required`: `returned` without a general or an item comment.
    CommentRequired,
    /// 422 `unknown_item`: an item comment names an item the checklist version lacks.
    UnknownItem(String),
    /// 422 `reason_required`: `rejected` without a reason.
    ReasonRequired,
    /// 422 `override_reason_required`: `override_result` without `override_reason`.
    OverrideReasonRequired,
    /// 422 `validation_failed`: anything else wrong with the body.
    Invalid(String),
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotDecidable(_) => "review_conflict",
            Refusal::CommentRequired => "comment_required",
            Refusal::UnknownItem(_) => "unknown_item",
            Refusal::ReasonRequired => "reason_required",
            Refusal::OverrideReasonRequired => "override_reason_required",
            Refusal::Invalid(_) => "validation_failed",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::NotDecidable(state) => format!(
                "only a submitted inspection can be decided; this one is {}",
                state.map(ReviewState::as_str).unwrap_or("not submitted")
            ),
            Refusal::CommentRequired => {
                "returning an inspection needs a comment or at least one item comment".into()
            }
            Refusal::UnknownItem(code) => {
                format!("item {code:?} is not in the inspection's checklist version")
            }
            Refusal::ReasonRequired => "rejecting an inspection needs a reason".into(),
            Refusal::OverrideReasonRequired => {
                "overriding the computed result needs an override_reason".into()
            }
            Refusal::Invalid(m) => m.clone(),
        }
    }
}

/// Trims a text; empty means absent. Longer than `max` characters is refused.
fn text(name: &str, v: &Option<String>, max: usize) -> Result<Option<String>, Refusal> {
    let Some(t) = v.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if t.chars().count() > max {
        return Err(Refusal::Invalid(format!(
            "{name} is longer than {max} characters"
        )));
    }
    Ok(Some(t.to_string()))
}

/// Decides a reviewer's request over the inspection as loaded. Pure. `is_item` tells the item
/// codes of the inspection's checklist version.
pub fn decide(
    current: &Current,
    is_item: impl Fn(&str) -> bool,
    req: &ReviewRequest,
) -> Result<Verdict, Refusal> {
    // The body on its own first: a malformed decision is 422 whatever the state.
    let comment = text("comment", &req.comment, MAX_COMMENT)?;
    let reason = text("reason", &req.reason, MAX_REASON)?;
    let override_reason = text("override_reason", &req.override_reason, MAX_REASON)?;
    let internal_note = text("internal_note", &req.internal_note, MAX_INTERNAL_NOTE)?;
    if req.item_comments.len() > MAX_ITEM_COMMENTS {
        return Err(Refusal::Invalid(format!(
            "at most {MAX_ITEM_COMMENTS} item comments"
        )));
    }
    let mut item_comments = Vec::with_capacity(req.item_comments.len());
    let mut seen: HashSet<&str> = HashSet::new();
    for c in &req.item_comments {
        let code = c.item_code.trim();
        if !seen.insert(code) {
            return Err(Refusal::Invalid(format!(
                "item {code:?} has two comments; write one"
            )));
        }
        let Some(body) = text(
            "an item comment",
            &Some(c.comment.clone()),
            MAX_ITEM_COMMENT,
        )?
        else {
            return Err(Refusal::Invalid(format!(
                "the comment on item {code:?} is empty"
            )));
        };
        if !is_item(code) {
            return Err(Refusal::UnknownItem(code.to_string()));
        }
        item_comments.push(ItemComment {
            item_code: code.to_string(),
            comment: body,
        });
    }
    let d = req.decision;
    match d {
        Decision::Returned if comment.is_none() && item_comments.is_empty() => {
            return Err(Refusal::CommentRequired)
        }
        Decision::Rejected if reason.is_none() => return Err(Refusal::ReasonRequired),
        Decision::Rejected if comment.is_some() => {
            return Err(Refusal::Invalid(
                "a rejection's text is its reason: send it as reason, not comment".into(),
            ))
        }
        Decision::Approved | Decision::Returned if reason.is_some() => {
            return Err(Refusal::Invalid(format!(
                "reason goes with rejected only; a {} decision takes a comment",
                d.as_str()
            )))
        }
        _ => {}
    }
    let override_result = match (req.override_result, override_reason) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(Refusal::Invalid(
                "override_reason without override_result".into(),
            ))
        }
        (Some(_), None) => return Err(Refusal::OverrideReasonRequired),
        (Some(_), Some(_)) if d != Decision::Approved => {
            return Err(Refusal::Invalid(
                "the computed result can be overridden only when approving".into(),
            ))
        }
        (Some(r), Some(why)) => Some((r, why)),
    };
    if req.followup.is_some() && d != Decision::Approved {
        return Err(Refusal::Invalid(
            "a follow-up order goes with approved only".into(),
        ));
    }

    // Then the state: exactly a submitted (locked) inspection can be decided.
    let state = ReviewState::of(current.submitted, current.state);
    let computed = match (state, current.computed) {
        (Some(ReviewState::Submitted), Some(c)) if current.submitted => c,
        _ => return Err(Refusal::NotDecidable(state)),
    };
    if override_result
        .as_ref()
        .is_some_and(|(r, _)| *r == computed)
    {
        return Err(Refusal::Invalid(
            "override_result equals the computed result; leave it out".into(),
        ));
    }
    let task_to = match d {
        Decision::Approved => None,
        Decision::Returned => Some(TaskState::InProgress),
        Decision::Rejected => Some(TaskState::Assigned),
    };
    Ok(Verdict {
        decision: d,
        round: current.round.max(1),
        stored_round: current.round,
        to_state: d.state(),
        comment: if d == Decision::Rejected {
            reason
        } else {
            comment
        },
        item_comments,
        effective: override_result.as_ref().map_or(computed, |(r, _)| *r),
        override_result,
        internal_note,
        computed,
        unlock: d == Decision::Returned,
        task_move: task_to
            .filter(|_| current.task_state == TaskState::Submitted)
            .map(|to| (TaskState::Submitted, to)),
        followup: (d == Decision::Approved).then(|| req.followup.clone().unwrap_or_default()),
    })
}

/// Why the team's devices may not change an inspection (nor its answers and photos). One
/// sync refusal code per reason (api-spec/sync.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Submitted, waiting for review.
    Submitted,
    /// Approved: final.
    Approved,
    /// Rejected (voided): the task is redone with a new inspection.
    Rejected,
}

impl Lock {
    /// The per-record refusal code of a push.
    pub fn code(self) -> &'static str {
        match self {
            Lock::Submitted => "inspection_submitted",
            Lock::Approved => "inspection_approved",
            Lock::Rejected => "inspection_rejected",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Lock::Submitted => "the inspection is submitted and waits for review; it is read-only unless a reviewer returns it",
            Lock::Approved => "the inspection was approved and is final",
            Lock::Rejected => "the inspection was rejected (voided); start a new inspection of the task",
        }
    }
}

/// Whether devices may change an inspection: a returned one (or one never submitted) is open;
/// submitted, approved and rejected ones are locked.
pub fn device_lock(submitted: bool, stored: Option<ReviewState>) -> Option<Lock> {
    match ReviewState::of(submitted, stored) {
        None | Some(ReviewState::Returned) => None,
        Some(ReviewState::Submitted) => Some(Lock::Submitted),
        Some(ReviewState::Approved) => Some(Lock::Approved),
        Some(ReviewState::Rejected) => Some(Lock::Rejected),
    }
}

/// One decision as recorded (a `reviews` row, never updated), for history views.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRecord {
    pub id: String,
    pub inspection_id: String,
    /// The submission round it decided (1 = first submission).
    pub round: i64,
    pub decision: Decision,
    /// The general comment, or for `rejected` the reason.
    pub comment: Option<String>,
    pub item_comments: Vec<ItemComment>,
    pub override_result: Option<ResultCode>,
    pub override_reason: Option<String>,
    /// The section's own note: for reviewers and admins only, never synced or printed.
    pub internal_note: Option<String>,
    pub reviewer_id: String,
    pub reviewer_name: String,
    /// Unix milliseconds.
    pub decided_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ITEMS: [&str; 4] = ["1.1", "2.3", "3.1", "9.3"];
    fn is_item(c: &str) -> bool {
        ITEMS.contains(&c)
    }

    fn submitted(round: i64) -> Current {
        Current {
            submitted: true,
            state: Some(ReviewState::Submitted),
            round,
            computed: Some(ResultCode::BasicallyCompliant),
            task_state: TaskState::Submitted,
        }
    }

    fn req(decision: Decision) -> ReviewRequest {
        ReviewRequest {
            decision,
            comment: None,
            item_comments: Vec::new(),
            reason: None,
            override_result: None,
            override_reason: None,
            internal_note: None,
            followup: None,
        }
    }

    fn item(code: &str, comment: &str) -> ItemComment {
        ItemComment {
            item_code: code.into(),
            comment: comment.into(),
        }
    }

    #[test]
    fn the_rules_each_refuse_with_their_code() {
        let s = submitted(1);
        let code = |r: &ReviewRequest| decide(&s, is_item, r).err().map(|e| e.code());
        assert_eq!(code(&req(Decision::Returned)), Some("comment_required"));
        let mut r = req(Decision::Returned);
        r.comment = Some("   ".into());
        assert_eq!(code(&r), Some("comment_required"), "blank is no comment");
        r.item_comments = vec![item("7.7", "不存在的项")];
        assert_eq!(code(&r), Some("unknown_item"));
        r.item_comments = vec![item("2.3", "冷藏温度")];
        assert_eq!(code(&r), None);
        assert_eq!(code(&req(Decision::Rejected)), Some("reason_required"));
        let mut r = req(Decision::Approved);
        r.override_result = Some(ResultCode::Compliant);
        assert_eq!(code(&r), Some("override_reason_required"));
        r.override_reason = Some("现场复核已整改".into());
        let v = decide(&s, is_item, &r).unwrap();
        assert_eq!(v.computed, ResultCode::BasicallyCompliant);
        assert_eq!(v.effective, ResultCode::Compliant);
        r.override_result = Some(ResultCode::BasicallyCompliant);
        assert_eq!(code(&r), Some("validation_failed"), "same as computed");
        let mut r = req(Decision::Returned);
        r.comment = Some("x".into());
        r.override_result = Some(ResultCode::Compliant);
        r.override_reason = Some("y".into());
        assert_eq!(
            code(&r),
            Some("validation_failed"),
            "override only on approval"
        );
    }

    #[test]
    fn only_a_submitted_inspection_is_decided() {
        let r = req(Decision::Approved);
        for state in [
            Some(ReviewState::Approved),
            Some(ReviewState::Returned),
            Some(ReviewState::Rejected),
        ] {
            let c = Current {
                state,
                ..submitted(1)
            };
            assert_eq!(
                decide(&c, is_item, &r),
                Err(Refusal::NotDecidable(state)),
                "{state:?}"
            );
        }
        // Returned and not resubmitted: unlocked on devices, not decidable.
        let returned = Current {
            submitted: false,
            state: Some(ReviewState::Returned),
            ..submitted(1)
        };
        assert_eq!(
            decide(&returned, is_item, &r).unwrap_err().code(),
            "review_conflict"
        );
        // Submitted before review states were recorded: decidable, as round 1.
        let legacy = Current {
            state: None,
            round: 0,
            ..submitted(0)
        };
        let v = decide(&legacy, is_item, &r).unwrap();
        assert_eq!((v.round, v.stored_round), (1, 0));
    }

    #[test]
    fn decisions_move_the_task_and_the_lock() {
        let s = submitted(2);
        let mut r = req(Decision::Returned);
        r.item_comments = vec![item("2.3", "温度计")];
        let v = decide(&s, is_item, &r).unwrap();
        assert!(v.unlock);
        assert_eq!(v.round, 2);
        assert_eq!(
            v.task_move,
            Some((TaskState::Submitted, TaskState::InProgress))
        );
        let mut r = req(Decision::Rejected);
        r.reason = Some("检查对象错误".into());
        let v = decide(&s, is_item, &r).unwrap();
        assert!(!v.unlock);
        assert_eq!(v.comment.as_deref(), Some("检查对象错误"));
        assert_eq!(
            v.task_move,
            Some((TaskState::Submitted, TaskState::Assigned))
        );
        let v = decide(&s, is_item, &req(Decision::Approved)).unwrap();
        assert_eq!(v.task_move, None);
        assert_eq!(v.followup, Some(FollowupOrder::default()));
        assert_eq!(
            device_lock(true, Some(ReviewState::Approved)),
            Some(Lock::Approved)
        );
        assert_eq!(device_lock(false, Some(ReviewState::Returned)), None);
        assert_eq!(device_lock(true, None), Some(Lock::Submitted));
        assert_eq!(device_lock(false, None), None);
    }

    fn arb_state() -> impl Strategy<Value = Option<ReviewState>> {
        prop_oneof![
            Just(None),
            Just(Some(ReviewState::Submitted)),
            Just(Some(ReviewState::Approved)),
            Just(Some(ReviewState::Returned)),
            Just(Some(ReviewState::Rejected)),
        ]
    }
    fn arb_result() -> impl Strategy<Value = ResultCode> {
        prop_oneof![
            Just(ResultCode::Compliant),
            Just(ResultCode::BasicallyCompliant),
            Just(ResultCode::NonCompliant),
        ]
    }
    fn arb_text() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            Just(Some(String::new())),
            Just(Some("  ".into())),
            Just(Some("请补拍冷藏柜温度".into())),
            Just(Some("x".repeat(MAX_REASON + 1))),
        ]
    }
    fn arb_task() -> impl Strategy<Value = TaskState> {
        prop_oneof![
            Just(TaskState::Assigned),
            Just(TaskState::InProgress),
            Just(TaskState::Submitted),
        ]
    }

    fn arb_current() -> impl Strategy<Value = Current> {
        (
            any::<bool>(),
            arb_state(),
            0i64..4,
            proptest::option::of(arb_result()),
            arb_task(),
        )
            .prop_map(|(submitted, state, round, computed, task_state)| Current {
                submitted,
                state,
                round,
                computed,
                task_state,
            })
    }

    fn arb_request() -> impl Strategy<Value = ReviewRequest> {
        let decision = prop_oneof![
            Just(Decision::Approved),
            Just(Decision::Returned),
            Just(Decision::Rejected)
        ];
        let items = prop::collection::vec(
            (
                prop::sample::select(vec!["1.1", "2.3", "3.1", "7.7", " 9.3 "]),
                arb_text(),
            ),
            0..4,
        );
        (
            decision,
            arb_text(),
            items,
            arb_text(),
            proptest::option::of(arb_result()),
            arb_text(),
            arb_text(),
            any::<bool>(),
        )
            .prop_map(
                |(decision, comment, items, reason, ovr, ovr_reason, note, f)| ReviewRequest {
                    decision,
                    comment,
                    item_comments: items
                        .into_iter()
                        .map(|(c, t)| item(c, &t.unwrap_or_default()))
                        .collect(),
                    reason,
                    override_result: ovr,
                    override_reason: ovr_reason,
                    internal_note: note,
                    followup: f.then(FollowupOrder::default),
                },
            )
    }

    fn present(t: &Option<String>) -> bool {
        t.as_deref().is_some_and(|t| !t.trim().is_empty())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Whatever the state and the body: a decision is made only on a submitted inspection,
        /// with the texts its kind needs, on known items, and the effective result is the
        /// override (with its reason) or the computed one.
        #[test]
        fn decide_keeps_every_rule(c in arb_current(), r in arb_request()) {
            match decide(&c, is_item, &r) {
                Ok(v) => {
                    prop_assert!(c.submitted);
                    prop_assert_eq!(ReviewState::of(c.submitted, c.state), Some(ReviewState::Submitted));
                    prop_assert_eq!(v.round, c.round.max(1));
                    prop_assert_eq!(v.stored_round, c.round);
                    prop_assert_eq!(v.to_state, r.decision.state());
                    prop_assert!(v.item_comments.iter().all(|i| is_item(&i.item_code) && !i.comment.trim().is_empty()));
                    let computed = c.computed.unwrap();
                    prop_assert_eq!(v.computed, computed);
                    match &v.override_result {
                        Some((res, why)) => {
                            prop_assert_eq!(r.decision, Decision::Approved);
                            prop_assert!(!why.is_empty());
                            prop_assert_ne!(*res, computed);
                            prop_assert_eq!(v.effective, *res);
                        }
                        None => {
                            prop_assert!(r.override_result.is_none());
                            prop_assert_eq!(v.effective, computed);
                        }
                    }
                    match r.decision {
                        Decision::Returned => {
                            prop_assert!(v.comment.is_some() || !v.item_comments.is_empty());
                            prop_assert!(v.unlock);
                        }
                        Decision::Rejected => {
                            prop_assert!(present(&r.reason));
                            prop_assert_eq!(v.comment.as_deref(), r.reason.as_deref().map(str::trim));
                            prop_assert!(!v.unlock);
                        }
                        Decision::Approved => {
                            prop_assert!(!v.unlock);
                            prop_assert!(v.followup.is_some());
                        }
                    }
                    prop_assert_eq!(v.followup.is_some(), r.decision == Decision::Approved);
                    // The task moves only out of `submitted`, and never for an approval.
                    if let Some((from, to)) = v.task_move {
                        prop_assert_eq!(from, TaskState::Submitted);
                        prop_assert_eq!(c.task_state, TaskState::Submitted);
                        prop_assert_ne!(r.decision, Decision::Approved);
                        prop_assert_eq!(to == TaskState::InProgress, r.decision == Decision::Returned);
                    } else {
                        prop_assert!(r.decision == Decision::Approved || c.task_state != TaskState::Submitted);
                    }
                }
                Err(Refusal::NotDecidable(s)) => {
                    prop_assert_eq!(s, ReviewState::of(c.submitted, c.state));
                    prop_assert!(
                        s != Some(ReviewState::Submitted) || !c.submitted || c.computed.is_none()
                    );
                }
                Err(Refusal::CommentRequired) => prop_assert_eq!(r.decision, Decision::Returned),
                Err(Refusal::ReasonRequired) => {
                    prop_assert_eq!(r.decision, Decision::Rejected);
                    prop_assert!(!present(&r.reason));
                }
                Err(Refusal::OverrideReasonRequired) => prop_assert!(r.override_result.is_some()),
                Err(Refusal::UnknownItem(code)) => prop_assert!(!is_item(&code)),
                Err(Refusal::Invalid(m)) => prop_assert!(!m.is_empty()),
            }
        }

        /// A well-formed body is decided exactly when the inspection is submitted.
        #[test]
        fn a_valid_body_is_refused_only_for_the_state(c in arb_current(), d in 0u8..3) {
            let mut r = req(Decision::ALL[d as usize]);
            match r.decision {
                Decision::Returned => r.item_comments = vec![item("3.1", "补拍照片")],
                Decision::Rejected => r.reason = Some("错检".into()),
                Decision::Approved => {}
            }
            let decidable = c.submitted
                && ReviewState::of(c.submitted, c.state) == Some(ReviewState::Submitted)
                && c.computed.is_some();
            prop_assert_eq!(decide(&c, is_item, &r).is_ok(), decidable);
        }

        /// Devices may change exactly the inspections never submitted or returned.
        #[test]
        fn device_lock_opens_only_returned_or_unsubmitted(submitted in any::<bool>(), s in arb_state()) {
            let open = device_lock(submitted, s).is_none();
            prop_assert_eq!(open, s == Some(ReviewState::Returned) || (s.is_none() && !submitted));
        }
    }
}
