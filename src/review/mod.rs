//! Review of submitted inspections by the food-safety section: the states and decisions
//! (domain types; the pure rules live beside them, filled in by the review work).

pub mod detail;
pub mod queues;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
}
