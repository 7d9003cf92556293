//! Chain of custody (样品流转) as append-only events: 封样 sealed → 寄送 dispatched → 接收
//! received (the lab records the sample's condition and whether the seal is intact) → 检验
//! testing → 出具报告 reported. Each event has its time, actor and place.
//!
//! [`decide`] is the one rule over the events already recorded for a sample and a new one:
//! - the same event id sent again with the same content is a no-op ([`Outcome::Duplicate`]):
//!   a device retries a push it never got the answer to. The same id with other content is
//!   refused: events are never edited;
//! - each kind is recorded at most once, in the order above, none skipped;
//! - an event's time is not before the previous event's;
//! - samplers (inspector accounts) record sealed and dispatched; the lab records received,
//!   testing and reported. Whether the actor is one of *this* sample's samplers or its assigned
//!   lab is the caller's check (another lab gets 404 before this rule runs).
//!
//! Nothing here deletes or rewrites: the store appends what is accepted, so sync never has a
//! conflict to resolve on these rows.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Role;

/// The kinds of custody event, in the order they must happen.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// 封样: the samplers seal the sample on site.
    Sealed,
    /// 寄送: handed to the courier or driven to the lab.
    Dispatched,
    /// 接收: the lab receives it and records its condition and the seal.
    Received,
    /// 检验: testing has started.
    Testing,
    /// 出具报告: the lab has issued its report.
    Reported,
}

impl Kind {
    /// Every kind, in the required order.
    pub const ORDER: [Kind; 5] = [
        Kind::Sealed,
        Kind::Dispatched,
        Kind::Received,
        Kind::Testing,
        Kind::Reported,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Kind::Sealed => "sealed",
            Kind::Dispatched => "dispatched",
            Kind::Received => "received",
            Kind::Testing => "testing",
            Kind::Reported => "reported",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Kind::Sealed => "封样",
            Kind::Dispatched => "寄送",
            Kind::Received => "接收",
            Kind::Testing => "检验",
            Kind::Reported => "出具报告",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        let s = s.trim();
        Kind::ORDER
            .into_iter()
            .find(|k| k.code() == s || k.label_zh() == s)
    }

    /// The role that records this kind.
    pub fn recorded_by(self) -> Role {
        match self {
            Kind::Sealed | Kind::Dispatched => Role::Inspector,
            Kind::Received | Kind::Testing | Kind::Reported => Role::Lab,
        }
    }

    /// The kind that must come before this one (`None` for sealed).
    pub fn previous(self) -> Option<Kind> {
        let i = Kind::ORDER.iter().position(|k| *k == self)?;
        i.checked_sub(1).map(|j| Kind::ORDER[j])
    }
}

/// One custody event (one row; the receipt's two fields are set on `received` only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub struct Event {
    /// Chosen by the device (a UUID): what makes a retried push recognisable.
    pub id: String,
    pub kind: Kind,
    /// When it happened, Unix milliseconds.
    pub at: i64,
    /// User id of who recorded it.
    pub actor: String,
    /// That user's role (set by the server from the account, never taken from the device).
    pub actor_role: Role,
    /// Where it happened (the premises, the courier office, the lab).
    pub place: String,
    /// `received` only: the sample's condition as the lab found it.
    pub sample_condition: Option<String>,
    /// `received` only: whether the seal was intact. `false` is recorded and flagged.
    pub seal_intact: Option<bool>,
}

/// What accepting an event means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Append it; raise these flags.
    Append(Vec<Flag>),
    /// Already recorded with the same content (a retried push): nothing to do.
    Duplicate,
}

/// Something a reviewer must see, raised when an event is appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// The lab received the sample with its seal broken.
    SealBroken,
}

impl Flag {
    pub fn code(self) -> &'static str {
        match self {
            Flag::SealBroken => "seal_broken",
        }
    }
}

/// Longest place or condition text, in characters.
pub const MAX_TEXT_CHARS: usize = 500;

/// Why an event is refused. Each has a stable code; [`Refusal::is_conflict`] tells 409 from 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "custody event {0} is already recorded with other content; custody events cannot be edited"
    )]
    Edited(String),
    #[error("{} ({}) is already recorded for this sample", .0.code(), .0.label_zh())]
    AlreadyRecorded(Kind),
    #[error("{} cannot be recorded before {}", .got.code(), .missing.code())]
    OutOfOrder { got: Kind, missing: Kind },
    #[error("the event's time is before the previous event ({}, at {previous_at} ms)", .previous.code())]
    BeforePrevious { previous: Kind, previous_at: i64 },
    #[error("{} is recorded by the {} role, not {}", .kind.code(), .kind.recorded_by().as_str(), .role.as_str())]
    WrongRole { kind: Kind, role: Role },
    #[error("received needs the sample's condition and whether the seal is intact")]
    ReceiptRequired,
    #[error("sample_condition and seal_intact belong to received only, not {}", .0.code())]
    ReceiptNotExpected(Kind),
    #[error("{0} is required (at most {MAX_TEXT_CHARS} characters, no control characters)")]
    BadText(&'static str),
    #[error("the event needs its time (Unix milliseconds)")]
    BadTime,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Edited(_) => "custody_event_edited",
            Refusal::AlreadyRecorded(_) => "custody_already_recorded",
            Refusal::OutOfOrder { .. } => "custody_out_of_order",
            Refusal::BeforePrevious { .. } => "custody_time_before_previous",
            Refusal::WrongRole { .. } => "custody_wrong_role",
            Refusal::ReceiptRequired
            | Refusal::ReceiptNotExpected(_)
            | Refusal::BadText(_)
            | Refusal::BadTime => "validation_failed",
        }
    }

    /// A conflict with what is recorded (409) rather than a bad event (422).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Refusal::Edited(_)
                | Refusal::AlreadyRecorded(_)
                | Refusal::OutOfOrder { .. }
                | Refusal::BeforePrevious { .. }
        )
    }
}

fn good_text(s: &str) -> bool {
    let t = s.trim();
    !t.is_empty() && t.chars().count() <= MAX_TEXT_CHARS && crate::text::find_forbidden(t).is_none()
}

/// Decides whether `new` may be appended to `existing` (the sample's events as recorded, in
/// recorded order). See the module doc.
pub fn decide(existing: &[Event], new: &Event) -> Result<Outcome, Refusal> {
    if let Some(same) = existing.iter().find(|e| e.id == new.id) {
        return if same == new {
            Ok(Outcome::Duplicate)
        } else {
            Err(Refusal::Edited(new.id.clone()))
        };
    }
    if new.at <= 0 {
        return Err(Refusal::BadTime);
    }
    if !good_text(&new.actor) {
        return Err(Refusal::BadText("actor"));
    }
    if !good_text(&new.place) {
        return Err(Refusal::BadText("place"));
    }
    let mut flags = Vec::new();
    match (new.kind, &new.sample_condition, new.seal_intact) {
        (Kind::Received, Some(condition), Some(intact)) => {
            if !good_text(condition) {
                return Err(Refusal::BadText("sample_condition"));
            }
            if !intact {
                flags.push(Flag::SealBroken);
            }
        }
        (Kind::Received, _, _) => return Err(Refusal::ReceiptRequired),
        (_, None, None) => {}
        (kind, _, _) => return Err(Refusal::ReceiptNotExpected(kind)),
    }
    if new.actor_role != new.kind.recorded_by() {
        return Err(Refusal::WrongRole {
            kind: new.kind,
            role: new.actor_role,
        });
    }
    if existing.iter().any(|e| e.kind == new.kind) {
        return Err(Refusal::AlreadyRecorded(new.kind));
    }
    // The latest kind: recorded events are in order, so it is also the last recorded.
    let last = existing.iter().max_by_key(|e| e.kind);
    if let Some(missing) = new.kind.previous() {
        if last.map(|e| e.kind) != Some(missing) {
            return Err(Refusal::OutOfOrder {
                got: new.kind,
                missing,
            });
        }
    }
    if let Some(last) = last {
        if new.at < last.at {
            return Err(Refusal::BeforePrevious {
                previous: last.kind,
                previous_at: last.at,
            });
        }
    }
    Ok(Outcome::Append(flags))
}

/// Whether a recorded chain has a received event with a broken seal.
pub fn seal_broken(events: &[Event]) -> bool {
    events
        .iter()
        .any(|e| e.kind == Kind::Received && e.seal_intact == Some(false))
}

/// The latest kind recorded (the sample's custody state), if any.
pub fn state(events: &[Event]) -> Option<Kind> {
    events.iter().map(|e| e.kind).max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(id: &str, kind: Kind, at: i64) -> Event {
        let received = kind == Kind::Received;
        Event {
            id: id.into(),
            kind,
            at,
            actor: "u-1".into(),
            actor_role: kind.recorded_by(),
            place: "XX区某某超市".into(),
            sample_condition: received.then(|| "包装完好".to_string()),
            seal_intact: received.then_some(true),
        }
    }

    fn run(events: &[Event]) -> Result<Vec<Event>, (usize, Refusal)> {
        let mut log = Vec::new();
        for (i, e) in events.iter().enumerate() {
            match decide(&log, e).map_err(|r| (i, r))? {
                Outcome::Append(_) => log.push(e.clone()),
                Outcome::Duplicate => {}
            }
        }
        Ok(log)
    }

    #[test]
    fn the_whole_chain_in_order() {
        let chain: Vec<Event> = Kind::ORDER
            .iter()
            .enumerate()
            .map(|(i, k)| ev(&format!("e{i}"), *k, 1000 + i as i64))
            .collect();
        assert_eq!(run(&chain).unwrap(), chain);
        assert_eq!(state(&chain), Some(Kind::Reported));
        assert!(!seal_broken(&chain));
    }

    #[test]
    fn order_is_enforced_and_nothing_is_skipped() {
        assert_eq!(
            decide(&[], &ev("a", Kind::Dispatched, 1)),
            Err(Refusal::OutOfOrder {
                got: Kind::Dispatched,
                missing: Kind::Sealed
            })
        );
        let sealed = ev("a", Kind::Sealed, 10);
        let e = decide(std::slice::from_ref(&sealed), &ev("b", Kind::Received, 20)).unwrap_err();
        assert_eq!(e.code(), "custody_out_of_order");
        assert!(e.is_conflict());
        assert_eq!(
            decide(std::slice::from_ref(&sealed), &ev("b", Kind::Sealed, 20)),
            Err(Refusal::AlreadyRecorded(Kind::Sealed))
        );
        let chain = [sealed.clone(), ev("b", Kind::Dispatched, 20)];
        assert_eq!(
            decide(&chain, &ev("c", Kind::Sealed, 30)),
            Err(Refusal::AlreadyRecorded(Kind::Sealed))
        );
        assert_eq!(
            decide(&chain, &ev("c", Kind::Received, 19)),
            Err(Refusal::BeforePrevious {
                previous: Kind::Dispatched,
                previous_at: 20
            })
        );
        // The same time as the previous event is fine (recorded in one go).
        assert_eq!(
            decide(&chain, &ev("c", Kind::Received, 20)),
            Ok(Outcome::Append(vec![]))
        );
    }

    #[test]
    fn retries_are_no_ops_and_edits_are_refused() {
        let sealed = ev("a", Kind::Sealed, 10);
        let log = [sealed.clone()];
        assert_eq!(decide(&log, &sealed), Ok(Outcome::Duplicate));
        let mut edited = sealed.clone();
        edited.place = "别处".into();
        assert_eq!(decide(&log, &edited), Err(Refusal::Edited("a".into())));
        edited = sealed;
        edited.at = 11;
        assert_eq!(
            decide(&log, &edited).unwrap_err().code(),
            "custody_event_edited"
        );
    }

    #[test]
    fn roles() {
        let mut e = ev("a", Kind::Sealed, 10);
        e.actor_role = Role::Lab;
        assert_eq!(
            decide(&[], &e),
            Err(Refusal::WrongRole {
                kind: Kind::Sealed,
                role: Role::Lab
            })
        );
        let log = [ev("a", Kind::Sealed, 10), ev("b", Kind::Dispatched, 20)];
        let mut r = ev("c", Kind::Received, 30);
        r.actor_role = Role::Inspector;
        let refusal = decide(&log, &r).unwrap_err();
        assert_eq!(refusal.code(), "custody_wrong_role");
        assert!(!refusal.is_conflict());
        r.actor_role = Role::Admin;
        assert!(decide(&log, &r).is_err());
    }

    #[test]
    fn receipt_and_broken_seal() {
        let log = [ev("a", Kind::Sealed, 10), ev("b", Kind::Dispatched, 20)];
        let mut r = ev("c", Kind::Received, 30);
        r.seal_intact = Some(false);
        r.sample_condition = Some("封条破损，样品外包装完好".into());
        assert_eq!(
            decide(&log, &r),
            Ok(Outcome::Append(vec![Flag::SealBroken]))
        );
        let mut chain = log.to_vec();
        chain.push(r.clone());
        assert!(seal_broken(&chain));
        r.seal_intact = None;
        assert_eq!(decide(&log, &r), Err(Refusal::ReceiptRequired));
        r.seal_intact = Some(true);
        r.sample_condition = Some("  ".into());
        assert_eq!(decide(&log, &r), Err(Refusal::BadText("sample_condition")));
        let mut s = ev("x", Kind::Sealed, 10);
        s.seal_intact = Some(true);
        assert_eq!(
            decide(&[], &s),
            Err(Refusal::ReceiptNotExpected(Kind::Sealed))
        );
        s.seal_intact = None;
        s.place = " ".into();
        assert_eq!(decide(&[], &s), Err(Refusal::BadText("place")));
        s.place = "p".into();
        s.at = 0;
        assert_eq!(decide(&[], &s), Err(Refusal::BadTime));
    }

    #[test]
    fn kinds_round_trip() {
        for k in Kind::ORDER {
            assert_eq!(Kind::parse(k.code()), Some(k));
            assert_eq!(Kind::parse(k.label_zh()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.code());
        }
        assert_eq!(Kind::Sealed.previous(), None);
        assert_eq!(Kind::Reported.previous(), Some(Kind::Testing));
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        (
            0usize..8,
            0usize..5,
            0i64..50,
            prop_oneof![Just(Role::Inspector), Just(Role::Lab), Just(Role::Admin)],
            any::<bool>(),
        )
            .prop_map(|(id, k, at, role, intact)| {
                let kind = Kind::ORDER[k];
                let mut e = ev(&format!("e{id}"), kind, 1 + at);
                e.actor_role = role;
                if kind == Kind::Received {
                    e.seal_intact = Some(intact);
                }
                e
            })
    }

    proptest! {
        /// Whatever events arrive, in whatever order, what is accepted is the chain's order
        /// (a prefix of sealed → … → reported), with times that never go back and each id
        /// once; everything accepted stays exactly as first recorded.
        #[test]
        fn any_accepted_sequence_is_in_order(events in proptest::collection::vec(arb_event(), 0..40)) {
            let mut log: Vec<Event> = Vec::new();
            for e in &events {
                let before = log.clone();
                match decide(&log, e) {
                    Ok(Outcome::Append(_)) => log.push(e.clone()),
                    Ok(Outcome::Duplicate) => prop_assert!(log.contains(e)),
                    Err(_) => {}
                }
                prop_assert_eq!(&log[..before.len()], &before[..]);
            }
            let kinds: Vec<Kind> = log.iter().map(|e| e.kind).collect();
            prop_assert_eq!(&kinds[..], &Kind::ORDER[..log.len()]);
            prop_assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
            prop_assert!(log.iter().all(|e| e.actor_role == e.kind.recorded_by()));
            let ids: std::collections::HashSet<&String> = log.iter().map(|e| &e.id).collect();
            prop_assert_eq!(ids.len(), log.len());
        }

        /// No event can reorder a recorded chain: one of a kind already recorded (or an
        /// earlier one) is refused, and so is any change to a recorded event under its id.
        #[test]
        fn no_sequence_reorders(len in 1usize..=5, k in 0usize..5, at in 0i64..100, place in "[a-z]{1,5}") {
            let log: Vec<Event> = Kind::ORDER[..len].iter().enumerate()
                .map(|(i, kind)| ev(&format!("e{i}"), *kind, 10 * (i as i64 + 1)))
                .collect();
            let kind = Kind::ORDER[k];
            let fresh = ev("new", kind, 1 + at);
            let got = decide(&log, &fresh);
            if k < len {
                prop_assert_eq!(got, Err(Refusal::AlreadyRecorded(kind)));
            } else if k > len {
                let out_of_order = matches!(got, Err(Refusal::OutOfOrder { .. }));
                prop_assert!(out_of_order);
            }
            for e in &log {
                prop_assert_eq!(decide(&log, e), Ok(Outcome::Duplicate));
                let mut changed = e.clone();
                changed.place = format!("{}{place}", e.place);
                prop_assert_eq!(decide(&log, &changed), Err(Refusal::Edited(e.id.clone())));
            }
        }
    }
}
