//! Campaign statistics, pure (no I/O): the date ranges the figures are counted over, the
//! layout of the 3·15 活动统计表 as data ([`FORM`]), the rules a unit's figures must keep
//! ([`decide_values`]), their sum across units ([`total`]) and what the records prefill
//! ([`prefill`]). The XLSX writers are in [`xlsx`].

pub mod xlsx;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::BureauZone;
use crate::establishment::FieldError;

/// Longest range `GET /api/v1/stats` counts over, in days (both ends included): a year and a
/// bit, so "this campaign year" always fits and every query stays bounded.
pub const MAX_RANGE_DAYS: i64 = 400;

/// Largest figure one row may hold (far above any real count; keeps sums exact in `i64`).
pub const MAX_VALUE: i64 = 1_000_000_000_000;

/// An inclusive range of the bureau's calendar days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

fn parse_day(field: &str, s: &str) -> Result<NaiveDate, FieldError> {
    // `%Y` alone would take `+2024` or 5-digit years; the API speaks exactly YYYY-MM-DD.
    let well_formed = s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
    well_formed
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| FieldError::new(field, "invalid_date", "expected a date YYYY-MM-DD"))
}

/// `from` and `to` as given (`YYYY-MM-DD`): both dates, `from` ≤ `to`, at most `max_days`
/// days from one to the other (both included). Every problem is listed.
pub fn decide_range(from: &str, to: &str, max_days: i64) -> Result<DayRange, Vec<FieldError>> {
    let (f, t) = (parse_day("from", from), parse_day("to", to));
    let (from, to) = match (f, t) {
        (Ok(f), Ok(t)) => (f, t),
        (f, t) => return Err([f.err(), t.err()].into_iter().flatten().collect()),
    };
    if from > to {
        return Err(vec![FieldError::new(
            "to",
            "reversed_range",
            "to is before from",
        )]);
    }
    if (to - from).num_days() + 1 > max_days {
        return Err(vec![FieldError::new(
            "to",
            "range_too_long",
            format!("a range covers at most {max_days} days"),
        )]);
    }
    Ok(DayRange { from, to })
}

/// The first instant (Unix ms) of day `d` in the bureau's zone. The zone is a fixed offset of
/// whole minutes, and the bureau's date is non-decreasing in time, so a binary search over
/// the minutes around UTC midnight finds it exactly.
pub fn start_of_day_ms(zone: &BureauZone, d: NaiveDate) -> i64 {
    let utc_midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let minute = 60_000_i64;
    let base = utc_midnight.timestamp_millis();
    let date_at = |m: i64| {
        DateTime::<Utc>::from_timestamp_millis(base + m * minute)
            .map(|t| zone.date_at(t))
            .unwrap_or(d)
    };
    // Offsets lie within ±14 h: the answer is in [-14 h, +14 h] minutes from UTC midnight.
    let (mut lo, mut hi) = (-14 * 60_i64, 14 * 60_i64);
    while lo < hi {
        let mid = lo + (hi - lo).div_euclid(2);
        if date_at(mid) >= d {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    base + lo * minute
}

impl DayRange {
    /// `[start, end)` in Unix ms: the first instant of `from` to the first of the day after
    /// `to`, in the bureau's zone.
    pub fn bounds_ms(&self, zone: &BureauZone) -> (i64, i64) {
        let after = self.to.succ_opt().unwrap_or(self.to);
        (
            start_of_day_ms(zone, self.from),
            start_of_day_ms(zone, after),
        )
    }
}

/// The bureau's offset from UTC in ms (UTC+8: 28,800,000): day `d` starts at UTC midnight of
/// `d` minus this. SQL that compares a stored date with a stored instant uses it.
pub fn zone_offset_ms(zone: &BureauZone) -> i64 {
    let d = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
    d.and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .timestamp_millis()
        - start_of_day_ms(zone, d)
}

/// A reporting unit's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// 科室
    Section,
    /// 所 (市场监督管理所)
    Station,
    /// 中心
    Centre,
}

impl UnitKind {
    pub const ALL: [UnitKind; 3] = [UnitKind::Section, UnitKind::Station, UnitKind::Centre];
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Section => "section",
            UnitKind::Station => "station",
            UnitKind::Centre => "centre",
        }
    }
    pub fn parse(s: &str) -> Option<UnitKind> {
        UnitKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            UnitKind::Section => "科室",
            UnitKind::Station => "所",
            UnitKind::Centre => "中心",
        }
    }
}

/// One row of the 3·15 活动统计表.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct FormRow {
    /// Stable key of the row in a report's `values`.
    pub code: &'static str,
    /// The printed number (1–14); `None` for the sub-row, which is printed under its parent.
    pub number: Option<u8>,
    /// The label as printed (without its unit).
    pub label: &'static str,
    /// The unit as printed in the 单位 column.
    pub unit: &'static str,
    /// The row this one is part of (its figure may not exceed the parent's).
    pub parent: Option<&'static str>,
    /// Whether the records prefill it (see [`prefill`]).
    pub prefilled: bool,
}

const fn row(code: &'static str, number: u8, label: &'static str, unit: &'static str) -> FormRow {
    FormRow {
        code,
        number: Some(number),
        label,
        unit,
        parent: None,
        prefilled: false,
    }
}

/// The form's title.
pub const FORM_TITLE: &str = "3·15 活动统计表";

/// The header fields, as printed, above the rows.
pub const FORM_HEADER_FIELDS: [&str; 3] = ["填报单位", "联系人", "电话"];

/// The rows in printed order: the 14 numbered rows, the 主题宣传活动 sub-row right under
/// 开展主题活动数量. (The issue gives no unit for rows 1 and 1.1; they count activities, 次.)
pub const FORM: [FormRow; 15] = [
    row("theme_activities", 1, "开展主题活动数量", "次"),
    FormRow {
        code: "theme_publicity_activities",
        number: None,
        label: "主题宣传活动",
        unit: "次",
        parent: Some("theme_activities"),
        prefilled: false,
    },
    row("consumer_participants", 2, "消费者参与数", "人次"),
    FormRow {
        prefilled: true,
        ..row("business_participants", 3, "经营者或企业参与数", "户次")
    },
    row("press_conferences", 4, "召开新闻发布会", "次"),
    row("printed_materials", 5, "印发宣传资料", "册、份"),
    row(
        "consumer_education_activities",
        6,
        "开展消费教育引导活动",
        "次",
    ),
    row(
        "press_articles",
        7,
        "报刊杂志发表专题文章或新闻报道总数",
        "篇",
    ),
    row(
        "broadcast_programmes",
        8,
        "广播、电视播放专题节目或报道",
        "次",
    ),
    row("new_media_reports", 9, "新媒体报道总数", "篇"),
    row("readership", 10, "阅读量", "次"),
    row("publicity_videos", 11, "宣传视频", "个"),
    FormRow {
        prefilled: true,
        ..row("typical_cases", 12, "发布典型案例", "个")
    },
    row("public_service_ads", 13, "制作、播放各类公益广告", "条/天"),
    row(
        "anniversary_events",
        14,
        "纪念消费者权益保护法施行30周年纪念活动",
        "场",
    ),
];

/// The row of a code.
pub fn form_row(code: &str) -> Option<&'static FormRow> {
    FORM.iter().find(|r| r.code == code)
}

/// A report's figures: every row code of [`FORM`] → a non-negative integer.
pub type Values = BTreeMap<String, i64>;

/// Every row at 0.
pub fn zero_values() -> Values {
    FORM.iter().map(|r| (r.code.to_string(), 0)).collect()
}

/// A unit's figures as sent: an object of row code → non-negative integer (at most
/// [`MAX_VALUE`]); rows left out are 0. Refused (every problem listed): an unknown row code
/// (`unknown_row`), a value that is not such an integer (`invalid_value`), a sub-row above its
/// parent (`sub_row_exceeds_parent`).
pub fn decide_values(
    input: &serde_json::Map<String, serde_json::Value>,
) -> Result<Values, Vec<FieldError>> {
    let mut problems = Vec::new();
    let mut values = zero_values();
    for (code, v) in input {
        let field = format!("values.{code}");
        if form_row(code).is_none() {
            problems.push(FieldError::new(
                &field,
                "unknown_row",
                "no row of the 3·15 form has this code",
            ));
            continue;
        }
        match v.as_i64().filter(|n| (0..=MAX_VALUE).contains(n)) {
            Some(n) => {
                values.insert(code.clone(), n);
            }
            None => problems.push(FieldError::new(
                &field,
                "invalid_value",
                format!("expected an integer from 0 to {MAX_VALUE}"),
            )),
        }
    }
    for r in FORM.iter() {
        let Some(parent) = r.parent else { continue };
        let (own, of_parent) = (values[r.code], values[parent]);
        if own > of_parent {
            problems.push(FieldError::new(
                &format!("values.{}", r.code),
                "sub_row_exceeds_parent",
                format!("{} ({own}) exceeds {parent} ({of_parent})", r.label),
            ));
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}

/// The sum, row by row, of units' figures (a row a stored report lacks counts 0).
pub fn total<'a>(reports: impl IntoIterator<Item = &'a Values>) -> Values {
    let mut sum = zero_values();
    for values in reports {
        for (code, n) in values {
            if let Some(s) = sum.get_mut(code) {
                *s = s.saturating_add(*n);
            }
        }
    }
    sum
}

/// What the records know of a campaign period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefillFacts {
    /// Distinct establishments with a submitted, not rejected, routine inspection in the
    /// period.
    pub establishments_inspected: i64,
    /// Black-list entries of the current revisions of issues published in the period.
    pub black_entries_published: i64,
}

/// The rows the records prefill: 经营者或企业参与数 (`business_participants`) and 发布典型案例
/// (`typical_cases`). Every other row is for the unit to fill.
pub fn prefill(facts: PrefillFacts) -> BTreeMap<String, i64> {
    BTreeMap::from([
        (
            "business_participants".to_string(),
            facts.establishments_inspected,
        ),
        ("typical_cases".to_string(), facts.black_entries_published),
    ])
}

/// The statistics of one range, counted by the database from the records (see
/// `store::stats`). Sampling counts are not part of them: sampling does not exist yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Stats {
    /// `YYYY-MM-DD`, first day counted.
    pub from: String,
    /// `YYYY-MM-DD`, last day counted.
    pub to: String,
    pub inspections: InspectionStats,
    pub coverage: Coverage,
    pub list_entries: ListEntryStats,
    pub rectifications: RectificationStats,
    pub rechecks: RecheckStats,
}

/// Routine (drawn) inspections submitted in the range (rechecks are counted under `rechecks`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct InspectionStats {
    /// Every such inspection.
    pub submitted: i64,
    /// By review state now: waiting (`submitted`), `approved`, `returned`, `rejected`.
    pub by_review_state: ReviewStateCounts,
    /// Approved ones by effective result: the reviewer's override if any, else the computed
    /// result.
    pub approved_by_result: ResultCounts,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReviewStateCounts {
    pub submitted: i64,
    pub approved: i64,
    pub returned: i64,
    pub rejected: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ResultCounts {
    /// 符合
    pub compliant: i64,
    /// 基本符合
    pub basically_compliant: i64,
    /// 不符合
    pub non_compliant: i64,
}

/// Establishments covered: distinct establishments with a submitted, not rejected, routine
/// inspection in the range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Coverage {
    pub establishments: i64,
    /// By 街道/乡镇 (the registry's town now), by town.
    pub by_town: Vec<Count>,
    /// By risk grade (the registry's grade now), A to D.
    pub by_risk_grade: Vec<Count>,
}

/// A count under a key (a town, a risk grade).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Count {
    pub key: String,
    pub count: i64,
}

/// Entries of the current revision of every list issue published in the range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ListEntryStats {
    /// 红榜
    pub red: i64,
    /// 黑榜
    pub black: i64,
}

/// Rectifications (follow-ups, 整改) ordered in the range, and what became of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct RectificationStats {
    pub opened: i64,
    /// Closed by a passed recheck.
    pub closed: i64,
    /// Closed, the recheck inspection submitted on or before the deadline (bureau's day).
    pub closed_on_time: i64,
    /// Escalated (the recheck failed).
    pub escalated: i64,
}

/// Recheck tasks (复查) created in the range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct RecheckStats {
    pub created: i64,
    /// Of those, submitted by the team.
    pub done: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn obj(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_form_has_fourteen_numbered_rows_and_one_sub_row_in_order() {
        let numbers: Vec<u8> = FORM.iter().filter_map(|r| r.number).collect();
        assert_eq!(numbers, (1..=14).collect::<Vec<u8>>());
        assert_eq!(FORM[1].label, "主题宣传活动");
        assert_eq!(FORM[1].parent, Some(FORM[0].code));
        assert_eq!(FORM.iter().filter(|r| r.parent.is_some()).count(), 1);
        let codes: std::collections::BTreeSet<_> = FORM.iter().map(|r| r.code).collect();
        assert_eq!(codes.len(), FORM.len(), "row codes are unique");
        let prefilled: Vec<_> = FORM
            .iter()
            .filter(|r| r.prefilled)
            .map(|r| r.code)
            .collect();
        assert_eq!(prefilled, ["business_participants", "typical_cases"]);
        assert!(prefill(PrefillFacts::default())
            .keys()
            .all(|k| form_row(k).is_some_and(|r| r.prefilled)));
    }

    #[test]
    fn ranges() {
        let r = decide_range("2024-03-01", "2024-03-31", 400).unwrap();
        assert_eq!((r.from, r.to), (d("2024-03-01"), d("2024-03-31")));
        assert!(decide_range("2024-03-01", "2024-03-01", 400).is_ok());
        let e = decide_range("2024-3-1", "nope", 400).unwrap_err();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].code, "invalid_date");
        assert_eq!(
            decide_range("2024-03-02", "2024-03-01", 400).unwrap_err()[0].code,
            "reversed_range"
        );
        assert!(decide_range("2024-01-01", "2025-02-03", 400).is_ok()); // 400 days
        assert_eq!(
            decide_range("2024-01-01", "2025-02-04", 400).unwrap_err()[0].code,
            "range_too_long"
        );
        assert!(decide_range("+2024-01-01", "2024-01-02", 400).is_err());
    }

    #[test]
    fn day_bounds_are_in_the_bureau_zone() {
        let r = DayRange {
            from: d("2024-03-01"),
            to: d("2024-03-01"),
        };
        let (s, e) = r.bounds_ms(&BureauZone::SHANGHAI);
        // 2024-03-01T00:00+08:00 = 2024-02-29T16:00Z.
        assert_eq!(s, 1_709_222_400_000);
        assert_eq!(e - s, 86_400_000);
        assert_eq!(zone_offset_ms(&BureauZone::SHANGHAI), 8 * 3_600_000);
        let utc = BureauZone::parse("UTC").unwrap();
        assert_eq!(zone_offset_ms(&utc), 0);
        let west = BureauZone::parse("-05:30").unwrap();
        assert_eq!(zone_offset_ms(&west), -(5 * 60 + 30) * 60_000);
    }

    #[test]
    fn values_are_checked() {
        let v = decide_values(&obj(
            json!({"theme_activities": 5, "theme_publicity_activities": 5,
            "readership": 100000}),
        ))
        .unwrap();
        assert_eq!(v.len(), FORM.len());
        assert_eq!(v["theme_activities"], 5);
        assert_eq!(v["press_conferences"], 0);
        let e = decide_values(&obj(
            json!({"nope": 1, "readership": -1, "press_articles": 1.5,
            "theme_publicity_activities": 2, "publicity_videos": "3"}),
        ))
        .unwrap_err();
        let codes: Vec<_> = e
            .iter()
            .map(|p| (p.field.as_str(), p.code.as_str()))
            .collect();
        assert!(codes.contains(&("values.nope", "unknown_row")));
        assert!(codes.contains(&("values.readership", "invalid_value")));
        assert!(codes.contains(&("values.press_articles", "invalid_value")));
        assert!(codes.contains(&("values.publicity_videos", "invalid_value")));
        assert!(codes.contains(&(
            "values.theme_publicity_activities",
            "sub_row_exceeds_parent"
        )));
    }

    proptest! {
        #[test]
        fn accepted_values_are_bounded_and_keep_the_sub_row_under_its_parent(
            raw in proptest::collection::btree_map(
                proptest::sample::select(FORM.iter().map(|r| r.code).chain(["x", "readers"]).collect::<Vec<_>>()),
                -5i64..50, 0..20)
        ) {
            let input: serde_json::Map<_, _> =
                raw.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
            match decide_values(&input) {
                Ok(v) => {
                    prop_assert_eq!(v.len(), FORM.len());
                    prop_assert!(v.values().all(|n| (0..=MAX_VALUE).contains(n)));
                    prop_assert!(v["theme_publicity_activities"] <= v["theme_activities"]);
                    for (k, n) in &raw { prop_assert_eq!(v[*k], *n); }
                }
                Err(problems) => {
                    prop_assert!(!problems.is_empty());
                    let bad_input = raw.iter().any(|(k, v)| form_row(k).is_none() || *v < 0);
                    let sub = raw.get("theme_publicity_activities").copied().unwrap_or(0);
                    let parent = raw.get("theme_activities").copied().unwrap_or(0);
                    prop_assert!(bad_input || sub > parent);
                }
            }
        }

        #[test]
        fn the_total_is_the_row_by_row_sum(reports in proptest::collection::vec(
            proptest::collection::vec(0i64..1000, FORM.len()), 0..6)) {
            let reports: Vec<Values> = reports.iter().map(|ns| {
                FORM.iter().zip(ns).map(|(r, n)| (r.code.to_string(), *n)).collect()
            }).collect();
            let t = total(&reports);
            prop_assert_eq!(t.len(), FORM.len());
            for r in FORM.iter() {
                prop_assert_eq!(t[r.code], reports.iter().map(|v| v[r.code]).sum::<i64>());
            }
        }

        #[test]
        fn day_bounds_contain_exactly_the_days(y in 2000i32..2100, doy in 1u32..365, len in 0i64..400,
            off_min in -14 * 60i32..=14 * 60) {
            let zone = BureauZone::parse(&format!("{}{:02}:{:02}",
                if off_min < 0 { '-' } else { '+' }, off_min.abs() / 60, off_min.abs() % 60));
            prop_assume!(zone.is_ok());
            let zone = zone.unwrap();
            let from = NaiveDate::from_yo_opt(y, doy).unwrap();
            let r = DayRange { from, to: from + chrono::Duration::days(len) };
            let (s, e) = r.bounds_ms(&zone);
            let at = |ms: i64| zone.date_at(DateTime::<Utc>::from_timestamp_millis(ms).unwrap());
            prop_assert_eq!(at(s), r.from);
            prop_assert_eq!(at(s - 1), r.from.pred_opt().unwrap());
            prop_assert_eq!(at(e - 1), r.to);
            prop_assert_eq!(at(e), r.to.succ_opt().unwrap());
        }
    }
}
