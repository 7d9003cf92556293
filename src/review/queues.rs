//! The reviewer's work queues: which queues exist, their filters, their opaque cursors and the
//! entries they list. Pure: the SQL is in `store::queues`.

use base64::Engine as _;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ReviewState;
use crate::checklist::rule::ResultCode;
use crate::plan::TeamMember;

/// A reviewer's queue, named in the path of `GET /api/v1/review/queues/{queue}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    /// Submitted, waiting for a decision; oldest submission first.
    Waiting,
    /// Returned to the team and not resubmitted yet; oldest submission first.
    Returned,
    /// Tasks neither submitted nor cancelled, past their due date (bureau's local date); most
    /// overdue first.
    OverdueTasks,
    /// Waiting inspections that carry a flag, or one of whose photos does; oldest first.
    Flagged,
    /// Open follow-ups whose deadline is within `within_days` days or passed, earliest deadline
    /// first (`overdue` marks passed ones): 整改 orders of inspections, and 核查处置 of 不合格
    /// samples (`sample_id` set, no task or plan).
    RectificationsDue,
    /// Follow-ups whose recheck (复查) task is assigned and not submitted yet; earliest deadline
    /// first.
    RechecksDue,
}

impl Queue {
    pub const ALL: [Queue; 6] = [
        Queue::Waiting,
        Queue::Returned,
        Queue::OverdueTasks,
        Queue::Flagged,
        Queue::RectificationsDue,
        Queue::RechecksDue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Waiting => "waiting",
            Queue::Returned => "returned",
            Queue::OverdueTasks => "overdue_tasks",
            Queue::Flagged => "flagged",
            Queue::RectificationsDue => "rectifications_due",
            Queue::RechecksDue => "rechecks_due",
        }
    }

    pub fn parse(s: &str) -> Option<Queue> {
        Queue::ALL.into_iter().find(|q| q.as_str() == s)
    }

    /// What the queue's entries are.
    pub fn entry_kind(self) -> EntryKind {
        match self {
            Queue::Waiting | Queue::Returned | Queue::Flagged => EntryKind::Inspection,
            Queue::OverdueTasks => EntryKind::Task,
            Queue::RectificationsDue | Queue::RechecksDue => EntryKind::Followup,
        }
    }

    /// The queue's sort key type: inspection queues page by submission time, the others by a
    /// date.
    fn key_is_date(self) -> bool {
        self.entry_kind() != EntryKind::Inspection
    }
}

/// What a queue entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Inspection,
    Task,
    Followup,
}

/// A flag for reviewers on an inspection (`server_flags`) or a photo (`photos.flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewFlag {
    /// Farther than `geofence_radius_m` from the establishment.
    OutsideRadius,
    /// A photo taken outside the inspection's time window.
    CapturedOutsideInspection,
    /// The distance could not be checked (no position, or no registered location).
    NoLocation,
    /// The team's declared result is not the computed one.
    DeclaredResultDiffers,
}

impl ReviewFlag {
    pub const ALL: [ReviewFlag; 4] = [
        ReviewFlag::OutsideRadius,
        ReviewFlag::CapturedOutsideInspection,
        ReviewFlag::NoLocation,
        ReviewFlag::DeclaredResultDiffers,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewFlag::OutsideRadius => "outside_radius",
            ReviewFlag::CapturedOutsideInspection => "captured_outside_inspection",
            ReviewFlag::NoLocation => "no_location",
            ReviewFlag::DeclaredResultDiffers => "declared_result_differs",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewFlag> {
        ReviewFlag::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// A stored JSON array of flag names, decoded. Names this build does not know are left out
    /// (every writer of flags writes these names).
    pub fn decode_list(stored: Option<&str>) -> Vec<ReviewFlag> {
        stored
            .and_then(|s| serde_json::from_str::<Vec<String>>(s).ok())
            .unwrap_or_default()
            .iter()
            .filter_map(|s| ReviewFlag::parse(s))
            .collect()
    }
}

/// Parses a result code as the API spells it.
pub fn parse_result(s: &str) -> Option<ResultCode> {
    match s {
        "compliant" => Some(ResultCode::Compliant),
        "basically_compliant" => Some(ResultCode::BasicallyCompliant),
        "non_compliant" => Some(ResultCode::NonCompliant),
        _ => None,
    }
}

/// The API spelling of a result code (as stored).
pub fn result_str(r: ResultCode) -> &'static str {
    match r {
        ResultCode::Compliant => "compliant",
        ResultCode::BasicallyCompliant => "basically_compliant",
        ResultCode::NonCompliant => "non_compliant",
    }
}

/// Default and bounds of `within_days` (rectifications due within N days).
pub const DEFAULT_WITHIN_DAYS: u32 = 7;
pub const MAX_WITHIN_DAYS: u32 = 366;
/// Default and largest page.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;
/// Longest accepted filter value and cursor, characters.
const MAX_FILTER_CHARS: usize = 200;
const MAX_CURSOR_CHARS: usize = 400;

/// Filters shared by every queue and the counts. `result` and `flag` select inspections: with
/// either, `overdue_tasks` (tasks, no result yet) is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFilter {
    pub plan_id: Option<String>,
    /// The plan's `round_title`, or the plan id.
    pub round: Option<String>,
    pub town: Option<String>,
    /// A team member's user id (the inspection's task team; for rechecks, the recheck team).
    pub member: Option<String>,
    /// The effective result (override, else computed).
    pub result: Option<ResultCode>,
    /// On the inspection or one of its photos.
    pub flag: Option<ReviewFlag>,
    /// `rectifications_due`: deadlines up to this many days after today.
    pub within_days: u32,
}

/// The raw filter parameters as the query string gives them.
#[derive(Debug, Clone, Default)]
pub struct RawFilter {
    pub plan_id: Option<String>,
    pub round: Option<String>,
    pub town: Option<String>,
    pub member: Option<String>,
    pub result: Option<String>,
    pub flag: Option<String>,
    pub within_days: Option<u32>,
}

/// Why a filter or a page parameter is refused: (code, message).
pub type Refusal = (&'static str, String);

impl RawFilter {
    /// Validates: known result and flag names, bounded lengths, `within_days` 0–366. Empty
    /// values count as absent.
    pub fn validate(self) -> Result<QueueFilter, Refusal> {
        let text = |name: &str, v: Option<String>| -> Result<Option<String>, Refusal> {
            match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
                Some(s) if s.chars().count() > MAX_FILTER_CHARS => Err((
                    "invalid_filter",
                    format!("{name} is longer than {MAX_FILTER_CHARS} characters"),
                )),
                other => Ok(other),
            }
        };
        let result = match text("result", self.result)? {
            None => None,
            Some(r) => Some(parse_result(&r).ok_or_else(|| {
                (
                    "invalid_filter",
                    format!("result {r:?} is not compliant, basically_compliant or non_compliant"),
                )
            })?),
        };
        let flag = match text("flag", self.flag)? {
            None => None,
            Some(f) => Some(ReviewFlag::parse(&f).ok_or_else(|| {
                (
                    "invalid_filter",
                    format!(
                        "flag {f:?} is not one of {}",
                        ReviewFlag::ALL.map(|f| f.as_str()).join(", ")
                    ),
                )
            })?),
        };
        let within_days = self.within_days.unwrap_or(DEFAULT_WITHIN_DAYS);
        if within_days > MAX_WITHIN_DAYS {
            return Err((
                "invalid_filter",
                format!("within_days must be between 0 and {MAX_WITHIN_DAYS}"),
            ));
        }
        Ok(QueueFilter {
            plan_id: text("plan_id", self.plan_id)?,
            round: text("round", self.round)?,
            town: text("town", self.town)?,
            member: text("member", self.member)?,
            result,
            flag,
            within_days,
        })
    }
}

/// `limit`: 1–200, default 50.
pub fn page_limit(limit: Option<u32>) -> Result<u32, Refusal> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err((
            "invalid_filter",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// The last day `rectifications_due` includes: `today` plus `within_days` calendar days.
pub fn horizon(today: &str, within_days: u32) -> String {
    NaiveDate::parse_from_str(today, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.checked_add_days(chrono::Days::new(u64::from(within_days))))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| today.to_string())
}

/// A queue's sort key: submission time (inspection queues) or a date (`YYYY-MM-DD`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SortKey {
    Time(i64),
    Date(String),
}

/// Where the next page starts: after the entry with this key and id, in this queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "q")]
    pub queue: Queue,
    #[serde(rename = "k")]
    pub key: SortKey,
    pub id: String,
}

impl Cursor {
    /// Opaque to clients: base64url of a small JSON object.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// Decodes a cursor this API returned for `queue`; anything else is refused
    /// (`invalid_cursor`), never a panic.
    pub fn decode(s: &str, queue: Queue) -> Result<Cursor, Refusal> {
        let bad = |why: &str| ("invalid_cursor", format!("cursor {why}"));
        if s.len() > MAX_CURSOR_CHARS {
            return Err(bad("is too long"));
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim())
            .map_err(|_| bad("is not a cursor this API returned"))?;
        let c: Cursor =
            serde_json::from_slice(&bytes).map_err(|_| bad("is not a cursor this API returned"))?;
        if c.queue != queue {
            return Err(bad("belongs to another queue"));
        }
        let key_ok = match (&c.key, queue.key_is_date()) {
            (SortKey::Time(t), false) => *t >= 0,
            (SortKey::Date(d), true) => NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok(),
            _ => false,
        };
        if !key_ok || c.id.is_empty() || c.id.len() > 100 {
            return Err(bad("is not a cursor this API returned"));
        }
        Ok(c)
    }
}

/// The establishment of a queue entry.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EntryEstablishment {
    pub id: String,
    pub sign_name: String,
    pub address: String,
    pub town: String,
}

/// One entry of a queue.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QueueEntry {
    /// `inspection` (waiting, returned, flagged), `task` (overdue_tasks) or `followup`
    /// (rectifications_due, rechecks_due).
    pub kind: EntryKind,
    /// The inspection's, task's or follow-up's id (per `kind`).
    pub id: String,
    pub inspection_id: Option<String>,
    /// The task (for rechecks: the recheck task); `null` for a sample's follow-up.
    pub task_id: Option<String>,
    pub followup_id: Option<String>,
    /// The 不合格 sample of a 核查处置 follow-up (rectifications_due), else `null`.
    pub sample_id: Option<String>,
    /// `null` for a sample's follow-up.
    pub plan_id: Option<String>,
    /// `null` for a sample's follow-up.
    pub round_title: Option<String>,
    pub establishment: EntryEstablishment,
    /// The task's team, in draw order.
    pub team: Vec<TeamMember>,
    pub review_state: Option<ReviewState>,
    pub review_round: Option<i64>,
    /// RFC 3339.
    pub submitted_at: Option<String>,
    pub computed_result: Option<ResultCode>,
    pub override_result: Option<ResultCode>,
    pub effective_result: Option<ResultCode>,
    /// The inspection's own flags.
    pub flags: Vec<ReviewFlag>,
    /// How many of the inspection's photos carry a flag.
    pub flagged_photos: i64,
    /// Task due date, or the follow-up's 整改期限 (`YYYY-MM-DD`).
    pub due_date: Option<String>,
    /// The recheck task's due date (rechecks_due).
    pub recheck_due_date: Option<String>,
    /// `due_date` (for rechecks: `recheck_due_date`) is before today.
    pub overdue: bool,
    #[serde(skip)]
    pub sort_key: Option<SortKey>,
}

/// One page of a queue.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QueuePage {
    pub queue: Queue,
    pub items: Vec<QueueEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Builds the page from up to `limit + 1` entries (the extra one says there is more).
pub fn page(queue: Queue, mut entries: Vec<QueueEntry>, limit: u32) -> QueuePage {
    let limit = limit as usize;
    let more = entries.len() > limit;
    entries.truncate(limit);
    let next_cursor = if more {
        entries.last().and_then(|e| {
            e.sort_key.clone().map(|key| {
                Cursor {
                    queue,
                    key,
                    id: e.id.clone(),
                }
                .encode()
            })
        })
    } else {
        None
    };
    QueuePage {
        queue,
        items: entries,
        next_cursor,
    }
}

/// Counts per queue for the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QueueCounts {
    pub waiting: i64,
    pub returned: i64,
    pub overdue_tasks: i64,
    pub flagged: i64,
    pub rectifications_due: i64,
    pub rechecks_due: i64,
}

impl QueueCounts {
    pub fn from_pairs(pairs: &[(Queue, i64)]) -> QueueCounts {
        let get = |q: Queue| {
            pairs
                .iter()
                .find(|(x, _)| *x == q)
                .map(|(_, n)| *n)
                .unwrap_or(0)
        };
        QueueCounts {
            waiting: get(Queue::Waiting),
            returned: get(Queue::Returned),
            overdue_tasks: get(Queue::OverdueTasks),
            flagged: get(Queue::Flagged),
            rectifications_due: get(Queue::RectificationsDue),
            rechecks_due: get(Queue::RechecksDue),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn queue() -> impl Strategy<Value = Queue> {
        (0usize..6).prop_map(|i| Queue::ALL[i])
    }

    proptest! {
        #[test]
        fn cursors_round_trip_in_their_queue_only(q in queue(), other in queue(), t in 0i64..i64::MAX,
            y in 2000i32..2100, d in 0u32..365, id in "[a-f0-9-]{1,40}") {
            let key = if q.key_is_date() {
                let date = NaiveDate::from_yo_opt(y, d + 1).unwrap();
                SortKey::Date(date.format("%Y-%m-%d").to_string())
            } else {
                SortKey::Time(t)
            };
            let c = Cursor { queue: q, key, id };
            let s = c.encode();
            prop_assert_eq!(Cursor::decode(&s, q), Ok(c));
            if other != q {
                prop_assert!(Cursor::decode(&s, other).is_err());
            }
        }

        /// Garbage is refused with `invalid_cursor`, never a panic.
        #[test]
        fn garbage_cursors_are_refused(s in ".{0,500}", q in queue()) {
            if let Err((code, _)) = Cursor::decode(&s, q) {
                prop_assert_eq!(code, "invalid_cursor");
            }
        }

        #[test]
        fn pages_never_exceed_the_limit(n in 0usize..30, limit in 1u32..20) {
            let entries: Vec<QueueEntry> = (0..n).map(|i| entry(i as i64)).collect();
            let p = page(Queue::Waiting, entries, limit);
            prop_assert!(p.items.len() <= limit as usize);
            prop_assert_eq!(p.next_cursor.is_some(), n > limit as usize);
            if let Some(c) = p.next_cursor {
                let c = Cursor::decode(&c, Queue::Waiting).unwrap();
                prop_assert_eq!(c.key, SortKey::Time(limit as i64 - 1));
            }
        }
    }

    fn entry(i: i64) -> QueueEntry {
        QueueEntry {
            kind: EntryKind::Inspection,
            id: format!("i{i}"),
            inspection_id: None,
            task_id: Some("t".into()),
            followup_id: None,
            sample_id: None,
            plan_id: Some("p".into()),
            round_title: Some("r".into()),
            establishment: EntryEstablishment {
                id: "e".into(),
                sign_name: "s".into(),
                address: "a".into(),
                town: "t".into(),
            },
            team: vec![],
            review_state: None,
            review_round: None,
            submitted_at: None,
            computed_result: None,
            override_result: None,
            effective_result: None,
            flags: vec![],
            flagged_photos: 0,
            due_date: None,
            recheck_due_date: None,
            overdue: false,
            sort_key: Some(SortKey::Time(i)),
        }
    }

    #[test]
    fn filters_validate() {
        let ok = RawFilter {
            result: Some("non_compliant".into()),
            flag: Some("outside_radius".into()),
            town: Some("  ".into()),
            ..RawFilter::default()
        }
        .validate()
        .unwrap();
        assert_eq!(ok.result, Some(ResultCode::NonCompliant));
        assert_eq!(ok.flag, Some(ReviewFlag::OutsideRadius));
        assert_eq!(ok.town, None);
        assert_eq!(ok.within_days, DEFAULT_WITHIN_DAYS);
        for bad in [
            RawFilter {
                result: Some("good".into()),
                ..RawFilter::default()
            },
            RawFilter {
                flag: Some("red".into()),
                ..RawFilter::default()
            },
            RawFilter {
                within_days: Some(400),
                ..RawFilter::default()
            },
            RawFilter {
                town: Some("x".repeat(201)),
                ..RawFilter::default()
            },
        ] {
            assert_eq!(bad.validate().unwrap_err().0, "invalid_filter");
        }
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(201)).is_err());
        assert_eq!(page_limit(None), Ok(50));
        assert_eq!(horizon("2025-12-28", 7), "2026-01-04");
    }
}
