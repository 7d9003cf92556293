//! The legal deadlines of a sample (令第15号《食品安全抽样检验管理办法》 as amended; the
//! periods are configurable, these are the defaults), on the bureau's working-day calendar:
//!
//! | rule | from | period | done when |
//! |---|---|---|---|
//! | `delivery` 样品送达 | sampling | 5 working days | the lab received it |
//! | `lab_report` 出具检验报告 | receipt by the lab | 20 working days | the report is issued |
//! | `unqualified_to_bureau` 不合格报送 | the 不合格 report | 2 working days | the bureau has it |
//! | `service` 送达被抽样者 | the bureau having it | 5 working days | served on the business |
//! | `retest_or_objection` 复检/异议申请 | service | 7 working days | a 复检 or 异议 is filed |
//! | `retest_report` 复检报告 | receipt by the 复检 lab | 10 working days | its report is issued |
//! | `disposal` 核查处置 | the bureau having the 不合格 report | 90 calendar days | completed |
//!
//! A rule applies once the date it runs from is known (the last four only for a 不合格
//! result). The day a period starts from is not counted ([`Calendar::add_working_days`]).
//! `retest_or_objection` is the business's window, not the bureau's duty: `overdue` there
//! means the window closed without a request, and a request after it is refused
//! ([`decide_retest`]). 复检 is refused for microbiological items.
//!
//! A date in a year the calendar lacks is an error value ([`CalendarYearMissing`]), never a
//! guess.

use chrono::{Days, NaiveDate};
use serde::Serialize;
use utoipa::ToSchema;

use super::results::{FailedItem, Verdict};
use crate::calendar::{Calendar, OutOfRange};

coded_enum! {
    /// A deadline rule.
    Rule {
        Delivery = "delivery", "样品送达检验机构";
        LabReport = "lab_report", "检验机构出具检验报告";
        UnqualifiedToBureau = "unqualified_to_bureau", "不合格检验结论报送";
        Service = "service", "检验结论送达被抽样者";
        RetestOrObjection = "retest_or_objection", "复检或异议申请";
        RetestReport = "retest_report", "复检机构出具复检报告";
        Disposal = "disposal", "核查处置";
    }
}

coded_enum! {
    /// Where a deadline stands on a given day.
    Status {
        /// Not done; the due date is today or later.
        Pending = "pending", "未到期";
        /// Done on or before the due date.
        Met = "met", "按期完成";
        /// Done after the due date.
        MetLate = "met_late", "逾期完成";
        /// Not done, and the due date has passed.
        Overdue = "overdue", "已逾期";
    }
}

/// How a period is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "unit", content = "days")]
pub enum Period {
    WorkingDays(u32),
    CalendarDays(u32),
}

/// The periods, configurable (the domain guide: verify against the current text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    pub delivery_working_days: u32,
    pub lab_report_working_days: u32,
    pub unqualified_to_bureau_working_days: u32,
    pub service_working_days: u32,
    pub retest_or_objection_working_days: u32,
    pub retest_report_working_days: u32,
    pub disposal_calendar_days: u32,
}

impl Default for Periods {
    fn default() -> Self {
        Periods {
            delivery_working_days: 5,
            lab_report_working_days: 20,
            unqualified_to_bureau_working_days: 2,
            service_working_days: 5,
            retest_or_objection_working_days: 7,
            retest_report_working_days: 10,
            disposal_calendar_days: 90,
        }
    }
}

impl Periods {
    pub fn period(&self, rule: Rule) -> Period {
        match rule {
            Rule::Delivery => Period::WorkingDays(self.delivery_working_days),
            Rule::LabReport => Period::WorkingDays(self.lab_report_working_days),
            Rule::UnqualifiedToBureau => {
                Period::WorkingDays(self.unqualified_to_bureau_working_days)
            }
            Rule::Service => Period::WorkingDays(self.service_working_days),
            Rule::RetestOrObjection => Period::WorkingDays(self.retest_or_objection_working_days),
            Rule::RetestReport => Period::WorkingDays(self.retest_report_working_days),
            Rule::Disposal => Period::CalendarDays(self.disposal_calendar_days),
        }
    }
}

/// The calendar lacks a year a deadline runs through: an admin must add it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the working-day calendar has no data for {year}, so the {} deadline ({}) cannot be computed; an admin must add that year", .rule.code(), .rule.label_zh())]
pub struct CalendarYearMissing {
    pub rule: Rule,
    pub year: i32,
}

impl CalendarYearMissing {
    pub fn code(&self) -> &'static str {
        "calendar_year_missing"
    }
}

/// What is known of a sample (the bureau's dates). `None`: not happened (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    pub sampled_on: NaiveDate,
    /// The lab received the sample (custody `received`).
    pub received_on: Option<NaiveDate>,
    /// The lab issued its report (custody `reported`).
    pub reported_on: Option<NaiveDate>,
    /// The report's overall verdict.
    pub overall: Option<Verdict>,
    /// A 不合格 result reached the bureau.
    pub bureau_notified_on: Option<NaiveDate>,
    /// The result was served on the business.
    pub served_on: Option<NaiveDate>,
    pub retest_requested_on: Option<NaiveDate>,
    pub objection_on: Option<NaiveDate>,
    /// The 复检 lab received the backup sample.
    pub retest_received_on: Option<NaiveDate>,
    pub retest_reported_on: Option<NaiveDate>,
    /// 核查处置 completed.
    pub disposal_done_on: Option<NaiveDate>,
}

/// One deadline as computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Deadline {
    pub rule: Rule,
    pub period: Period,
    /// The day it runs from (not counted).
    pub start: NaiveDate,
    pub due: NaiveDate,
    /// When it was done, if it was.
    pub done_on: Option<NaiveDate>,
    pub status: Status,
}

/// Where a deadline `due` stands on `today`, done on `done_on` or not yet.
pub fn status(due: NaiveDate, done_on: Option<NaiveDate>, today: NaiveDate) -> Status {
    match done_on {
        Some(d) if d <= due => Status::Met,
        Some(_) => Status::MetLate,
        None if today <= due => Status::Pending,
        None => Status::Overdue,
    }
}

/// The due date of `period` from `start`.
pub fn due_date(
    calendar: &Calendar,
    rule: Rule,
    period: Period,
    start: NaiveDate,
) -> Result<NaiveDate, CalendarYearMissing> {
    let missing = |year| CalendarYearMissing { rule, year };
    match period {
        Period::WorkingDays(n) => calendar
            .add_working_days(start, n)
            .map_err(|OutOfRange { year }| missing(year)),
        Period::CalendarDays(n) => start
            .checked_add_days(Days::new(u64::from(n)))
            .ok_or(missing(9999)),
    }
}

fn earliest(a: Option<NaiveDate>, b: Option<NaiveDate>) -> Option<NaiveDate> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Every deadline that applies to the sample, in rule order, with its status on `today`.
pub fn deadlines(
    facts: &Facts,
    periods: &Periods,
    calendar: &Calendar,
    today: NaiveDate,
) -> Result<Vec<Deadline>, CalendarYearMissing> {
    let unqualified = facts.overall == Some(Verdict::Unqualified);
    let only_if = |cond: bool, d: Option<NaiveDate>| d.filter(|_| cond);
    // (rule, the day it runs from, the day it was done).
    let plan: [(Rule, Option<NaiveDate>, Option<NaiveDate>); 7] = [
        (Rule::Delivery, Some(facts.sampled_on), facts.received_on),
        (Rule::LabReport, facts.received_on, facts.reported_on),
        (
            Rule::UnqualifiedToBureau,
            only_if(unqualified, facts.reported_on),
            facts.bureau_notified_on,
        ),
        (
            Rule::Service,
            only_if(unqualified, facts.bureau_notified_on),
            facts.served_on,
        ),
        (
            Rule::RetestOrObjection,
            only_if(unqualified, facts.served_on),
            earliest(facts.retest_requested_on, facts.objection_on),
        ),
        (
            Rule::RetestReport,
            facts.retest_received_on,
            facts.retest_reported_on,
        ),
        (
            Rule::Disposal,
            only_if(unqualified, facts.bureau_notified_on),
            facts.disposal_done_on,
        ),
    ];
    let mut out = Vec::with_capacity(plan.len());
    for (rule, start, done_on) in plan {
        let Some(start) = start else { continue };
        let period = periods.period(rule);
        let due = due_date(calendar, rule, period, start)?;
        out.push(Deadline {
            rule,
            period,
            start,
            due,
            done_on,
            status: status(due, done_on, today),
        });
    }
    Ok(out)
}

/// Why a 复检 request is refused (422). Each has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetestRefusal {
    #[error("a 复检 is only for a 不合格 result that has been served on the business")]
    NotServed,
    #[error("微生物项目不予复检 (no 复检 for microbiological items): {}", .0.join(", "))]
    Microbiological(Vec<String>),
    #[error("not among the 不合格 items: {}", .0.join(", "))]
    NotFailed(Vec<String>),
    #[error("the 复检 window closed on {due} (7 working days after service by default)")]
    Late { due: NaiveDate },
    #[error("{0}")]
    Calendar(CalendarYearMissing),
}

impl RetestRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            RetestRefusal::NotServed => "retest_not_available",
            RetestRefusal::Microbiological(_) => "retest_microbiological",
            RetestRefusal::NotFailed(_) => "retest_item_not_failed",
            RetestRefusal::Late { .. } => "retest_window_closed",
            RetestRefusal::Calendar(e) => e.code(),
        }
    }
}

/// Decides a 复检 request filed on `requested_on` for `requested` item names (empty: every
/// 不合格 item). Returns the items to retest. Refused: no served 不合格 result, a request after
/// the window, an item that did not fail, a microbiological item (with the reason).
pub fn decide_retest(
    facts: &Facts,
    failed: &[FailedItem],
    requested: &[String],
    requested_on: NaiveDate,
    periods: &Periods,
    calendar: &Calendar,
) -> Result<Vec<String>, RetestRefusal> {
    let served_on = facts
        .served_on
        .filter(|_| facts.overall == Some(Verdict::Unqualified) && !failed.is_empty())
        .ok_or(RetestRefusal::NotServed)?;
    let rule = Rule::RetestOrObjection;
    let due = due_date(calendar, rule, periods.period(rule), served_on)
        .map_err(RetestRefusal::Calendar)?;
    if requested_on > due {
        return Err(RetestRefusal::Late { due });
    }
    let names: Vec<String> = if requested.is_empty() {
        failed.iter().map(|f| f.name.clone()).collect()
    } else {
        requested.iter().map(|r| r.trim().to_string()).collect()
    };
    let find = |name: &str| failed.iter().find(|f| f.name == name);
    let not_failed: Vec<String> = names
        .iter()
        .filter(|n| find(n.as_str()).is_none())
        .cloned()
        .collect();
    if !not_failed.is_empty() {
        return Err(RetestRefusal::NotFailed(not_failed));
    }
    let micro: Vec<String> = names
        .iter()
        .filter(|n| find(n.as_str()).is_some_and(|f| f.microbiological))
        .cloned()
        .collect();
    if !micro.is_empty() {
        return Err(RetestRefusal::Microbiological(micro));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn due_of(list: &[Deadline], rule: Rule) -> Option<NaiveDate> {
        list.iter().find(|x| x.rule == rule).map(|x| x.due)
    }

    fn failed(name: &str, micro: bool) -> FailedItem {
        FailedItem {
            index: 0,
            name: name.into(),
            microbiological: micro,
        }
    }

    #[test]
    fn across_the_2026_spring_festival() {
        let cal = Calendar::default_cn();
        // Thursday 12 February 2026: 13, 14 (Saturday, 调休), then 24, 25, 26 (15–23 off).
        let facts = Facts {
            sampled_on: d("2026-02-12"),
            ..Facts::default()
        };
        let list = deadlines(&facts, &Periods::default(), &cal, d("2026-02-20")).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].rule, Rule::Delivery);
        assert_eq!(list[0].due, d("2026-02-26"));
        assert_eq!(list[0].status, Status::Pending);
        // 复检 lab received on 26 February: 27, 28 (Saturday, 调休), 2–6, 9, 10, 11 March.
        let facts = Facts {
            retest_received_on: Some(d("2026-02-26")),
            ..facts
        };
        let list = deadlines(&facts, &Periods::default(), &cal, d("2026-03-12")).unwrap();
        assert_eq!(due_of(&list, Rule::RetestReport), Some(d("2026-03-11")));
        assert_eq!(list[1].status, Status::Overdue);
    }

    #[test]
    fn across_the_2025_spring_festival_and_national_day() {
        let cal = Calendar::default_cn();
        // Received Monday 20 January 2025: 21–24, 26 (Sunday, 调休), 27, then 5–7 February,
        // 8 (Saturday, 调休), 10–14, 17–21: the 20th working day is Friday 21 February.
        let facts = Facts {
            sampled_on: d("2025-01-17"),
            received_on: Some(d("2025-01-20")),
            reported_on: Some(d("2025-02-21")),
            overall: Some(Verdict::Qualified),
            ..Facts::default()
        };
        let list = deadlines(&facts, &Periods::default(), &cal, d("2025-03-01")).unwrap();
        assert_eq!(due_of(&list, Rule::LabReport), Some(d("2025-02-21")));
        assert_eq!(list[1].status, Status::Met);
        // 合格: none of the 不合格 rules apply.
        assert_eq!(list.len(), 2);

        // A 不合格 report on Friday 26 September 2025: to the bureau by Monday 29 (Sunday 28
        // works); served 5 working days from the 29th: 30, 9 October (1–8 off), 10, 11
        // (Saturday, 调休), 13.
        let facts = Facts {
            sampled_on: d("2025-09-01"),
            received_on: Some(d("2025-09-02")),
            reported_on: Some(d("2025-09-26")),
            overall: Some(Verdict::Unqualified),
            bureau_notified_on: Some(d("2025-09-29")),
            ..Facts::default()
        };
        let list = deadlines(&facts, &Periods::default(), &cal, d("2025-10-14")).unwrap();
        assert_eq!(
            due_of(&list, Rule::UnqualifiedToBureau),
            Some(d("2025-09-29"))
        );
        assert_eq!(due_of(&list, Rule::Service), Some(d("2025-10-13")));
        assert_eq!(due_of(&list, Rule::Disposal), Some(d("2025-12-28")));
        let statuses: Vec<(Rule, Status)> = list.iter().map(|x| (x.rule, x.status)).collect();
        assert_eq!(
            statuses,
            [
                (Rule::Delivery, Status::Met),
                (Rule::LabReport, Status::Met),
                (Rule::UnqualifiedToBureau, Status::Met),
                (Rule::Service, Status::Overdue),
                (Rule::Disposal, Status::Pending),
            ]
        );
    }

    #[test]
    fn retest_window_over_the_2026_national_day() {
        let cal = Calendar::default_cn();
        // Served Thursday 24 September 2026: 25–27 off (中秋), 28, 29, 30, then 1–7 October
        // off, 8, 9, 10 (Saturday, 调休), 12.
        let facts = Facts {
            sampled_on: d("2026-08-20"),
            received_on: Some(d("2026-08-21")),
            reported_on: Some(d("2026-09-18")),
            overall: Some(Verdict::Unqualified),
            bureau_notified_on: Some(d("2026-09-21")),
            served_on: Some(d("2026-09-24")),
            ..Facts::default()
        };
        let p = Periods::default();
        let list = deadlines(&facts, &p, &cal, d("2026-10-12")).unwrap();
        assert_eq!(
            due_of(&list, Rule::RetestOrObjection),
            Some(d("2026-10-12"))
        );
        let items = [failed("毒死蜱", false), failed("菌落总数", true)];
        assert_eq!(
            decide_retest(&facts, &items, &[], d("2026-10-12"), &p, &cal),
            Err(RetestRefusal::Microbiological(vec!["菌落总数".into()]))
        );
        assert_eq!(
            decide_retest(
                &facts,
                &items,
                &["毒死蜱".into()],
                d("2026-10-12"),
                &p,
                &cal
            ),
            Ok(vec!["毒死蜱".to_string()])
        );
        let late = decide_retest(
            &facts,
            &items,
            &["毒死蜱".into()],
            d("2026-10-13"),
            &p,
            &cal,
        );
        assert_eq!(
            late,
            Err(RetestRefusal::Late {
                due: d("2026-10-12")
            })
        );
        assert_eq!(late.unwrap_err().code(), "retest_window_closed");
        let e =
            decide_retest(&facts, &items, &["铅".into()], d("2026-10-09"), &p, &cal).unwrap_err();
        assert_eq!(e.code(), "retest_item_not_failed");
        let e = decide_retest(&facts, &items[1..], &[], d("2026-10-09"), &p, &cal).unwrap_err();
        assert_eq!(e.code(), "retest_microbiological");
        assert!(e.to_string().contains("微生物"), "{e}");
        let not_served = Facts {
            served_on: None,
            ..facts
        };
        assert_eq!(
            decide_retest(&not_served, &items, &[], d("2026-10-09"), &p, &cal),
            Err(RetestRefusal::NotServed)
        );
        // An objection (异议) closes the window as well: the earlier of the two counts.
        let objected = Facts {
            objection_on: Some(d("2026-10-09")),
            retest_requested_on: Some(d("2026-10-14")),
            ..facts
        };
        let list = deadlines(&objected, &p, &cal, d("2026-10-20")).unwrap();
        let window = list
            .iter()
            .find(|x| x.rule == Rule::RetestOrObjection)
            .unwrap();
        assert_eq!(window.done_on, Some(d("2026-10-09")));
        assert_eq!(window.status, Status::Met);
    }

    #[test]
    fn a_year_the_calendar_lacks_is_an_error_value() {
        let cal = Calendar::default_cn();
        let facts = Facts {
            sampled_on: d("2026-12-28"),
            ..Facts::default()
        };
        let e = deadlines(&facts, &Periods::default(), &cal, d("2026-12-29")).unwrap_err();
        assert_eq!(
            e,
            CalendarYearMissing {
                rule: Rule::Delivery,
                year: 2027
            }
        );
        assert_eq!(e.code(), "calendar_year_missing");
        assert!(e.to_string().contains("2027"));
        // Calendar days need no calendar.
        let empty = Calendar::default();
        assert_eq!(
            due_date(
                &empty,
                Rule::Disposal,
                Period::CalendarDays(90),
                d("2030-01-01")
            ),
            Ok(d("2030-04-01"))
        );
    }

    #[test]
    fn codes_and_labels() {
        for r in Rule::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.code());
            assert_eq!(Rule::parse(r.label_zh()), Some(*r));
        }
        for s in Status::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.code());
        }
        assert_eq!(
            serde_json::to_value(Period::WorkingDays(5)).unwrap(),
            serde_json::json!({"unit": "working_days", "days": 5})
        );
    }

    fn opt_day() -> impl Strategy<Value = Option<u64>> {
        proptest::option::of(0u64..60)
    }

    proptest! {
        /// Every working-day deadline falls on a working day exactly its period after its
        /// start, never before it; the calendar-day one is exactly its days later; the status
        /// follows the done date and today; only 不合格 results get the 不合格 rules.
        #[test]
        fn deadlines_are_sound(
            offset in 0u64..900,
            steps in proptest::collection::vec(opt_day(), 10),
            unqualified in any::<bool>(),
            today_after in 0u64..200,
        ) {
            let cal = Calendar::default_cn();
            let base = d("2024-01-01").checked_add_days(Days::new(offset)).unwrap();
            // Each known date a few days after the previous one.
            let mut day = base;
            let mut next = |s: Option<u64>| s.map(|n| { day = day.checked_add_days(Days::new(n)).unwrap(); day });
            let facts = Facts {
                sampled_on: base,
                received_on: next(steps[0]),
                reported_on: next(steps[1]),
                overall: Some(if unqualified { Verdict::Unqualified } else { Verdict::Qualified }),
                bureau_notified_on: next(steps[2]),
                served_on: next(steps[3]),
                retest_requested_on: next(steps[4]),
                objection_on: next(steps[5]),
                retest_received_on: next(steps[6]),
                retest_reported_on: next(steps[7]),
                disposal_done_on: next(steps[8]),
            };
            let today = base.checked_add_days(Days::new(today_after)).unwrap();
            let p = Periods::default();
            match deadlines(&facts, &p, &cal, today) {
                Ok(list) => {
                    for x in &list {
                        prop_assert!(x.due > x.start);
                        match x.period {
                            Period::WorkingDays(n) => {
                                prop_assert!(cal.is_working_day(x.due).unwrap());
                                prop_assert_eq!(cal.working_days_between(x.start, x.due).unwrap(), n);
                            }
                            Period::CalendarDays(n) => {
                                prop_assert_eq!((x.due - x.start).num_days(), i64::from(n));
                            }
                        }
                        prop_assert_eq!(x.status, status(x.due, x.done_on, today));
                        let expected = match x.done_on {
                            Some(done) if done <= x.due => Status::Met,
                            Some(_) => Status::MetLate,
                            None if today > x.due => Status::Overdue,
                            None => Status::Pending,
                        };
                        prop_assert_eq!(x.status, expected);
                        if matches!(x.rule, Rule::UnqualifiedToBureau | Rule::Service | Rule::RetestOrObjection | Rule::Disposal) {
                            prop_assert!(unqualified);
                        }
                    }
                    prop_assert_eq!(list[0].rule, Rule::Delivery);
                    let rules: Vec<Rule> = list.iter().map(|x| x.rule).collect();
                    prop_assert!(rules.windows(2).all(|w| w[0] < w[1]));
                }
                Err(e) => prop_assert!(e.year >= 2027),
            }
        }
    }
}
