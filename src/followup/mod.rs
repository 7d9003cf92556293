//! Follow-up (整改 → 复查) domain: the order a reviewer gives with an approval, and (in the
//! follow-up work) the pure rules for deadlines, due rechecks and closing or escalating.

use serde::Deserialize;
use utoipa::ToSchema;

/// What the reviewer orders when approving a 基本符合 or 不符合 inspection (ignored for 符合).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowupOrder {
    /// 整改期限 in working days on the bureau's calendar; default: the configured
    /// `rectification_period_working_days`.
    pub period_working_days: Option<u32>,
    /// 整改要求 as written on the order.
    pub order_text: Option<String>,
    /// 立即停止经营 (不符合 only).
    #[serde(default)]
    pub stop_operating: bool,
    /// 立案 (不符合 only).
    #[serde(default)]
    pub case_opened: bool,
    /// The recheck team (user ids of at least two active inspectors, none with a conflict at
    /// the establishment); default: the inspection's team.
    pub recheck_team: Option<Vec<String>>,
}
