//! Giving a task to another team: after a reviewer rejected its inspection (the task is back to
//! `assigned`), or before its team started. The pure rule over the loaded task, its
//! inspections and the proposed team; `ops::tasks::reassign` loads and writes.
//!
//! Only a task nobody is working on moves: `assigned`, and every inspection it has is rejected
//! (void). A draft or a submitted, returned or approved inspection means a team's work is on
//! the task; moving it would strand that work on devices that lose the task.

use std::collections::HashSet;

use super::TaskState;
use crate::followup::{self, TeamFacts};
use crate::review::ReviewState;

/// Longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// What the rule looks at.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub state: TaskState,
    /// The team now, in order.
    pub current: &'a [String],
    /// Each inspection of the task: its review state (`None`: not submitted, a draft).
    pub inspections: &'a [Option<ReviewState>],
    /// About the proposed people: active inspectors, declared conflicts at the establishment.
    pub team: &'a TeamFacts,
}

/// The change to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment {
    /// The new team, in order (duplicates dropped).
    pub team: Vec<String>,
    /// On the new team, not on the old (their devices get the task as new).
    pub added: Vec<String>,
    /// On the old team, not on the new (their devices are told to delete the task).
    pub removed: Vec<String>,
    pub reason: String,
}

/// Why a reassignment is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("only an assigned task can be reassigned; this one is {}", .0.as_str())]
    NotAssigned(TaskState),
    #[error(
        "the task has an inspection that is not rejected; reject it first (a team's work is on it)"
    )]
    LiveInspection,
    #[error("a reason of 1 to {MAX_REASON_CHARS} characters is required")]
    BadReason,
    #[error("the proposed team is the current team")]
    Unchanged,
    #[error("{0}")]
    Team(followup::Refusal),
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotAssigned(_) => "invalid_state",
            Refusal::LiveInspection => "task_has_inspection",
            Refusal::BadReason => "validation_failed",
            Refusal::Unchanged => "team_unchanged",
            Refusal::Team(followup::Refusal::TeamTooSmall(_)) => "team_too_small",
            Refusal::Team(followup::Refusal::NotActive(_)) => "inspector_not_active",
            Refusal::Team(followup::Refusal::Conflicted(_)) => "inspector_conflict",
            Refusal::Team(other) => other.code(),
        }
    }

    /// A conflict with the task's state (409) rather than a bad request (422).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Refusal::NotAssigned(_) | Refusal::LiveInspection)
    }
}

/// Decides a reassignment of the task to `proposed` for `reason`.
pub fn decide(facts: &Facts, proposed: &[String], reason: &str) -> Result<Reassignment, Refusal> {
    if facts.state != TaskState::Assigned {
        return Err(Refusal::NotAssigned(facts.state));
    }
    if facts
        .inspections
        .iter()
        .any(|s| *s != Some(ReviewState::Rejected))
    {
        return Err(Refusal::LiveInspection);
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(Refusal::BadReason);
    }
    let team = followup::check_team(proposed, facts.team).map_err(Refusal::Team)?;
    if team == facts.current {
        return Err(Refusal::Unchanged);
    }
    let old: HashSet<&String> = facts.current.iter().collect();
    let new: HashSet<&String> = team.iter().collect();
    let added = team.iter().filter(|m| !old.contains(m)).cloned().collect();
    let removed = facts
        .current
        .iter()
        .filter(|m| !new.contains(m))
        .cloned()
        .collect();
    Ok(Reassignment {
        team,
        added,
        removed,
        reason: reason.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn facts_all_active(people: &[String]) -> TeamFacts {
        TeamFacts {
            active: people.iter().cloned().collect(),
            conflicted: HashSet::new(),
        }
    }

    #[test]
    fn rejected_task_moves_to_a_new_team() {
        let current = ids(&["a", "b"]);
        let proposed = ids(&["b", "c", "c"]);
        let team = facts_all_active(&ids(&["a", "b", "c"]));
        let r = decide(
            &Facts {
                state: TaskState::Assigned,
                current: &current,
                inspections: &[Some(ReviewState::Rejected)],
                team: &team,
            },
            &proposed,
            " 原检查组回避 ",
        )
        .unwrap();
        assert_eq!(r.team, ids(&["b", "c"]));
        assert_eq!(r.added, ids(&["c"]));
        assert_eq!(r.removed, ids(&["a"]));
        assert_eq!(r.reason, "原检查组回避");
    }

    #[test]
    fn refusals_have_their_codes() {
        let current = ids(&["a", "b"]);
        let team = TeamFacts {
            active: ids(&["a", "b", "c"]).into_iter().collect(),
            conflicted: ids(&["c"]).into_iter().collect(),
        };
        let f = |state, inspections: &'static [Option<ReviewState>]| Facts {
            state,
            current: &current,
            inspections,
            team: &team,
        };
        let code =
            |facts: &Facts, p: &[&str], why: &str| decide(facts, &ids(p), why).unwrap_err().code();
        let ok = f(TaskState::Assigned, &[]);
        assert_eq!(
            code(&f(TaskState::InProgress, &[]), &["a", "x"], "r"),
            "invalid_state"
        );
        assert_eq!(
            code(&f(TaskState::Submitted, &[]), &["a", "x"], "r"),
            "invalid_state"
        );
        assert_eq!(
            code(&f(TaskState::Assigned, &[None]), &["a", "x"], "r"),
            "task_has_inspection"
        );
        assert_eq!(
            code(
                &f(
                    TaskState::Assigned,
                    &[Some(ReviewState::Rejected), Some(ReviewState::Returned)]
                ),
                &["a", "x"],
                "r"
            ),
            "task_has_inspection"
        );
        assert_eq!(code(&ok, &["a", "b"], "  "), "validation_failed");
        assert_eq!(
            code(&ok, &["a", "b"], &"长".repeat(501)),
            "validation_failed"
        );
        assert_eq!(code(&ok, &["a", "b"], "r"), "team_unchanged");
        assert_eq!(code(&ok, &["a", "a"], "r"), "team_too_small");
        assert_eq!(code(&ok, &["a", "x"], "r"), "inspector_not_active");
        assert_eq!(code(&ok, &["a", "c"], "r"), "inspector_conflict");
        // A new order of the same people is a change (the order is the team's).
        assert!(decide(&ok, &ids(&["b", "a"]), "r").is_ok());
    }

    fn state() -> impl Strategy<Value = TaskState> {
        prop_oneof![
            Just(TaskState::Assigned),
            Just(TaskState::InProgress),
            Just(TaskState::Submitted),
            Just(TaskState::Cancelled),
        ]
    }

    fn review() -> impl Strategy<Value = Option<ReviewState>> {
        prop_oneof![
            Just(None),
            Just(Some(ReviewState::Submitted)),
            Just(Some(ReviewState::Returned)),
            Just(Some(ReviewState::Approved)),
            Just(Some(ReviewState::Rejected)),
        ]
    }

    proptest! {
        /// Accepted exactly when the task is free; then the new team is the checked proposal,
        /// and added/removed are the two set differences (so old − removed + added = new).
        #[test]
        fn added_and_removed_are_the_differences(
            s in state(),
            inspections in proptest::collection::vec(review(), 0..4),
            current in proptest::collection::vec("[a-f]", 2..4),
            proposed in proptest::collection::vec("[a-f]", 0..5),
        ) {
            let mut seen = HashSet::new();
            let current: Vec<String> = current.into_iter().filter(|m| seen.insert(m.clone())).collect();
            let everyone: Vec<String> = ["a", "b", "c", "d", "e", "f"].map(String::from).to_vec();
            let team = facts_all_active(&everyone);
            let facts = Facts { state: s, current: &current, inspections: &inspections, team: &team };
            let free = s == TaskState::Assigned
                && inspections.iter().all(|i| *i == Some(ReviewState::Rejected));
            match decide(&facts, &proposed, "reason") {
                Ok(r) => {
                    prop_assert!(free);
                    prop_assert!(r.team.len() >= 2);
                    prop_assert_ne!(&r.team, &current);
                    let mut after: HashSet<String> = current.iter().cloned().collect();
                    for m in &r.removed { prop_assert!(after.remove(m)); }
                    for m in &r.added { prop_assert!(after.insert(m.clone())); }
                    prop_assert_eq!(after, r.team.iter().cloned().collect::<HashSet<_>>());
                }
                Err(e) => {
                    if !free {
                        prop_assert!(e.is_conflict());
                    } else {
                        prop_assert!(!e.is_conflict());
                    }
                }
            }
        }
    }
}
