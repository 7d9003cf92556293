//! Follow-up (整改 → 复查) domain, pure: the order a reviewer gives with an approval, and the
//! rules for opening a follow-up, finding the ones whose recheck is due, and closing or
//! escalating one from its recheck.
//!
//! - **Opening** ([`decide_opening`]): 符合 opens nothing. 基本符合 opens a 书面限期整改 (written
//!   order) whose deadline is `ordered_on` + the period in working days on the bureau's
//!   calendar (the day of the order itself not counted). 不符合 opens one as well and records
//!   立即停止经营 (`stop_operating`) and 立案 (`case_opened`) when the reviewer chose them; those
//!   markers on any other result are refused. The recheck team is at least two distinct active
//!   inspectors, none with a declared conflict (回避) at the establishment.
//! - **Due** ([`is_due`]): an `open` follow-up needs its recheck task once its deadline is
//!   today or past (the bureau's local date).
//! - **Closing** ([`decide_closing`]): the recheck must find every must-check item (the items
//!   failed at the origin inspection) answered `pass`: then `closed`; any of them failed,
//!   not applicable or unanswered: `escalated` (the section decides what next: 立案, a new
//!   order). A follow-up without must-check items (the result was overridden without failed
//!   items) closes when the recheck's result is 符合, else escalates.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::calendar::{Calendar, OutOfRange};
use crate::checklist::rule::{ItemStatus, ResultCode};
use crate::clock::BureauZone;

/// What the reviewer orders when approving a 基本符合 or 不符合 inspection (ignored for 符合,
/// except that the 不符合 markers are refused there).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowupOrder {
    /// 整改期限 in working days on the bureau's calendar (1–120); default: the configured
    /// `rectification_period_working_days` (10).
    pub period_working_days: Option<u32>,
    /// 整改要求 as written on the order (at most 2,000 characters).
    pub order_text: Option<String>,
    /// 立即停止经营 (不符合 only; refused with `followup_markers_not_allowed` otherwise).
    #[serde(default)]
    pub stop_operating: bool,
    /// 立案 (不符合 only; refused with `followup_markers_not_allowed` otherwise).
    #[serde(default)]
    pub case_opened: bool,
    /// The recheck team (user ids of at least two active inspectors, none with a conflict at
    /// the establishment); default: the inspection's team.
    pub recheck_team: Option<Vec<String>>,
}

/// The longest period an order may give.
pub const MAX_PERIOD_WORKING_DAYS: u32 = 120;
/// The longest 整改要求 text.
pub const MAX_ORDER_TEXT_CHARS: usize = 2000;
/// A team needs at least two officers (the law requires two).
pub const MIN_TEAM: usize = 2;

/// A follow-up's state, stored in `followups.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FollowupState {
    /// Ordered; waiting for its deadline.
    Open,
    /// The recheck task (复查) exists and is with the team.
    RecheckAssigned,
    /// The recheck found every must-check item passed.
    Closed,
    /// The recheck found a must-check item not passed: the section decides what next.
    Escalated,
}

impl FollowupState {
    pub const ALL: [FollowupState; 4] = [
        FollowupState::Open,
        FollowupState::RecheckAssigned,
        FollowupState::Closed,
        FollowupState::Escalated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FollowupState::Open => "open",
            FollowupState::RecheckAssigned => "recheck_assigned",
            FollowupState::Closed => "closed",
            FollowupState::Escalated => "escalated",
        }
    }

    pub fn parse(s: &str) -> Option<FollowupState> {
        FollowupState::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// A follow-up as stored (decoded by the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Followup {
    pub id: String,
    /// The approved inspection that opened it (整改 → 复查); exactly one of this and
    /// `sample_id` is set.
    pub inspection_id: Option<String>,
    /// The 不合格 sample that opened it (核查处置, closed by the sample's `disposal_done`).
    pub sample_id: Option<String>,
    pub establishment_id: String,
    /// The origin inspection's plan (inspection follow-ups).
    pub plan_id: Option<String>,
    /// The approved result (inspection follow-ups); `None` for a sample's (不合格).
    pub origin_result: Option<ResultCode>,
    pub state: FollowupState,
    pub order_text: Option<String>,
    pub ordered_on: NaiveDate,
    /// 整改期限 (inspection follow-ups).
    pub period_working_days: Option<u32>,
    /// 核查处置 period (sample follow-ups: 90 by default).
    pub period_calendar_days: Option<u32>,
    pub deadline: NaiveDate,
    pub failed_items: Vec<String>,
    pub stop_operating: bool,
    pub case_opened: bool,
    pub recheck_team: Vec<String>,
    pub recheck_task_id: Option<String>,
    pub recheck_inspection_id: Option<String>,
    pub outcome_result: Option<ResultCode>,
    pub closed_at: Option<i64>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The configured follow-up settings (from `Config`), with the bureau's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Default 整改期限, working days.
    pub rectification_period_working_days: u32,
    /// A recheck task is due this many working days after it is created.
    pub recheck_due_working_days: u32,
    /// The bureau's zone: "today" is a day there.
    pub zone: BureauZone,
    /// Today as the use cases see it; `None` = the bureau's real date (tests and the CLI's
    /// `--today` set it).
    pub today: Option<NaiveDate>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rectification_period_working_days: 10,
            recheck_due_working_days: 5,
            zone: BureauZone::default(),
            today: None,
        }
    }
}

impl Settings {
    pub fn from_config(c: &crate::config::Config) -> Settings {
        Settings {
            rectification_period_working_days: c.rectification_period_working_days,
            recheck_due_working_days: c.recheck_due_working_days,
            zone: c.time_zone,
            today: None,
        }
    }

    /// Today in the bureau (or the date set for it).
    pub fn today(&self) -> NaiveDate {
        self.today
            .unwrap_or_else(|| self.zone.date_at(chrono::Utc::now()))
    }
}

/// Why an order or a recheck team is refused. Each has a stable code (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("立即停止经营 and 立案 are recorded for 不符合 only, not for {0}")]
    MarkersNotAllowed(&'static str),
    #[error("the rectification period must be 1 to {MAX_PERIOD_WORKING_DAYS} working days")]
    BadPeriod,
    #[error("the order text is longer than {MAX_ORDER_TEXT_CHARS} characters")]
    OrderTextTooLong,
    #[error("a recheck team needs at least {MIN_TEAM} distinct inspectors; {0} given")]
    TeamTooSmall(usize),
    #[error("not active inspectors: {}", .0.join(", "))]
    NotActive(Vec<String>),
    #[error("inspectors with a declared conflict (回避) at this establishment: {}", .0.join(", "))]
    Conflicted(Vec<String>),
    #[error("the working-day calendar has no data for {0}; an admin must add that year (PUT /api/v1/calendar/years/{0})")]
    CalendarYearMissing(i32),
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::MarkersNotAllowed(_) => "followup_markers_not_allowed",
            Refusal::BadPeriod => "invalid_rectification_period",
            Refusal::OrderTextTooLong => "validation_failed",
            Refusal::TeamTooSmall(_) => "recheck_team_too_small",
            Refusal::NotActive(_) => "recheck_inspector_not_active",
            Refusal::Conflicted(_) => "recheck_inspector_conflict",
            Refusal::CalendarYearMissing(_) => "calendar_year_missing",
        }
    }
}

impl From<OutOfRange> for Refusal {
    fn from(e: OutOfRange) -> Refusal {
        Refusal::CalendarYearMissing(e.year)
    }
}

/// What the store knows about the people proposed for a recheck team.
#[derive(Debug, Clone, Default)]
pub struct TeamFacts {
    /// Ids of enabled inspector accounts among them.
    pub active: HashSet<String>,
    /// Ids among them with a declared conflict at the establishment.
    pub conflicted: HashSet<String>,
}

/// Checks a recheck team: distinct ids (duplicates dropped, order kept), at least two, all
/// active inspectors, none conflicted. Returns the team.
pub fn check_team(team: &[String], facts: &TeamFacts) -> Result<Vec<String>, Refusal> {
    let mut seen = HashSet::new();
    let team: Vec<String> = team
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && seen.insert(s.clone()))
        .collect();
    if team.len() < MIN_TEAM {
        return Err(Refusal::TeamTooSmall(team.len()));
    }
    let inactive: Vec<String> = team
        .iter()
        .filter(|id| !facts.active.contains(*id))
        .cloned()
        .collect();
    if !inactive.is_empty() {
        return Err(Refusal::NotActive(inactive));
    }
    let conflicted: Vec<String> = team
        .iter()
        .filter(|id| facts.conflicted.contains(*id))
        .cloned()
        .collect();
    if !conflicted.is_empty() {
        return Err(Refusal::Conflicted(conflicted));
    }
    Ok(team)
}

/// Everything [`decide_opening`] looks at, loaded by the use case.
#[derive(Debug, Clone)]
pub struct OpeningFacts<'a> {
    /// The approved result (the override if any, else the computed one).
    pub result: ResultCode,
    /// The day of the order (the bureau's today).
    pub ordered_on: NaiveDate,
    /// Items failed at the inspection: the recheck's must-check items.
    pub failed_items: &'a [String],
    /// The inspection's team, in draw order: the default recheck team.
    pub inspection_team: &'a [String],
    /// Facts about the proposed team (the order's or the default).
    pub team: &'a TeamFacts,
    /// The configured default period.
    pub default_period: u32,
}

/// A follow-up to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub origin_result: ResultCode,
    pub ordered_on: NaiveDate,
    pub period_working_days: u32,
    pub deadline: NaiveDate,
    pub order_text: Option<String>,
    pub failed_items: Vec<String>,
    pub stop_operating: bool,
    pub case_opened: bool,
    pub recheck_team: Vec<String>,
}

/// Decides what an approval opens (see the module doc). `None` for 符合.
pub fn decide_opening(
    order: &FollowupOrder,
    facts: &OpeningFacts<'_>,
    calendar: &Calendar,
) -> Result<Option<Opening>, Refusal> {
    let markers = order.stop_operating || order.case_opened;
    if markers && facts.result != ResultCode::NonCompliant {
        return Err(Refusal::MarkersNotAllowed(facts.result.label_zh()));
    }
    if facts.result == ResultCode::Compliant {
        return Ok(None);
    }
    let period = order.period_working_days.unwrap_or(facts.default_period);
    if !(1..=MAX_PERIOD_WORKING_DAYS).contains(&period) {
        return Err(Refusal::BadPeriod);
    }
    let order_text = order
        .order_text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    if order_text
        .as_deref()
        .is_some_and(|t| t.chars().count() > MAX_ORDER_TEXT_CHARS)
    {
        return Err(Refusal::OrderTextTooLong);
    }
    let team = order
        .recheck_team
        .as_deref()
        .unwrap_or(facts.inspection_team);
    let recheck_team = check_team(team, facts.team)?;
    let deadline = calendar.add_working_days(facts.ordered_on, period)?;
    Ok(Some(Opening {
        origin_result: facts.result,
        ordered_on: facts.ordered_on,
        period_working_days: period,
        deadline,
        order_text,
        failed_items: facts.failed_items.to_vec(),
        stop_operating: order.stop_operating,
        case_opened: order.case_opened,
        recheck_team,
    }))
}

/// Whether a follow-up needs its recheck task on `today`: open, and the deadline reached.
pub fn is_due(state: FollowupState, deadline: NaiveDate, today: NaiveDate) -> bool {
    state == FollowupState::Open && deadline <= today
}

/// The due date of a recheck task created on `today`.
pub fn recheck_due_date(
    calendar: &Calendar,
    today: NaiveDate,
    working_days: u32,
) -> Result<NaiveDate, Refusal> {
    Ok(calendar.add_working_days(today, working_days)?)
}

/// How a recheck ends a follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    Closed,
    Escalated,
}

impl Closing {
    pub fn state(self) -> FollowupState {
        match self {
            Closing::Closed => FollowupState::Closed,
            Closing::Escalated => FollowupState::Escalated,
        }
    }
}

/// The closing rule (see the module doc): every must-check item answered `pass` closes the
/// follow-up; anything else escalates it.
pub fn decide_closing(
    must_check: &[String],
    answers: &HashMap<String, ItemStatus>,
    recheck_result: ResultCode,
) -> Closing {
    let passed = if must_check.is_empty() {
        recheck_result == ResultCode::Compliant
    } else {
        must_check
            .iter()
            .all(|item| answers.get(item) == Some(&ItemStatus::Pass))
    };
    if passed {
        Closing::Closed
    } else {
        Closing::Escalated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn facts_all_active(team: &[String]) -> TeamFacts {
        TeamFacts {
            active: team.iter().cloned().collect(),
            conflicted: HashSet::new(),
        }
    }

    fn opening(
        order: &FollowupOrder,
        result: ResultCode,
        on: &str,
    ) -> Result<Option<Opening>, Refusal> {
        let team = ids(&["a", "b"]);
        let facts = facts_all_active(&team);
        let failed = ids(&["3.1", "4.3"]);
        decide_opening(
            order,
            &OpeningFacts {
                result,
                ordered_on: d(on),
                failed_items: &failed,
                inspection_team: &team,
                team: &facts,
                default_period: 10,
            },
            &Calendar::default_cn(),
        )
    }

    #[test]
    fn compliant_opens_nothing_and_basic_opens_an_order_in_working_days() {
        let order = FollowupOrder::default();
        assert_eq!(
            opening(&order, ResultCode::Compliant, "2026-03-02"),
            Ok(None)
        );
        let o = opening(&order, ResultCode::BasicallyCompliant, "2026-03-02")
            .unwrap()
            .unwrap();
        // Monday 2 March 2026 + 10 working days: Monday 16 March (two plain weeks).
        assert_eq!(o.deadline, d("2026-03-16"));
        assert_eq!(o.period_working_days, 10);
        assert_eq!(o.failed_items, ids(&["3.1", "4.3"]));
        assert_eq!(o.recheck_team, ids(&["a", "b"]));
        assert!(!o.stop_operating && !o.case_opened);
    }

    #[test]
    fn deadlines_across_spring_festival_2026() {
        // Thursday 12 February 2026: 13 (Fri) and 14 (Saturday, 调休上班) work, 15–23 off,
        // then from Tuesday 24. 5 working days: 13, 14, 24, 25, 26 → Thursday 26 February.
        let order = FollowupOrder {
            period_working_days: Some(5),
            ..FollowupOrder::default()
        };
        let o = opening(&order, ResultCode::BasicallyCompliant, "2026-02-12")
            .unwrap()
            .unwrap();
        assert_eq!(o.deadline, d("2026-02-26"));
        // The default 10: 13, 14, 24, 25, 26, 27, 28 (Saturday, 调休), 2, 3, 4 March.
        let o = opening(
            &FollowupOrder::default(),
            ResultCode::BasicallyCompliant,
            "2026-02-12",
        )
        .unwrap()
        .unwrap();
        assert_eq!(o.deadline, d("2026-03-04"));
    }

    #[test]
    fn non_compliant_records_markers_and_others_refuse_them() {
        let order = FollowupOrder {
            stop_operating: true,
            case_opened: true,
            order_text: Some("  立即整改  ".into()),
            ..FollowupOrder::default()
        };
        let o = opening(&order, ResultCode::NonCompliant, "2026-03-02")
            .unwrap()
            .unwrap();
        assert!(o.stop_operating && o.case_opened);
        assert_eq!(o.order_text.as_deref(), Some("立即整改"));
        for result in [ResultCode::BasicallyCompliant, ResultCode::Compliant] {
            let e = opening(&order, result, "2026-03-02").unwrap_err();
            assert_eq!(e.code(), "followup_markers_not_allowed");
        }
    }

    #[test]
    fn bad_periods_and_years_outside_the_calendar_are_refused() {
        for p in [0, MAX_PERIOD_WORKING_DAYS + 1] {
            let order = FollowupOrder {
                period_working_days: Some(p),
                ..FollowupOrder::default()
            };
            assert_eq!(
                opening(&order, ResultCode::BasicallyCompliant, "2026-03-02"),
                Err(Refusal::BadPeriod)
            );
        }
        // 2026-12-28 + 10 working days runs into 2027, which the bundled data lacks.
        let e = opening(
            &FollowupOrder::default(),
            ResultCode::BasicallyCompliant,
            "2026-12-28",
        )
        .unwrap_err();
        assert_eq!(e, Refusal::CalendarYearMissing(2027));
        assert_eq!(e.code(), "calendar_year_missing");
        assert!(e.to_string().contains("2027"));
    }

    #[test]
    fn recheck_teams_need_two_distinct_active_unconflicted_inspectors() {
        let facts = TeamFacts {
            active: ids(&["a", "b", "c"]).into_iter().collect(),
            conflicted: ids(&["c"]).into_iter().collect(),
        };
        assert_eq!(
            check_team(&ids(&["a", "a"]), &facts),
            Err(Refusal::TeamTooSmall(1))
        );
        assert_eq!(
            check_team(&ids(&["a", "x"]), &facts),
            Err(Refusal::NotActive(ids(&["x"])))
        );
        assert_eq!(
            check_team(&ids(&["a", "c"]), &facts),
            Err(Refusal::Conflicted(ids(&["c"])))
        );
        assert_eq!(
            check_team(&ids(&["b", "a", "b"]), &facts),
            Ok(ids(&["b", "a"]))
        );
    }

    #[test]
    fn due_when_open_and_the_deadline_is_reached() {
        let dl = d("2026-03-16");
        assert!(!is_due(FollowupState::Open, dl, d("2026-03-15")));
        assert!(is_due(FollowupState::Open, dl, dl));
        assert!(is_due(FollowupState::Open, dl, d("2026-04-01")));
        for s in [
            FollowupState::RecheckAssigned,
            FollowupState::Closed,
            FollowupState::Escalated,
        ] {
            assert!(!is_due(s, dl, d("2026-04-01")));
        }
    }

    #[test]
    fn states_round_trip() {
        for s in FollowupState::ALL {
            assert_eq!(FollowupState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(FollowupState::parse("x"), None);
    }

    fn status() -> impl Strategy<Value = Option<ItemStatus>> {
        prop_oneof![
            Just(None),
            Just(Some(ItemStatus::Pass)),
            Just(Some(ItemStatus::Fail)),
            Just(Some(ItemStatus::NotApplicable)),
        ]
    }

    fn result() -> impl Strategy<Value = ResultCode> {
        prop_oneof![
            Just(ResultCode::Compliant),
            Just(ResultCode::BasicallyCompliant),
            Just(ResultCode::NonCompliant),
        ]
    }

    proptest! {
        /// Closed exactly when every must-check item was answered pass; other items and the
        /// recheck's overall result do not matter then.
        #[test]
        fn closing_needs_every_must_check_item_passed(
            statuses in proptest::collection::vec(status(), 1..8),
            others in proptest::collection::vec(status(), 0..8),
            r in result(),
        ) {
            let must: Vec<String> = (0..statuses.len()).map(|i| format!("m{i}")).collect();
            let mut answers = HashMap::new();
            for (code, s) in must.iter().zip(&statuses) {
                if let Some(s) = s {
                    answers.insert(code.clone(), *s);
                }
            }
            for (i, s) in others.iter().enumerate() {
                if let Some(s) = s {
                    answers.insert(format!("o{i}"), *s);
                }
            }
            let all_pass = statuses.iter().all(|s| *s == Some(ItemStatus::Pass));
            let want = if all_pass { Closing::Closed } else { Closing::Escalated };
            prop_assert_eq!(decide_closing(&must, &answers, r), want);
        }

        /// An opened order's deadline is exactly `period` working days after the order, a
        /// working day, and never before the order; markers only ever stay on 不符合.
        #[test]
        fn openings_count_the_period_in_working_days(
            offset in 0u64..1000,
            period in 1u32..40,
            r in result(),
            stop in any::<bool>(),
        ) {
            let cal = Calendar::default_cn();
            let on = d("2024-01-01").checked_add_days(chrono::Days::new(offset)).unwrap();
            let team = ids(&["a", "b"]);
            let facts = facts_all_active(&team);
            let order = FollowupOrder { period_working_days: Some(period), stop_operating: stop, ..FollowupOrder::default() };
            let got = decide_opening(&order, &OpeningFacts {
                result: r, ordered_on: on, failed_items: &[], inspection_team: &team, team: &facts, default_period: 10,
            }, &cal);
            match got {
                Ok(Some(o)) => {
                    prop_assert!(r != ResultCode::Compliant);
                    prop_assert!(o.deadline > on);
                    prop_assert!(cal.is_working_day(o.deadline).unwrap());
                    prop_assert_eq!(cal.working_days_between(on, o.deadline).unwrap(), period);
                    prop_assert!(!o.stop_operating || r == ResultCode::NonCompliant);
                }
                Ok(None) => prop_assert!(r == ResultCode::Compliant && !stop),
                Err(Refusal::MarkersNotAllowed(_)) => prop_assert!(stop && r != ResultCode::NonCompliant),
                Err(Refusal::CalendarYearMissing(y)) => prop_assert_eq!(y, 2027),
                Err(e) => prop_assert!(false, "unexpected refusal {e:?}"),
            }
        }
    }
}
