//! The red/black list (红黑榜) domain, pure (no I/O): list types and issue states, the
//! criteria an issue proposes candidates by, [`propose`], entry validation and the lifecycle
//! rules (曝光 → 整改 → 公示 → 达标; a red entry revoked by a later failure).
//!
//! - **Dates**: an inspection's date (`inspected_on`) is the bureau-zone day of its
//!   `submitted_at` (the server's clock, never the device's); the period and the look-back
//!   window are inclusive ranges of such days.
//! - **Failing** ([`is_failing`]): 不符合, or any failed key item (a 基本符合 with one failed
//!   key item fails too). Black entries and automatic revocations use this, with the criteria.
//! - **Red** needs the establishment's latest approved inspection in the period to be 符合 (by
//!   default) with no failed key item, no follow-up at the establishment still unclosed and no
//!   failing inspection in the look-back window. **Black** wins over red: any black-qualifying
//!   inspection in the period makes the candidate black (the latest such is the basis).
//!   基本符合 without key failures is neither.
//! - **Sampling**: a 不合格 sampling result (食品安全抽检) at the establishment whose lab report
//!   is dated in the period makes it a black candidate too (the basis is then the sample, when
//!   no black inspection is); a 不合格 result in the look-back window keeps it off the red
//!   list (and its 核查处置 follow-up, while unclosed, does as well).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::checklist::rule::ResultCode;

macro_rules! list_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $n:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $n)] $v),*
        }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $n),* }
            }
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($n => Some($name::$v),)* _ => None }
            }
        }
    };
}

list_enum! {
    /// 红榜 (good examples) or 黑榜 (exposed for problems).
    ListType {
        /// 红榜.
        Red => "red",
        /// 黑榜.
        Black => "black",
    }
}

list_enum! {
    /// An issue is composed as a draft and, once published, never changes.
    IssueState {
        Draft => "draft",
        Published => "published",
    }
}

list_enum! {
    /// A lifecycle update on a published entry.
    UpdateKind {
        /// 整改后信息: the black-listed shop fixed its problems and passed a recheck.
        Rectified => "rectified",
        /// The red listing is revoked (the shop later failed, or by the section's decision).
        Revoked => "revoked",
    }
}

impl ListType {
    pub fn label_zh(self) -> &'static str {
        match self {
            ListType::Red => "红榜",
            ListType::Black => "黑榜",
        }
    }
}

fn default_look_back() -> u32 {
    365
}
fn default_red_results() -> Vec<ResultCode> {
    vec![ResultCode::Compliant]
}
fn default_black_results() -> Vec<ResultCode> {
    vec![ResultCode::NonCompliant]
}
fn yes() -> bool {
    true
}

/// How an issue proposes and admits entries; stored as JSON on the issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Criteria {
    /// Days before `period_end` (inclusive) in which a red candidate must have no failing
    /// inspection and no unclosed follow-up (1–3650, default 365).
    #[serde(default = "default_look_back")]
    pub look_back_days: u32,
    /// Results that can put a shop on the red list (default `[compliant]`).
    #[serde(default = "default_red_results")]
    pub red_results: Vec<ResultCode>,
    /// Results that put a shop on the black list (default `[non_compliant]`).
    #[serde(default = "default_black_results")]
    pub black_results: Vec<ResultCode>,
    /// Any failed key item (重点项) puts a shop on the black list (default true).
    #[serde(default = "yes")]
    pub black_on_failed_key_item: bool,
    /// A follow-up at the establishment not yet closed keeps it off the red list (default true).
    #[serde(default = "yes")]
    pub red_excludes_open_followup: bool,
}

impl Criteria {
    /// The criteria in words, for the 说明 of exports and pages.
    pub fn describe_zh(&self) -> String {
        let names = |v: &[ResultCode]| {
            v.iter()
                .map(|r| r.label_zh())
                .collect::<Vec<_>>()
                .join("、")
        };
        let mut red = format!("红榜：检查结果为{}", names(&self.red_results));
        if self.black_on_failed_key_item {
            red.push_str("且无重点项不符合");
        }
        if self.red_excludes_open_followup {
            red.push_str(&format!(
                "，且本期截止日前{}日内无未完成的整改",
                self.look_back_days
            ));
        }
        let mut black = format!("黑榜：检查结果为{}", names(&self.black_results));
        if self.black_on_failed_key_item {
            black.push_str("，或有重点项不符合");
        }
        format!("{red}。{black}。")
    }
}

impl Default for Criteria {
    fn default() -> Self {
        Criteria {
            look_back_days: default_look_back(),
            red_results: default_red_results(),
            black_results: default_black_results(),
            black_on_failed_key_item: true,
            red_excludes_open_followup: true,
        }
    }
}

impl Criteria {
    /// Problems with the criteria (empty when usable).
    pub fn problems(&self) -> Vec<&'static str> {
        let mut p = Vec::new();
        if !(1..=3650).contains(&self.look_back_days) {
            p.push("look_back_days must be between 1 and 3650");
        }
        if self.red_results.is_empty() {
            p.push("red_results must name at least one result");
        }
        if self.black_results.is_empty() && !self.black_on_failed_key_item {
            p.push("black_results is empty and black_on_failed_key_item is off: nothing is black");
        }
        if self
            .red_results
            .iter()
            .any(|r| self.black_results.contains(r))
        {
            p.push("a result cannot be both red and black");
        }
        p
    }

    /// Whether an inspection with this result and these failed key items is black.
    pub fn is_black(&self, result: ResultCode, failed_key_items: usize) -> bool {
        self.black_results.contains(&result)
            || (self.black_on_failed_key_item && failed_key_items > 0)
    }

    /// Whether the inspection itself is red (the establishment's window is checked apart).
    pub fn is_red_result(&self, result: ResultCode, failed_key_items: usize) -> bool {
        self.red_results.contains(&result) && failed_key_items == 0
    }
}

/// 不符合, or any failed key item: what revokes a red entry.
pub fn is_failing(result: ResultCode, failed_key_items: usize) -> bool {
    result == ResultCode::NonCompliant || failed_key_items > 0
}

/// A failed key item with its text as the checklist version prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FailedItem {
    pub code: String,
    pub text: String,
}

/// The follow-up an approval opened, as far as the measures need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowupFacts {
    pub stop_operating: bool,
    pub case_opened: bool,
    pub period_working_days: u32,
    /// Not yet closed (open, recheck assigned or escalated).
    pub unclosed: bool,
}

/// One approved inspection of an establishment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectionFact {
    pub inspection_id: String,
    /// `submitted_at`, Unix ms (orders inspections).
    pub submitted_at: i64,
    /// The bureau-zone day of `submitted_at`.
    pub inspected_on: NaiveDate,
    /// The effective result: the override if any, else the computed one.
    pub result: ResultCode,
    pub failed_key_items: Vec<FailedItem>,
    pub followup: Option<FollowupFacts>,
}

/// One 不合格 sampling result at an establishment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleFact {
    pub sample_id: String,
    /// The lab result's `reported_at`, Unix ms (orders samples).
    pub reported_at: i64,
    /// The bureau-zone day of `reported_at`.
    pub reported_on: NaiveDate,
    /// 样品名称 (the product, as on the form).
    pub sample_name: String,
    /// The 不合格 items' names, in report order.
    pub failed_items: Vec<String>,
}

impl InspectionFact {
    fn is_black(&self, c: &Criteria) -> bool {
        c.is_black(self.result, self.failed_key_items.len())
    }
}

/// What [`propose`] knows about one establishment: its approved inspections from the start
/// of the look-back window (or the period, if earlier) to the period's end, and whether a
/// follow-up there created in the window is still unclosed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstablishmentFacts {
    pub establishment_id: String,
    pub inspections: Vec<InspectionFact>,
    /// Its 不合格 sampling results over the same days.
    pub samples: Vec<SampleFact>,
    pub unclosed_followup: bool,
}

/// An issue's period (inclusive days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Period {
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.start <= d && d <= self.end
    }
    /// The first day of the look-back window.
    pub fn look_back_start(&self, c: &Criteria) -> NaiveDate {
        self.end - chrono::Days::new(u64::from(c.look_back_days))
    }
    /// The earliest day whose inspections matter to a proposal.
    pub fn facts_start(&self, c: &Criteria) -> NaiveDate {
        self.start.min(self.look_back_start(c))
    }
}

/// A proposed entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Candidate {
    pub establishment_id: String,
    pub list_type: ListType,
    /// The basis inspection; `null` when the basis is a 不合格 sample.
    pub inspection_id: Option<String>,
    /// The basis 不合格 sample (black only); `null` when the basis is an inspection.
    pub sample_id: Option<String>,
    /// The basis's day: the inspection's submission, or the sample's lab report.
    pub inspected_on: NaiveDate,
    /// The inspection's result; `null` for a sample (不合格).
    pub result: Option<ResultCode>,
    pub failed_key_items: Vec<FailedItem>,
    /// Suggested 上榜理由.
    pub reason: String,
    /// Suggested 处理措施 (black only).
    pub measures: Option<String>,
}

/// Why an inspection cannot be the basis of an entry of that type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disqualified {
    /// Black: neither a black result nor a failed key item.
    NotBlack,
    /// Red: not a red result, or a failed key item.
    NotRed,
    /// Red: a later approved inspection in the period is the one that counts.
    NotLatest,
    /// Red: a failing inspection in the look-back window.
    FailedInWindow,
    /// Red: a follow-up at the establishment is not closed.
    UnclosedFollowup,
    /// Red: a 不合格 sampling result in the look-back window.
    UnqualifiedSample,
    /// A sample is a basis for the black list only, with its lab report in the period.
    SampleNotBlackBasis,
}

impl Disqualified {
    pub fn message(self) -> &'static str {
        match self {
            Disqualified::NotBlack => "the basis inspection is not black by the issue's criteria",
            Disqualified::NotRed => "the basis inspection is not red by the issue's criteria",
            Disqualified::NotLatest => {
                "a later approved inspection in the period is the establishment's current one"
            }
            Disqualified::FailedInWindow => {
                "the establishment failed an inspection in the look-back window"
            }
            Disqualified::UnclosedFollowup => {
                "the establishment has a follow-up that is not closed"
            }
            Disqualified::UnqualifiedSample => {
                "the establishment has a 不合格 sampling result in the look-back window"
            }
            Disqualified::SampleNotBlackBasis => {
                "a 不合格 sample is a basis for a black entry only, with its lab report in the period"
            }
        }
    }
}

/// Whether `basis` (one of `facts.inspections`, in the period) qualifies for `list_type`.
pub fn qualifies(
    c: &Criteria,
    period: &Period,
    facts: &EstablishmentFacts,
    basis: &InspectionFact,
    list_type: ListType,
) -> Result<(), Disqualified> {
    match list_type {
        ListType::Black => {
            if basis.is_black(c) {
                Ok(())
            } else {
                Err(Disqualified::NotBlack)
            }
        }
        ListType::Red => {
            if !c.is_red_result(basis.result, basis.failed_key_items.len()) {
                return Err(Disqualified::NotRed);
            }
            let later = facts.inspections.iter().any(|i| {
                period.contains(i.inspected_on)
                    && (i.submitted_at, &i.inspection_id)
                        > (basis.submitted_at, &basis.inspection_id)
            });
            if later {
                return Err(Disqualified::NotLatest);
            }
            let window = period.look_back_start(c);
            let failed = facts.inspections.iter().any(|i| {
                i.inspected_on >= window
                    && i.inspected_on <= period.end
                    && (i.is_black(c) || is_failing(i.result, i.failed_key_items.len()))
            });
            if failed {
                return Err(Disqualified::FailedInWindow);
            }
            if facts
                .samples
                .iter()
                .any(|s| s.reported_on >= window && s.reported_on <= period.end)
            {
                return Err(Disqualified::UnqualifiedSample);
            }
            if c.red_excludes_open_followup && facts.unclosed_followup {
                return Err(Disqualified::UnclosedFollowup);
            }
            Ok(())
        }
    }
}

/// Whether the 不合格 sample `basis` may be the basis of an entry of `list_type`: black only,
/// its lab report in the period.
pub fn qualifies_sample(
    period: &Period,
    basis: &SampleFact,
    list_type: ListType,
) -> Result<(), Disqualified> {
    if list_type == ListType::Black && period.contains(basis.reported_on) {
        Ok(())
    } else {
        Err(Disqualified::SampleNotBlackBasis)
    }
}

/// The suggested 上榜理由 of a 不合格 sample: the date, the product and the failed items (no
/// personal data: the form's people are never named).
pub fn suggested_sample_reason(s: &SampleFact) -> String {
    let mut out = format!(
        "{}食品安全抽检{}检验结论为“不合格”",
        s.reported_on.format("%Y年%m月%d日"),
        if s.sample_name.trim().is_empty() {
            String::new()
        } else {
            format!("（{}）", s.sample_name.trim())
        }
    );
    if !s.failed_items.is_empty() {
        out.push_str("，不合格项目：");
        out.push_str(&s.failed_items.join("；"));
    }
    out.push('。');
    truncate_chars(&out, MAX_TEXT_CHARS)
}

/// The suggested 处理措施 of a 不合格 sample.
pub fn suggested_sample_measures() -> String {
    "依法对不合格食品开展核查处置".to_string()
}

/// The suggested 上榜理由: the date, the result and the failed key items with their text.
pub fn suggested_reason(i: &InspectionFact, list_type: ListType) -> String {
    let mut s = format!(
        "{}监督检查结果为“{}”",
        i.inspected_on.format("%Y年%m月%d日"),
        i.result.label_zh()
    );
    if i.failed_key_items.is_empty() {
        if list_type == ListType::Red {
            s.push_str("，所检查项目均符合要求");
        }
    } else {
        s.push_str("，重点项不符合：");
        let items: Vec<String> = i
            .failed_key_items
            .iter()
            // An item's text may end in its own full stop; the sentence adds one.
            .map(|f| {
                format!(
                    "{} {}",
                    f.code,
                    f.text.trim_end_matches(['。', '；', ';', '.'])
                )
            })
            .collect();
        s.push_str(&items.join("；"));
    }
    s.push('。');
    truncate_chars(&s, MAX_TEXT_CHARS)
}

/// The suggested 处理措施 from the follow-up the approval opened.
pub fn suggested_measures(f: Option<&FollowupFacts>) -> String {
    let mut parts = Vec::new();
    if let Some(f) = f {
        if f.stop_operating {
            parts.push("责令停止经营".to_string());
        }
        if f.case_opened {
            parts.push("立案调查".to_string());
        }
        parts.push(format!(
            "下达责令改正通知书，限期{}个工作日整改",
            f.period_working_days
        ));
    } else {
        parts.push("下达责令改正通知书".to_string());
    }
    parts.join("；")
}

/// One candidate per establishment from its approved inspections in the period: black wins
/// over red; an establishment that qualifies for neither is left out. Candidates come out in
/// the order of `facts`.
pub fn propose(c: &Criteria, period: &Period, facts: &[EstablishmentFacts]) -> Vec<Candidate> {
    let mut out = Vec::new();
    for f in facts {
        let in_period = f
            .inspections
            .iter()
            .filter(|i| period.contains(i.inspected_on));
        let latest_by = |pred: &dyn Fn(&InspectionFact) -> bool| {
            f.inspections
                .iter()
                .filter(|i| period.contains(i.inspected_on) && pred(i))
                .max_by(|a, b| {
                    (a.submitted_at, &a.inspection_id).cmp(&(b.submitted_at, &b.inspection_id))
                })
        };
        let sample = f
            .samples
            .iter()
            .filter(|s| period.contains(s.reported_on))
            .max_by(|a, b| (a.reported_at, &a.sample_id).cmp(&(b.reported_at, &b.sample_id)));
        if in_period.count() == 0 && sample.is_none() {
            continue;
        }
        let (basis, list_type) = if let Some(b) = latest_by(&|i| i.is_black(c)) {
            (b, ListType::Black)
        } else if let Some(s) = sample {
            out.push(Candidate {
                establishment_id: f.establishment_id.clone(),
                list_type: ListType::Black,
                inspection_id: None,
                sample_id: Some(s.sample_id.clone()),
                inspected_on: s.reported_on,
                result: None,
                failed_key_items: Vec::new(),
                reason: suggested_sample_reason(s),
                measures: Some(suggested_sample_measures()),
            });
            continue;
        } else if let Some(b) = latest_by(&|_| true) {
            if qualifies(c, period, f, b, ListType::Red).is_err() {
                continue;
            }
            (b, ListType::Red)
        } else {
            continue;
        };
        out.push(Candidate {
            establishment_id: f.establishment_id.clone(),
            list_type,
            inspection_id: Some(basis.inspection_id.clone()),
            sample_id: None,
            inspected_on: basis.inspected_on,
            result: Some(basis.result),
            failed_key_items: basis.failed_key_items.clone(),
            reason: suggested_reason(basis, list_type),
            measures: (list_type == ListType::Black)
                .then(|| suggested_measures(basis.followup.as_ref())),
        });
    }
    out
}

/// The longest 上榜理由, 处理措施, revision note or update text.
pub const MAX_TEXT_CHARS: usize = 500;
/// The most photos an entry may make public.
pub const MAX_PHOTOS: usize = 6;

fn truncate_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// A field problem of an entry or issue: (field, code, message).
pub type Problem = (&'static str, &'static str, String);

/// Checks a text of 1..=`MAX_TEXT_CHARS` characters with no control characters.
pub fn check_text(field: &'static str, s: &str, max: usize) -> Option<Problem> {
    let n = s.trim().chars().count();
    if n == 0 {
        return Some((field, "required", format!("{field} is required")));
    }
    if s.chars().count() > max {
        return Some((
            field,
            "too_long",
            format!("{field} is longer than {max} characters"),
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n') {
        return Some((
            field,
            "control_character",
            format!("{field} contains a control character"),
        ));
    }
    None
}

/// Validates an entry's texts and photo count for its list type.
pub fn validate_entry(
    list_type: ListType,
    reason: &str,
    measures: Option<&str>,
    photos: usize,
) -> Vec<Problem> {
    let mut p = Vec::new();
    p.extend(check_text("reason", reason, MAX_TEXT_CHARS));
    match (list_type, measures) {
        (ListType::Black, None) => p.push((
            "measures",
            "required",
            "a black entry needs its 处理措施 (measures)".into(),
        )),
        (ListType::Black, Some(m)) => p.extend(check_text("measures", m, MAX_TEXT_CHARS)),
        (ListType::Red, Some(_)) => p.push((
            "measures",
            "not_allowed",
            "a red entry has no 处理措施 (measures)".into(),
        )),
        (ListType::Red, None) => {}
    }
    if photos > MAX_PHOTOS {
        p.push((
            "photo_ids",
            "too_many",
            format!("an entry makes at most {MAX_PHOTOS} photos public"),
        ));
    }
    p
}

/// A listed entry as the lifecycle rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedEntry {
    pub entry_id: String,
    pub list_type: ListType,
    pub issue_state: IssueState,
    pub superseded: bool,
    /// The basis inspection's `submitted_at`, Unix ms.
    pub basis_submitted_at: i64,
    /// Lifecycle updates the entry already has.
    pub updates: Vec<UpdateKind>,
}

/// A newly approved inspection at the same establishment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub inspection_id: String,
    pub submitted_at: i64,
    pub inspected_on: NaiveDate,
    pub result: ResultCode,
    pub failed_key_items: usize,
}

/// The entries (of `entries`, all at the approval's establishment) a newly approved
/// inspection revokes: when it fails (不符合 or a failed key item), every red entry not yet
/// revoked in a published, current (not superseded) issue whose basis is older.
pub fn revoked_by<'a>(approval: &Approval, entries: &'a [ListedEntry]) -> Vec<&'a ListedEntry> {
    if !is_failing(approval.result, approval.failed_key_items) {
        return Vec::new();
    }
    entries
        .iter()
        .filter(|e| {
            e.list_type == ListType::Red
                && e.issue_state == IssueState::Published
                && !e.superseded
                && !e.updates.contains(&UpdateKind::Revoked)
                && e.basis_submitted_at < approval.submitted_at
        })
        .collect()
}

/// The public reason of an automatic revocation: the date and the result, nothing else
/// (never the reviewer's comments).
pub fn revocation_text(a: &Approval) -> String {
    let mut s = format!(
        "{}监督检查结果为“{}”",
        a.inspected_on.format("%Y年%m月%d日"),
        a.result.label_zh()
    );
    if a.failed_key_items > 0 {
        s.push_str(&format!("，{}项重点项不符合", a.failed_key_items));
    }
    s.push_str("，撤销红榜。");
    s
}

/// The follow-up offered as a black entry's rectification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RectifyingFollowup {
    pub establishment_matches: bool,
    pub closed: bool,
    /// The recheck inspection is approved.
    pub recheck_approved: bool,
    /// The recheck's `submitted_at`, when it has one.
    pub recheck_submitted_at: Option<i64>,
}

/// Why a rectification is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RectifyRefusal {
    /// 409: only black entries are rectified.
    NotBlack,
    /// 409: the issue is a draft.
    NotPublished,
    /// 409: a later revision replaced the issue (rectify the current one).
    Superseded,
    /// 409: already rectified.
    AlreadyRectified,
    /// 422: the follow-up is at another establishment.
    OtherEstablishment,
    /// 422: not closed, or its recheck is not approved, or the recheck predates the basis.
    RecheckNotPassed,
}

/// Whether a follow-up's passed recheck may rectify a black entry.
pub fn may_rectify(e: &ListedEntry, f: &RectifyingFollowup) -> Result<(), RectifyRefusal> {
    if e.list_type != ListType::Black {
        return Err(RectifyRefusal::NotBlack);
    }
    if e.issue_state != IssueState::Published {
        return Err(RectifyRefusal::NotPublished);
    }
    if e.superseded {
        return Err(RectifyRefusal::Superseded);
    }
    if e.updates.contains(&UpdateKind::Rectified) {
        return Err(RectifyRefusal::AlreadyRectified);
    }
    if !f.establishment_matches {
        return Err(RectifyRefusal::OtherEstablishment);
    }
    match f.recheck_submitted_at {
        Some(at) if f.closed && f.recheck_approved && at > e.basis_submitted_at => Ok(()),
        _ => Err(RectifyRefusal::RecheckNotPassed),
    }
}

/// The default 整改后信息.
pub fn rectification_text(recheck_on: NaiveDate) -> String {
    format!(
        "经{}复查，该单位已按要求完成整改，复查合格。",
        recheck_on.format("%Y年%m月%d日")
    )
}

/// Groups facts rows into per-establishment facts, keeping the first-seen order.
pub fn group_facts(
    order: &[String],
    rows: Vec<(String, InspectionFact)>,
    unclosed: &std::collections::HashSet<String>,
) -> Vec<EstablishmentFacts> {
    let mut by: BTreeMap<String, Vec<InspectionFact>> = BTreeMap::new();
    for (e, i) in rows {
        by.entry(e).or_default().push(i);
    }
    order
        .iter()
        .map(|e| EstablishmentFacts {
            establishment_id: e.clone(),
            inspections: by.remove(e).unwrap_or_default(),
            samples: Vec::new(),
            unclosed_followup: unclosed.contains(e),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn period() -> Period {
        Period {
            start: d("2026-03-01"),
            end: d("2026-03-31"),
        }
    }

    fn fact(id: &str, day: u32, result: ResultCode, keys: usize) -> InspectionFact {
        let on = d("2026-03-01") + chrono::Days::new(u64::from(day));
        InspectionFact {
            inspection_id: id.into(),
            submitted_at: i64::from(day) * 86_400_000,
            inspected_on: on,
            result,
            failed_key_items: (0..keys)
                .map(|k| FailedItem {
                    code: format!("3.{k}"),
                    text: format!("重点项{k}"),
                })
                .collect(),
            followup: (result != ResultCode::Compliant).then_some(FollowupFacts {
                stop_operating: result == ResultCode::NonCompliant,
                case_opened: false,
                period_working_days: 10,
                unclosed: true,
            }),
        }
    }

    fn est(id: &str, inspections: Vec<InspectionFact>, unclosed: bool) -> EstablishmentFacts {
        EstablishmentFacts {
            establishment_id: id.into(),
            inspections,
            samples: Vec::new(),
            unclosed_followup: unclosed,
        }
    }

    #[test]
    fn suggested_reasons_end_in_one_full_stop() {
        let mut f = fact("i", 3, ResultCode::NonCompliant, 2);
        f.failed_key_items[0].text = "未建立进货查验记录。".into();
        f.failed_key_items[1].text = "从业人员无健康证明；".into();
        let s = suggested_reason(&f, ListType::Black);
        assert_eq!(
            s,
            "2026年03月04日监督检查结果为“不符合”，重点项不符合：3.0 未建立进货查验记录；3.1 从业人员无健康证明。"
        );
        let red = suggested_reason(&fact("j", 1, ResultCode::Compliant, 0), ListType::Red);
        assert!(red.ends_with("所检查项目均符合要求。"), "{red}");
        assert!(!red.contains("。。"));
    }

    fn sample_fact(id: &str, on: &str) -> SampleFact {
        SampleFact {
            sample_id: id.into(),
            reported_at: d(on)
                .and_hms_opt(2, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_millis(),
            reported_on: d(on),
            sample_name: "小麦粉".into(),
            failed_items: vec!["铅".into(), "菌落总数".into()],
        }
    }

    #[test]
    fn unqualified_samples_are_black_candidates_and_keep_shops_off_the_red_list() {
        let c = Criteria::default();
        let p = period();
        // Only a 不合格 sample in the period: a black candidate resting on it.
        let mut only = est("a", vec![], false);
        only.samples = vec![sample_fact("s1", "2026-03-10")];
        // A 符合 inspection and a 不合格 sample in the period: black (the sample), not red.
        let mut both = est("b", vec![fact("b1", 20, ResultCode::Compliant, 0)], false);
        both.samples = vec![sample_fact("s2", "2026-03-05")];
        // A 符合 inspection; the sample before the period but in the look-back window: neither.
        let mut before = est("c", vec![fact("c1", 20, ResultCode::Compliant, 0)], false);
        before.samples = vec![sample_fact("s3", "2026-02-10")];
        // A black inspection wins as the basis.
        let mut black = est("d", vec![fact("d1", 3, ResultCode::NonCompliant, 0)], true);
        black.samples = vec![sample_fact("s4", "2026-03-20")];
        let out = propose(&c, &p, &[only, both.clone(), before.clone(), black]);
        let got: Vec<_> = out
            .iter()
            .map(|c| {
                (
                    c.establishment_id.as_str(),
                    c.list_type,
                    c.inspection_id.as_deref(),
                    c.sample_id.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", ListType::Black, None, Some("s1")),
                ("b", ListType::Black, None, Some("s2")),
                ("d", ListType::Black, Some("d1"), None),
            ]
        );
        assert_eq!(
            out[0].reason,
            "2026年03月10日食品安全抽检（小麦粉）检验结论为“不合格”，不合格项目：铅；菌落总数。"
        );
        assert!(validate_entry(
            ListType::Black,
            &out[0].reason,
            out[0].measures.as_deref(),
            0
        )
        .is_empty());
        assert_eq!(
            qualifies(&c, &p, &before, &before.inspections[0], ListType::Red),
            Err(Disqualified::UnqualifiedSample)
        );
        // Without the sample the same shop is red.
        let mut clean = before.clone();
        clean.samples.clear();
        assert_eq!(
            qualifies(&c, &p, &clean, &clean.inspections[0], ListType::Red),
            Ok(())
        );
        assert_eq!(
            qualifies_sample(&p, &both.samples[0], ListType::Black),
            Ok(())
        );
        assert_eq!(
            qualifies_sample(&p, &both.samples[0], ListType::Red),
            Err(Disqualified::SampleNotBlackBasis)
        );
        assert_eq!(
            qualifies_sample(&p, &before.samples[0], ListType::Black),
            Err(Disqualified::SampleNotBlackBasis)
        );
    }

    #[test]
    fn names_round_trip() {
        for t in ListType::ALL {
            assert_eq!(ListType::parse(t.as_str()), Some(*t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for s in IssueState::ALL {
            assert_eq!(IssueState::parse(s.as_str()), Some(*s));
        }
        for k in UpdateKind::ALL {
            assert_eq!(UpdateKind::parse(k.as_str()), Some(*k));
        }
        let c: Criteria = serde_json::from_str("{}").unwrap();
        assert_eq!(c, Criteria::default());
        assert!(c.problems().is_empty());
    }

    #[test]
    fn black_wins_and_basically_compliant_is_neither() {
        let c = Criteria::default();
        let facts = vec![
            est(
                "a",
                vec![
                    fact("a1", 1, ResultCode::Compliant, 0),
                    fact("a2", 5, ResultCode::NonCompliant, 2),
                ],
                false,
            ),
            est("b", vec![fact("b1", 3, ResultCode::Compliant, 0)], false),
            est(
                "c",
                vec![fact("c1", 3, ResultCode::BasicallyCompliant, 0)],
                true,
            ),
            est(
                "d",
                vec![fact("d1", 3, ResultCode::BasicallyCompliant, 1)],
                true,
            ),
        ];
        let out = propose(&c, &period(), &facts);
        let got: Vec<_> = out
            .iter()
            .map(|c| {
                (
                    c.establishment_id.as_str(),
                    c.list_type,
                    c.inspection_id.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", ListType::Black, "a2"),
                ("b", ListType::Red, "b1"),
                ("d", ListType::Black, "d1")
            ]
        );
        assert!(out[0]
            .reason
            .contains("重点项不符合：3.0 重点项0；3.1 重点项1"));
        assert_eq!(
            out[0].measures.as_deref(),
            Some("责令停止经营；下达责令改正通知书，限期10个工作日整改")
        );
        assert_eq!(out[1].measures, None);
        assert!(out[1]
            .reason
            .starts_with("2026年03月04日监督检查结果为“符合”"));
    }

    #[test]
    fn red_needs_a_clean_window() {
        let c = Criteria::default();
        let old_fail = InspectionFact {
            inspected_on: d("2025-12-01"),
            submitted_at: -1,
            ..fact("x0", 0, ResultCode::NonCompliant, 0)
        };
        let f = est(
            "x",
            vec![old_fail, fact("x1", 3, ResultCode::Compliant, 0)],
            false,
        );
        assert!(propose(&c, &period(), std::slice::from_ref(&f)).is_empty());
        let short = Criteria {
            look_back_days: 30,
            ..Criteria::default()
        };
        assert_eq!(propose(&short, &period(), &[f]).len(), 1);
        let open = est("y", vec![fact("y1", 3, ResultCode::Compliant, 0)], true);
        assert_eq!(
            qualifies(&c, &period(), &open, &open.inspections[0], ListType::Red),
            Err(Disqualified::UnclosedFollowup)
        );
    }

    #[test]
    fn entry_validation() {
        assert!(validate_entry(ListType::Red, "好", None, 6).is_empty());
        let p = validate_entry(ListType::Red, "", Some("x"), 7);
        let codes: Vec<_> = p.iter().map(|p| (p.0, p.1)).collect();
        assert_eq!(
            codes,
            [
                ("reason", "required"),
                ("measures", "not_allowed"),
                ("photo_ids", "too_many")
            ]
        );
        assert_eq!(
            validate_entry(ListType::Black, "x", None, 0)[0].1,
            "required"
        );
        assert_eq!(
            validate_entry(ListType::Black, &"字".repeat(501), Some("m"), 0)[0].1,
            "too_long"
        );
    }

    fn result_strategy() -> impl Strategy<Value = ResultCode> {
        prop_oneof![
            Just(ResultCode::Compliant),
            Just(ResultCode::BasicallyCompliant),
            Just(ResultCode::NonCompliant)
        ]
    }

    fn facts_strategy() -> impl Strategy<Value = Vec<EstablishmentFacts>> {
        prop::collection::vec(
            (
                prop::collection::vec((0u32..60, result_strategy(), 0usize..3), 0..5),
                any::<bool>(),
            ),
            0..8,
        )
        .prop_map(|ests| {
            ests.into_iter()
                .enumerate()
                .map(|(e, (ins, unclosed))| {
                    let inspections = ins
                        .into_iter()
                        .enumerate()
                        .map(|(k, (day, r, keys))| {
                            // Days 0..60 from 2026-02-01: some before the period.
                            let mut f = fact(&format!("e{e}i{k}"), 0, r, keys);
                            f.inspected_on = d("2026-02-01") + chrono::Days::new(u64::from(day));
                            f.submitted_at = i64::from(day) * 86_400_000 + k as i64;
                            f
                        })
                        .collect();
                    est(&format!("e{e}"), inspections, unclosed)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn propose_is_one_qualifying_candidate_per_establishment(facts in facts_strategy(), look_back in 1u32..400) {
            let c = Criteria { look_back_days: look_back, ..Criteria::default() };
            let p = period();
            let out = propose(&c, &p, &facts);
            let mut seen = std::collections::HashSet::new();
            for cand in &out {
                prop_assert!(seen.insert(cand.establishment_id.clone()));
                let f = facts.iter().find(|f| f.establishment_id == cand.establishment_id).unwrap();
                let basis = f.inspections.iter().find(|i| Some(&i.inspection_id) == cand.inspection_id.as_ref()).unwrap();
                prop_assert!(p.contains(basis.inspected_on));
                prop_assert_eq!(qualifies(&c, &p, f, basis, cand.list_type), Ok(()));
                prop_assert_eq!(cand.measures.is_some(), cand.list_type == ListType::Black);
                prop_assert!(validate_entry(cand.list_type, &cand.reason, cand.measures.as_deref(), 0).is_empty());
                // Black wins: a red candidate has no black inspection in the period.
                if cand.list_type == ListType::Red {
                    prop_assert!(!f.inspections.iter().any(|i| p.contains(i.inspected_on) && i.is_black(&c)));
                }
            }
            // Every establishment with a black inspection in the period is proposed black.
            for f in &facts {
                if f.inspections.iter().any(|i| p.contains(i.inspected_on) && i.is_black(&c)) {
                    prop_assert!(out.iter().any(|x| x.establishment_id == f.establishment_id && x.list_type == ListType::Black));
                }
            }
        }

        #[test]
        fn revocation_takes_only_older_current_red_entries(
            result in result_strategy(), keys in 0usize..3, at in 0i64..100,
            entries in prop::collection::vec((any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), 0i64..100), 0..8),
        ) {
            let entries: Vec<ListedEntry> = entries.into_iter().enumerate().map(|(k, (red, published, superseded, revoked, basis))| ListedEntry {
                entry_id: format!("n{k}"),
                list_type: if red { ListType::Red } else { ListType::Black },
                issue_state: if published { IssueState::Published } else { IssueState::Draft },
                superseded,
                basis_submitted_at: basis,
                updates: if revoked { vec![UpdateKind::Revoked] } else { vec![] },
            }).collect();
            let a = Approval { inspection_id: "i".into(), submitted_at: at, inspected_on: d("2026-04-01"), result, failed_key_items: keys };
            let out = revoked_by(&a, &entries);
            if !is_failing(result, keys) {
                prop_assert!(out.is_empty());
            }
            for e in &entries {
                let expected = is_failing(result, keys) && e.list_type == ListType::Red
                    && e.issue_state == IssueState::Published && !e.superseded
                    && e.updates.is_empty() && e.basis_submitted_at < at;
                prop_assert_eq!(out.iter().any(|x| x.entry_id == e.entry_id), expected);
            }
            let text = revocation_text(&a);
            prop_assert!(text.contains(result.label_zh()));
        }

        #[test]
        fn rectification_needs_a_passed_later_recheck(
            black in any::<bool>(), published in any::<bool>(), superseded in any::<bool>(), done in any::<bool>(),
            same in any::<bool>(), closed in any::<bool>(), approved in any::<bool>(), recheck in prop::option::of(0i64..100), basis in 0i64..100,
        ) {
            let e = ListedEntry {
                entry_id: "e".into(),
                list_type: if black { ListType::Black } else { ListType::Red },
                issue_state: if published { IssueState::Published } else { IssueState::Draft },
                superseded,
                basis_submitted_at: basis,
                updates: if done { vec![UpdateKind::Rectified] } else { vec![] },
            };
            let f = RectifyingFollowup { establishment_matches: same, closed, recheck_approved: approved, recheck_submitted_at: recheck };
            let ok = may_rectify(&e, &f).is_ok();
            prop_assert_eq!(ok, black && published && !superseded && !done && same && closed && approved
                && recheck.is_some_and(|r| r > basis));
        }
    }
}
