//! The later facts of a 不合格 sample, recorded one at a time (`POST /api/v1/samples/{id}/facts`),
//! and the rule that decides whether one may be recorded ([`decide`]). Pure: the use case
//! (`ops::sample_facts`) loads the sample's [`Facts`] and 不合格 items, decides, then writes.
//!
//! | fact | needs before it | on or after | who besides admins and reviewers |
//! |---|---|---|---|
//! | `bureau_notified` 不合格结论报送局 | the lab's report (custody `reported`) | the report | the sample's lab |
//! | `served` 送达被抽样者 | `bureau_notified` | `bureau_notified` | — |
//! | `retest_requested` 复检申请 | `served`, within the window, no microbiological item | `served` | — |
//! | `objection_filed` 异议申请 | `served`, within the window | `served` | — |
//! | `retest_received` 复检机构收样 | `retest_requested` | `retest_requested` | the 复检 lab |
//! | `retest_reported` 复检报告 | `retest_received` | `retest_received` | the 复检 lab |
//! | `disposal_done` 核查处置完成 | `served`; a requested 复检 reported | both | — |
//!
//! Every fact is for a 不合格 sample only, never dated after today (the bureau's day) nor
//! before the fact it follows. The window of `retest_requested` and `objection_filed` is the
//! `retest_or_objection` deadline (7 working days after service on the bureau's calendar);
//! a 复检 is refused for a microbiological 不合格 item, with the items named
//! ([`super::deadlines::decide_retest`]). The same fact with the same date again is a replay
//! (nothing changes); another date for a recorded fact is a conflict. `bureau_notified` opens
//! the sample's 核查处置 follow-up (90 calendar days); `disposal_done` closes it.

use chrono::NaiveDate;

use super::deadlines::{self, Facts, Periods, RetestRefusal, Rule};
use super::results::{FailedItem, Verdict};
use crate::calendar::Calendar;

coded_enum! {
    /// A later fact of a sample.
    FactKind {
        BureauNotified = "bureau_notified", "不合格结论报送";
        Served = "served", "检验结论送达";
        RetestRequested = "retest_requested", "复检申请";
        ObjectionFiled = "objection_filed", "异议申请";
        RetestReceived = "retest_received", "复检机构收样";
        RetestReported = "retest_reported", "复检报告";
        DisposalDone = "disposal_done", "核查处置完成";
    }
}

impl FactKind {
    /// The date of this fact in `f`, if recorded.
    pub fn on(self, f: &Facts) -> Option<NaiveDate> {
        match self {
            FactKind::BureauNotified => f.bureau_notified_on,
            FactKind::Served => f.served_on,
            FactKind::RetestRequested => f.retest_requested_on,
            FactKind::ObjectionFiled => f.objection_on,
            FactKind::RetestReceived => f.retest_received_on,
            FactKind::RetestReported => f.retest_reported_on,
            FactKind::DisposalDone => f.disposal_done_on,
        }
    }

    /// `f` with this fact recorded on `on`.
    pub fn with(self, f: &Facts, on: NaiveDate) -> Facts {
        let mut f = *f;
        let slot = match self {
            FactKind::BureauNotified => &mut f.bureau_notified_on,
            FactKind::Served => &mut f.served_on,
            FactKind::RetestRequested => &mut f.retest_requested_on,
            FactKind::ObjectionFiled => &mut f.objection_on,
            FactKind::RetestReceived => &mut f.retest_received_on,
            FactKind::RetestReported => &mut f.retest_reported_on,
            FactKind::DisposalDone => &mut f.disposal_done_on,
        };
        *slot = Some(on);
        f
    }

    /// Who may record it besides admins and reviewers.
    pub fn lab_may_record(self, lab: LabRole) -> bool {
        match lab {
            LabRole::SampleLab => self == FactKind::BureauNotified,
            LabRole::RetestLab => {
                matches!(self, FactKind::RetestReceived | FactKind::RetestReported)
            }
            LabRole::Both => matches!(
                self,
                FactKind::BureauNotified | FactKind::RetestReceived | FactKind::RetestReported
            ),
        }
    }
}

/// How a lab account stands to a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabRole {
    /// The lab the sample was sent to (初检).
    SampleLab,
    /// The lab named for the 复检.
    RetestLab,
    /// Both (never, as the 复检 lab is another lab; kept total).
    Both,
}

/// What the rule needs about the sample.
#[derive(Debug, Clone)]
pub struct SampleState<'a> {
    pub facts: Facts,
    /// The 不合格 items of the lab's result (empty when none).
    pub failed: &'a [FailedItem],
    /// The bureau's today.
    pub today: NaiveDate,
}

/// One fact to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: FactKind,
    pub on: NaiveDate,
    /// `retest_requested` only: the items to retest (empty: every 不合格 item).
    pub retest_items: Vec<String>,
}

/// What recording does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The same fact with the same date is recorded: nothing changes.
    Replay,
    /// Record it.
    Record {
        /// The facts after recording (the deadlines are recomputed from them).
        facts: Facts,
        /// `retest_requested`: the items the 复检 covers.
        retest_items: Option<Vec<String>>,
        /// `bureau_notified`: open the 核查处置 follow-up, due on this day.
        open_disposal_due: Option<NaiveDate>,
        /// `disposal_done`: close the 核查处置 follow-up.
        close_disposal: bool,
    },
}

/// Why a fact is refused. Each has a stable code; [`Refusal::is_conflict`] says 409 (the
/// sample's state) or 422 (the request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("later facts are recorded only for a 不合格 (unqualified) result")]
    NotUnqualified,
    #[error("{} needs {} first", .kind.code(), .needs)]
    OutOfOrder { kind: FactKind, needs: &'static str },
    #[error("{} is already recorded on {on}; a recorded fact is not changed", .kind.code())]
    AlreadyRecorded { kind: FactKind, on: NaiveDate },
    #[error("{} cannot be dated {on}, after today ({today})", .kind.code())]
    InFuture {
        kind: FactKind,
        on: NaiveDate,
        today: NaiveDate,
    },
    #[error("{} cannot be dated {on}, before {after} ({after_on})", .kind.code())]
    BeforePredecessor {
        kind: FactKind,
        on: NaiveDate,
        after: &'static str,
        after_on: NaiveDate,
    },
    #[error("the 异议 window closed on {due} (7 working days after service by default)")]
    ObjectionWindowClosed { due: NaiveDate },
    #[error("retest items are given with retest_requested only")]
    ItemsNotAllowed,
    #[error("{0}")]
    Retest(RetestRefusal),
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotUnqualified => "sample_not_unqualified",
            Refusal::OutOfOrder { .. } => "fact_out_of_order",
            Refusal::AlreadyRecorded { .. } => "fact_already_recorded",
            Refusal::InFuture { .. } => "fact_in_future",
            Refusal::BeforePredecessor { .. } => "fact_before_predecessor",
            Refusal::ObjectionWindowClosed { .. } => "objection_window_closed",
            Refusal::ItemsNotAllowed => "retest_items_not_allowed",
            Refusal::Retest(r) => r.code(),
        }
    }

    /// 409 when the sample's state refuses it (order, a recorded fact, not 不合格); else 422.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Refusal::NotUnqualified | Refusal::OutOfOrder { .. } | Refusal::AlreadyRecorded { .. }
        ) || matches!(self, Refusal::Retest(RetestRefusal::NotServed))
    }
}

/// The fact(s) a kind follows, as (name, date) — each must be recorded, and `on` not before it.
fn predecessors(kind: FactKind, f: &Facts) -> Vec<(&'static str, Option<NaiveDate>)> {
    match kind {
        FactKind::BureauNotified => vec![("the lab's report (custody reported)", f.reported_on)],
        FactKind::Served => vec![("bureau_notified", f.bureau_notified_on)],
        FactKind::RetestRequested | FactKind::ObjectionFiled => {
            vec![("served", f.served_on)]
        }
        FactKind::RetestReceived => vec![("retest_requested", f.retest_requested_on)],
        FactKind::RetestReported => vec![
            ("retest_requested", f.retest_requested_on),
            ("retest_received", f.retest_received_on),
        ],
        FactKind::DisposalDone => {
            let mut v = vec![("served", f.served_on)];
            if f.retest_requested_on.is_some() {
                v.push(("retest_reported", f.retest_reported_on));
            }
            v
        }
    }
}

/// Decides whether `req` may be recorded for the sample in `state`.
pub fn decide(
    state: &SampleState<'_>,
    req: &Request,
    periods: &Periods,
    calendar: &Calendar,
) -> Result<Decision, Refusal> {
    let f = &state.facts;
    let kind = req.kind;
    if f.overall != Some(Verdict::Unqualified) {
        return Err(Refusal::NotUnqualified);
    }
    if kind != FactKind::RetestRequested && !req.retest_items.is_empty() {
        return Err(Refusal::ItemsNotAllowed);
    }
    if let Some(on) = kind.on(f) {
        return if on == req.on {
            Ok(Decision::Replay)
        } else {
            Err(Refusal::AlreadyRecorded { kind, on })
        };
    }
    let preds = predecessors(kind, f);
    for (needs, on) in &preds {
        if on.is_none() {
            return Err(Refusal::OutOfOrder { kind, needs });
        }
    }
    if req.on > state.today {
        return Err(Refusal::InFuture {
            kind,
            on: req.on,
            today: state.today,
        });
    }
    for (after, on) in preds {
        let after_on = on.expect("checked above");
        if req.on < after_on {
            return Err(Refusal::BeforePredecessor {
                kind,
                on: req.on,
                after,
                after_on,
            });
        }
    }
    let mut retest_items = None;
    match kind {
        FactKind::RetestRequested => {
            let items = deadlines::decide_retest(
                f,
                state.failed,
                &req.retest_items,
                req.on,
                periods,
                calendar,
            )
            .map_err(Refusal::Retest)?;
            retest_items = Some(items);
        }
        FactKind::ObjectionFiled => {
            let rule = Rule::RetestOrObjection;
            let served = f.served_on.expect("checked above");
            let due = deadlines::due_date(calendar, rule, periods.period(rule), served)
                .map_err(|e| Refusal::Retest(RetestRefusal::Calendar(e)))?;
            if req.on > due {
                return Err(Refusal::ObjectionWindowClosed { due });
            }
        }
        _ => {}
    }
    let open_disposal_due = if kind == FactKind::BureauNotified {
        let rule = Rule::Disposal;
        Some(
            deadlines::due_date(calendar, rule, periods.period(rule), req.on)
                .map_err(|e| Refusal::Retest(RetestRefusal::Calendar(e)))?,
        )
    } else {
        None
    };
    Ok(Decision::Record {
        facts: kind.with(f, req.on),
        retest_items,
        open_disposal_due,
        close_disposal: kind == FactKind::DisposalDone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn failed(name: &str, micro: bool) -> FailedItem {
        FailedItem {
            index: 0,
            name: name.into(),
            microbiological: micro,
        }
    }

    fn reported(on: &str) -> Facts {
        Facts {
            sampled_on: d("2026-01-05"),
            received_on: Some(d("2026-01-06")),
            reported_on: Some(d(on)),
            overall: Some(Verdict::Unqualified),
            ..Facts::default()
        }
    }

    fn req(kind: FactKind, on: &str) -> Request {
        Request {
            kind,
            on: d(on),
            retest_items: vec![],
        }
    }

    fn run(
        facts: &Facts,
        failed: &[FailedItem],
        r: &Request,
        today: &str,
    ) -> Result<Decision, Refusal> {
        decide(
            &SampleState {
                facts: *facts,
                failed,
                today: d(today),
            },
            r,
            &Periods::default(),
            &Calendar::default_cn(),
        )
    }

    fn recorded(d: Result<Decision, Refusal>) -> Facts {
        match d {
            Ok(Decision::Record { facts, .. }) => facts,
            other => panic!("not recorded: {other:?}"),
        }
    }

    #[test]
    fn the_chain_in_order_and_its_refusals() {
        let items = [failed("铅", false)];
        let today = "2026-04-30";
        let mut f = reported("2026-02-06");
        // Nothing before the bureau has the result.
        let e = run(&f, &items, &req(FactKind::Served, "2026-02-10"), today).unwrap_err();
        assert_eq!(e.code(), "fact_out_of_order");
        assert!(e.is_conflict());
        // Notified the day before the report: refused; on the report's day: recorded and
        // the follow-up is due 90 calendar days later.
        let e = run(
            &f,
            &items,
            &req(FactKind::BureauNotified, "2026-02-05"),
            today,
        )
        .unwrap_err();
        assert_eq!(e.code(), "fact_before_predecessor");
        let dec = run(
            &f,
            &items,
            &req(FactKind::BureauNotified, "2026-02-09"),
            today,
        )
        .unwrap();
        let Decision::Record {
            open_disposal_due, ..
        } = &dec
        else {
            panic!()
        };
        assert_eq!(*open_disposal_due, Some(d("2026-05-10")));
        f = recorded(Ok(dec));
        // Replay and another date.
        assert_eq!(
            run(
                &f,
                &items,
                &req(FactKind::BureauNotified, "2026-02-09"),
                today
            ),
            Ok(Decision::Replay)
        );
        let e = run(
            &f,
            &items,
            &req(FactKind::BureauNotified, "2026-02-10"),
            today,
        )
        .unwrap_err();
        assert_eq!(e.code(), "fact_already_recorded");
        // In the future.
        let e = run(&f, &items, &req(FactKind::Served, "2026-05-01"), today).unwrap_err();
        assert_eq!(e.code(), "fact_in_future");
        // Served Tuesday 10 February 2026; the window: 11, 12, 13, 14 (Saturday, 调休), then
        // 24, 25, 26 (15–23 off for the Spring Festival).
        f = recorded(run(&f, &items, &req(FactKind::Served, "2026-02-10"), today));
        let e = run(
            &f,
            &items,
            &req(FactKind::RetestRequested, "2026-02-27"),
            today,
        )
        .unwrap_err();
        assert_eq!(e.code(), "retest_window_closed");
        let e = run(
            &f,
            &items,
            &req(FactKind::ObjectionFiled, "2026-02-27"),
            today,
        )
        .unwrap_err();
        assert_eq!(e.code(), "objection_window_closed");
        // Received and reported only after a request.
        let e = run(
            &f,
            &items,
            &req(FactKind::RetestReceived, "2026-02-26"),
            today,
        )
        .unwrap_err();
        assert_eq!(e.code(), "fact_out_of_order");
        let dec = run(
            &f,
            &items,
            &req(FactKind::RetestRequested, "2026-02-26"),
            today,
        )
        .unwrap();
        let Decision::Record { retest_items, .. } = &dec else {
            panic!()
        };
        assert_eq!(retest_items.as_deref(), Some(&["铅".to_string()][..]));
        f = recorded(Ok(dec));
        let e = run(
            &f,
            &items,
            &req(FactKind::RetestReported, "2026-03-02"),
            today,
        )
        .unwrap_err();
        assert_eq!(e.code(), "fact_out_of_order");
        // Disposal waits for the 复检 report.
        let e = run(
            &f,
            &items,
            &req(FactKind::DisposalDone, "2026-03-02"),
            today,
        )
        .unwrap_err();
        assert_eq!(e.code(), "fact_out_of_order");
        f = recorded(run(
            &f,
            &items,
            &req(FactKind::RetestReceived, "2026-02-27"),
            today,
        ));
        f = recorded(run(
            &f,
            &items,
            &req(FactKind::RetestReported, "2026-03-10"),
            today,
        ));
        let dec = run(
            &f,
            &items,
            &req(FactKind::DisposalDone, "2026-03-20"),
            today,
        )
        .unwrap();
        assert!(matches!(
            dec,
            Decision::Record {
                close_disposal: true,
                ..
            }
        ));
    }

    #[test]
    fn microbiological_items_are_never_retested_and_qualified_samples_have_no_facts() {
        let items = [failed("铅", false), failed("菌落总数", true)];
        let mut f = reported("2026-03-02");
        f.bureau_notified_on = Some(d("2026-03-03"));
        f.served_on = Some(d("2026-03-04"));
        let e = run(
            &f,
            &items,
            &req(FactKind::RetestRequested, "2026-03-05"),
            "2026-03-06",
        )
        .unwrap_err();
        assert_eq!(e.code(), "retest_microbiological");
        assert!(e.to_string().contains("菌落总数"), "{e}");
        // Only the chemical item: accepted.
        let r = Request {
            retest_items: vec!["铅".into()],
            ..req(FactKind::RetestRequested, "2026-03-05")
        };
        assert!(run(&f, &items, &r, "2026-03-06").is_ok());
        let r = Request {
            retest_items: vec!["铅".into()],
            ..req(FactKind::Served, "2026-03-05")
        };
        assert_eq!(
            run(&f, &items, &r, "2026-03-06").unwrap_err().code(),
            "retest_items_not_allowed"
        );
        f.overall = Some(Verdict::Qualified);
        let e = run(
            &f,
            &[],
            &req(FactKind::BureauNotified, "2026-03-03"),
            "2026-03-06",
        )
        .unwrap_err();
        assert_eq!(e.code(), "sample_not_unqualified");
    }

    #[test]
    fn labs_record_only_their_facts() {
        for k in FactKind::ALL {
            assert_eq!(
                k.lab_may_record(LabRole::SampleLab),
                *k == FactKind::BureauNotified
            );
            assert_eq!(
                k.lab_may_record(LabRole::RetestLab),
                matches!(k, FactKind::RetestReceived | FactKind::RetestReported)
            );
        }
    }

    fn kind() -> impl Strategy<Value = FactKind> {
        prop::sample::select(FactKind::ALL.to_vec())
    }

    /// Random facts: each later fact recorded or not, on a day from a random offset.
    fn facts() -> impl Strategy<Value = Facts> {
        (
            prop::bool::ANY,
            prop::collection::vec(prop::option::of(0u64..40), 7),
        )
            .prop_map(|(unqualified, days)| {
                let base = d("2026-03-02");
                let at = |i: usize| days[i].map(|n| base + chrono::Days::new(n));
                let mut f = reported("2026-03-02");
                f.overall = Some(if unqualified {
                    Verdict::Unqualified
                } else {
                    Verdict::Qualified
                });
                f.bureau_notified_on = at(0);
                f.served_on = at(1);
                f.retest_requested_on = at(2);
                f.objection_on = at(3);
                f.retest_received_on = at(4);
                f.retest_reported_on = at(5);
                f.disposal_done_on = at(6);
                f
            })
    }

    proptest! {
        #[test]
        fn a_recorded_fact_follows_its_predecessors_and_is_not_in_the_future(
            f in facts(), k in kind(), offset in 0u64..60, today_offset in 0u64..60, micro in prop::bool::ANY,
        ) {
            let base = d("2026-03-02");
            let items = [failed("铅", false), failed("沙门氏菌", micro)];
            let r = Request { kind: k, on: base + chrono::Days::new(offset), retest_items: vec![] };
            let today = base + chrono::Days::new(today_offset);
            let out = decide(&SampleState { facts: f, failed: &items, today }, &r,
                &Periods::default(), &Calendar::default_cn());
            match out {
                Ok(Decision::Replay) => prop_assert_eq!(k.on(&f), Some(r.on)),
                Ok(Decision::Record { facts: after, close_disposal, open_disposal_due, .. }) => {
                    prop_assert_eq!(f.overall, Some(Verdict::Unqualified));
                    prop_assert_eq!(k.on(&f), None);
                    prop_assert_eq!(k.on(&after), Some(r.on));
                    prop_assert!(r.on <= today);
                    for (_, on) in predecessors(k, &f) {
                        prop_assert!(on.is_some_and(|p| p <= r.on));
                    }
                    // Nothing else changed.
                    for other in FactKind::ALL.iter().filter(|o| **o != k) {
                        prop_assert_eq!(other.on(&after), other.on(&f));
                    }
                    prop_assert_eq!(close_disposal, k == FactKind::DisposalDone);
                    prop_assert_eq!(open_disposal_due.is_some(), k == FactKind::BureauNotified);
                    // A 复检 with a microbiological failure is never recorded.
                    prop_assert!(!(k == FactKind::RetestRequested && micro));
                }
                Err(e) => {
                    if f.overall != Some(Verdict::Unqualified) {
                        prop_assert_eq!(e.code(), "sample_not_unqualified");
                    } else {
                        let recorded_other = k.on(&f).is_some_and(|on| on != r.on);
                        prop_assert_eq!(e.code() == "fact_already_recorded", recorded_other);
                    }
                }
            }
        }

        #[test]
        fn the_whole_chain_in_order_is_accepted_when_no_item_is_microbiological(
            gaps in prop::collection::vec(0u64..3, 6),
        ) {
            let items = [failed("铅", false)];
            let mut f = reported("2026-03-02");
            let mut on = d("2026-03-02");
            let today = d("2026-12-31");
            let chain = [
                FactKind::BureauNotified, FactKind::Served, FactKind::RetestRequested,
                FactKind::RetestReceived, FactKind::RetestReported, FactKind::DisposalDone,
            ];
            for (k, gap) in chain.iter().zip(&gaps) {
                on = on + chrono::Days::new(*gap);
                let r = Request { kind: *k, on, retest_items: vec![] };
                let out = decide(&SampleState { facts: f, failed: &items, today }, &r,
                    &Periods::default(), &Calendar::default_cn());
                match out {
                    Ok(Decision::Record { facts, .. }) => f = facts,
                    other => prop_assert!(false, "{:?} on {}: {:?}", k, on, other),
                }
            }
            prop_assert_eq!(f.disposal_done_on, Some(on));
        }
    }
}
