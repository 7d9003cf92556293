//! Working days (工作日) on the bureau's calendar, pure: Monday to Friday, minus public
//! holidays, plus the weekend days that are made working days (调休上班). Follow-up deadlines
//! (整改, 复查) and the sampling deadlines count in working days.
//!
//! The calendar is data, entered per year from each year's State Council notice
//! (国务院办公厅关于…部分节假日安排的通知, published around November of the year before). The
//! default data, `cn-workday-calendar.json`, holds 2024–2026 with the notices it was taken from;
//! admins add later years. A date in a year the calendar does not hold is refused, never
//! guessed: a deadline computed without the holidays would be wrong by up to a week.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The default calendar data (2024–2026), as published in the State Council notices.
pub const DEFAULT_JSON: &str = include_str!("cn-workday-calendar.json");

/// Working days of the years the calendar holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    years: BTreeMap<i32, Year>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Year {
    /// Days off in holiday blocks (weekend days inside a block included).
    off: BTreeSet<NaiveDate>,
    /// Weekend days that are working days (调休上班).
    workdays: BTreeSet<NaiveDate>,
}

/// Why calendar data is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("calendar data is not valid JSON of the expected shape: {0}")]
    Shape(String),
    #[error("{0:?} is not a year")]
    BadYear(String),
    #[error("{0:?} is not a date (YYYY-MM-DD)")]
    BadDate(String),
    #[error("{date} is listed under year {year}")]
    WrongYear { date: NaiveDate, year: i32 },
    #[error("{0} is listed as a make-up working day but is not a Saturday or Sunday")]
    WorkdayNotWeekend(NaiveDate),
    #[error("{0} is listed both as a day off and as a working day")]
    Both(NaiveDate),
}

/// A date outside the years the calendar holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the working-day calendar has no data for {year}; add that year's holiday arrangement")]
pub struct OutOfRange {
    pub year: i32,
}

#[derive(Deserialize)]
struct FileShape {
    years: BTreeMap<String, YearData>,
}

/// One year's holiday arrangement as the notice gives it (the shape of one year of
/// `cn-workday-calendar.json`; admins enter later years in it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct YearData {
    /// Holiday name → its days off (`YYYY-MM-DD`), the weekend days inside the block included,
    /// e.g. `{"春节": ["2027-02-06", …]}`.
    pub off: BTreeMap<String, Vec<String>>,
    /// Weekend days that are working days (调休上班), `YYYY-MM-DD`.
    #[serde(default)]
    pub workdays: Vec<String>,
}

/// Why a plan's due date deserves a second look (the plan is not refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DateWarning {
    /// The date is before today (the bureau's date).
    DueDateInPast,
    /// The date is a weekend day or a public holiday on the calendar.
    DueDateNotWorkingDay,
    /// The calendar has no data for the date's year, so working days cannot be checked.
    CalendarYearMissing,
}

impl DateWarning {
    pub fn code(self) -> &'static str {
        match self {
            DateWarning::DueDateInPast => "due_date_in_past",
            DateWarning::DueDateNotWorkingDay => "due_date_not_working_day",
            DateWarning::CalendarYearMissing => "calendar_year_missing",
        }
    }
}

fn date(s: &str) -> Result<NaiveDate, CalendarError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| CalendarError::BadDate(s.to_owned()))
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

impl Year {
    fn parse(year: i32, data: &YearData) -> Result<Year, CalendarError> {
        let mut out = Year::default();
        for d in data.off.values().flatten() {
            out.off.insert(date(d)?);
        }
        for d in &data.workdays {
            let d = date(d)?;
            if !is_weekend(d) {
                return Err(CalendarError::WorkdayNotWeekend(d));
            }
            out.workdays.insert(d);
        }
        for d in out.off.iter().chain(&out.workdays) {
            if d.year() != year {
                return Err(CalendarError::WrongYear { date: *d, year });
            }
        }
        if let Some(d) = out.off.intersection(&out.workdays).next() {
            return Err(CalendarError::Both(*d));
        }
        Ok(out)
    }
}

impl Calendar {
    /// One year entered by an admin, checked like the bundled data: real dates, all inside
    /// `year`, make-up days on weekends only, no day both off and working.
    pub fn from_year(year: i32, data: &YearData) -> Result<Calendar, CalendarError> {
        if !(1949..=9999).contains(&year) {
            return Err(CalendarError::BadYear(year.to_string()));
        }
        let mut cal = Calendar::default();
        cal.years.insert(year, Year::parse(year, data)?);
        Ok(cal)
    }

    /// The bundled data's years with their source notices.
    pub fn default_sources() -> BTreeMap<i32, String> {
        #[derive(Deserialize)]
        struct Sources {
            #[serde(default)]
            sources: BTreeMap<String, String>,
        }
        serde_json::from_str::<Sources>(DEFAULT_JSON)
            .map(|s| {
                s.sources
                    .into_iter()
                    .filter_map(|(y, src)| Some((y.parse().ok()?, src)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The bundled data per year, as entered.
    pub fn default_year_data() -> BTreeMap<i32, YearData> {
        serde_json::from_str::<FileShape>(DEFAULT_JSON)
            .map(|f| {
                f.years
                    .into_iter()
                    .filter_map(|(y, data)| Some((y.parse().ok()?, data)))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn has_year(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// Warnings for a plan due on `due` when today is `today`.
    pub fn due_date_warnings(&self, due: NaiveDate, today: NaiveDate) -> Vec<DateWarning> {
        let mut out = Vec::new();
        if due < today {
            out.push(DateWarning::DueDateInPast);
        }
        match self.is_working_day(due) {
            Ok(true) => {}
            Ok(false) => out.push(DateWarning::DueDateNotWorkingDay),
            Err(_) => out.push(DateWarning::CalendarYearMissing),
        }
        out
    }

    /// The default data (2024–2026).
    pub fn default_cn() -> Calendar {
        Calendar::from_json(DEFAULT_JSON).expect("the bundled calendar data is valid")
    }

    /// Parses data in the format of `cn-workday-calendar.json`:
    /// `{"years": {"2024": {"off": {"春节": ["2024-02-10", …]}, "workdays": ["2024-02-04", …]}}}`.
    pub fn from_json(json: &str) -> Result<Calendar, CalendarError> {
        let shape: FileShape =
            serde_json::from_str(json).map_err(|e| CalendarError::Shape(e.to_string()))?;
        let mut cal = Calendar::default();
        for (y, data) in shape.years {
            let year: i32 = y
                .parse()
                .ok()
                .filter(|y| (1949..=9999).contains(y))
                .ok_or(CalendarError::BadYear(y.clone()))?;
            cal.years.insert(year, Year::parse(year, &data)?);
        }
        Ok(cal)
    }

    /// Adds or replaces the years of `other` (an admin entering next year's arrangement).
    pub fn merge(&mut self, other: Calendar) {
        self.years.extend(other.years);
    }

    /// The years the calendar holds, ascending.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    pub fn is_working_day(&self, d: NaiveDate) -> Result<bool, OutOfRange> {
        let year = self
            .years
            .get(&d.year())
            .ok_or(OutOfRange { year: d.year() })?;
        Ok(if is_weekend(d) {
            year.workdays.contains(&d)
        } else {
            !year.off.contains(&d)
        })
    }

    /// The deadline `n` working days after `start`: the day of `start` itself (the day an order
    /// is served, a sample received) is not counted, so `n = 1` is the next working day. With
    /// `n = 0`, `start` itself.
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> Result<NaiveDate, OutOfRange> {
        let mut d = start;
        let mut left = n;
        while left > 0 {
            d = d
                .checked_add_days(Days::new(1))
                .ok_or(OutOfRange { year: d.year() })?;
            if self.is_working_day(d)? {
                left -= 1;
            }
        }
        Ok(d)
    }

    /// Working days after `from` up to and including `to` (0 when `to <= from`): how many of a
    /// deadline's working days have passed by `to`.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> Result<u32, OutOfRange> {
        let mut n = 0;
        let mut d = from;
        while d < to {
            d = d
                .checked_add_days(Days::new(1))
                .ok_or(OutOfRange { year: d.year() })?;
            if self.is_working_day(d)? {
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        date(s).unwrap()
    }

    #[test]
    fn the_bundled_data_holds_2024_to_2026() {
        let cal = Calendar::default_cn();
        assert_eq!(cal.years().collect::<Vec<_>>(), [2024, 2025, 2026]);
    }

    #[test]
    fn holidays_and_make_up_days_from_the_notices() {
        let cal = Calendar::default_cn();
        // 2024 National Day: off 1–7 October; Sunday 29 September and Saturday 12 October work.
        for day in 1..=7 {
            assert!(!cal
                .is_working_day(NaiveDate::from_ymd_opt(2024, 10, day).unwrap())
                .unwrap());
        }
        assert!(cal.is_working_day(d("2024-09-29")).unwrap());
        assert!(cal.is_working_day(d("2024-10-12")).unwrap());
        assert!(cal.is_working_day(d("2024-10-08")).unwrap());
        // An ordinary weekend and weekday.
        assert!(!cal.is_working_day(d("2024-11-16")).unwrap());
        assert!(cal.is_working_day(d("2024-11-18")).unwrap());
        // 2025 Spring Festival: 28 January – 4 February off; Sunday 26 January works.
        assert!(cal.is_working_day(d("2025-01-26")).unwrap());
        assert!(!cal.is_working_day(d("2025-01-28")).unwrap());
        assert!(!cal.is_working_day(d("2025-02-04")).unwrap());
        assert!(cal.is_working_day(d("2025-02-05")).unwrap());
    }

    #[test]
    fn deadlines_skip_holidays_and_count_make_up_days() {
        let cal = Calendar::default_cn();
        // Friday 27 September 2024 + 1 = Sunday 29 (调休); + 2 = Monday 30; + 3 = Tuesday
        // 8 October (1–7 off).
        assert_eq!(
            cal.add_working_days(d("2024-09-27"), 1).unwrap(),
            d("2024-09-29")
        );
        assert_eq!(
            cal.add_working_days(d("2024-09-27"), 2).unwrap(),
            d("2024-09-30")
        );
        assert_eq!(
            cal.add_working_days(d("2024-09-27"), 3).unwrap(),
            d("2024-10-08")
        );
        // Served on a holiday: counting starts from the next working day.
        assert_eq!(
            cal.add_working_days(d("2024-10-03"), 1).unwrap(),
            d("2024-10-08")
        );
        assert_eq!(
            cal.add_working_days(d("2024-10-03"), 0).unwrap(),
            d("2024-10-03")
        );
        // 20 working days from Monday 2 December 2024 (no holiday until 元旦 on 1 January).
        assert_eq!(
            cal.add_working_days(d("2024-12-02"), 20).unwrap(),
            d("2024-12-30")
        );
        assert_eq!(
            cal.add_working_days(d("2024-12-02"), 21).unwrap(),
            d("2024-12-31")
        );
        assert_eq!(
            cal.add_working_days(d("2024-12-02"), 22).unwrap(),
            d("2025-01-02")
        );
    }

    #[test]
    fn years_not_held_are_refused_not_guessed() {
        let cal = Calendar::default_cn();
        assert_eq!(
            cal.is_working_day(d("2027-03-01")),
            Err(OutOfRange { year: 2027 })
        );
        assert_eq!(
            cal.add_working_days(d("2026-12-30"), 5),
            Err(OutOfRange { year: 2027 })
        );
        let mut cal = cal;
        cal.merge(
            Calendar::from_json(
                r#"{"years": {"2027": {"off": {"元旦": ["2027-01-01"]}, "workdays": []}}}"#,
            )
            .unwrap(),
        );
        // Thursday 31 December 2026 + 1: Friday 1 January 2027 is 元旦, so Monday 4 January.
        assert_eq!(
            cal.add_working_days(d("2026-12-31"), 1).unwrap(),
            d("2027-01-04")
        );
    }

    #[test]
    fn bad_data_is_refused_with_the_reason() {
        let bad = |json: &str| Calendar::from_json(json).unwrap_err();
        assert!(matches!(bad("[]"), CalendarError::Shape(_)));
        assert!(matches!(
            bad(r#"{"years": {"20x4": {"off": {}}}}"#),
            CalendarError::BadYear(_)
        ));
        assert!(matches!(
            bad(r#"{"years": {"2024": {"off": {"x": ["2024-13-01"]}}}}"#),
            CalendarError::BadDate(_)
        ));
        assert!(matches!(
            bad(r#"{"years": {"2024": {"off": {"x": ["2025-01-01"]}}}}"#),
            CalendarError::WrongYear { .. }
        ));
        // 2024-02-05 is a Monday: it cannot be a make-up working day.
        assert!(matches!(
            bad(r#"{"years": {"2024": {"off": {}, "workdays": ["2024-02-05"]}}}"#),
            CalendarError::WorkdayNotWeekend(_)
        ));
        assert!(matches!(
            bad(
                r#"{"years": {"2024": {"off": {"x": ["2024-02-04"]}, "workdays": ["2024-02-04"]}}}"#
            ),
            CalendarError::Both(_)
        ));
    }

    #[test]
    fn spring_festival_2026() {
        let cal = Calendar::default_cn();
        // Off 15–23 February 2026; Saturday 14 and Saturday 28 February work (调休).
        assert!(cal.is_working_day(d("2026-02-14")).unwrap());
        for day in 15..=23 {
            assert!(!cal
                .is_working_day(NaiveDate::from_ymd_opt(2026, 2, day).unwrap())
                .unwrap());
        }
        assert!(cal.is_working_day(d("2026-02-24")).unwrap());
        assert!(cal.is_working_day(d("2026-02-28")).unwrap());
        // Friday 13 + 1 = Saturday 14 (调休); + 2 = Tuesday 24.
        assert_eq!(
            cal.add_working_days(d("2026-02-13"), 1).unwrap(),
            d("2026-02-14")
        );
        assert_eq!(
            cal.add_working_days(d("2026-02-13"), 2).unwrap(),
            d("2026-02-24")
        );
        assert_eq!(
            cal.working_days_between(d("2026-02-13"), d("2026-02-24"))
                .unwrap(),
            2
        );
    }

    #[test]
    fn one_year_as_admins_enter_it() {
        let data: YearData = serde_json::from_str(
            r#"{"off": {"元旦": ["2027-01-01"], "春节": ["2027-02-06", "2027-02-07"]}, "workdays": ["2027-01-30"]}"#,
        )
        .unwrap();
        let cal = Calendar::from_year(2027, &data).unwrap();
        assert!(cal.has_year(2027) && !cal.has_year(2026));
        assert!(cal.is_working_day(d("2027-01-30")).unwrap());
        assert!(!cal.is_working_day(d("2027-01-01")).unwrap());
        assert!(matches!(
            Calendar::from_year(2028, &data),
            Err(CalendarError::WrongYear { .. })
        ));
        assert!(matches!(
            Calendar::from_year(12, &data),
            Err(CalendarError::BadYear(_))
        ));
        assert_eq!(
            Calendar::default_sources()
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            [2024, 2025, 2026]
        );
        let bundled = Calendar::default_year_data();
        assert_eq!(
            bundled.keys().copied().collect::<Vec<_>>(),
            [2024, 2025, 2026]
        );
        assert!(bundled[&2026].off.contains_key("春节"));
    }

    #[test]
    fn due_date_warnings() {
        let cal = Calendar::default_cn();
        let today = d("2026-03-02");
        assert!(cal.due_date_warnings(d("2026-03-03"), today).is_empty());
        assert_eq!(
            cal.due_date_warnings(d("2026-03-07"), today),
            [DateWarning::DueDateNotWorkingDay]
        );
        assert_eq!(
            cal.due_date_warnings(d("2026-02-17"), today),
            [
                DateWarning::DueDateInPast,
                DateWarning::DueDateNotWorkingDay
            ]
        );
        assert_eq!(
            cal.due_date_warnings(d("2027-03-01"), today),
            [DateWarning::CalendarYearMissing]
        );
        for w in [
            DateWarning::DueDateInPast,
            DateWarning::DueDateNotWorkingDay,
            DateWarning::CalendarYearMissing,
        ] {
            assert_eq!(serde_json::to_value(w).unwrap(), w.code());
        }
        // A 调休 Saturday is a fine due date.
        assert!(cal
            .due_date_warnings(d("2026-02-28"), d("2026-02-01"))
            .is_empty());
    }

    proptest! {
        /// The deadline is a working day (for n > 0), exactly n working days after the start,
        /// and later deadlines never come earlier.
        #[test]
        fn deadlines_count_exactly_n_working_days(offset in 0u64..900, n in 0u32..60) {
            let cal = Calendar::default_cn();
            let start = d("2024-01-01").checked_add_days(Days::new(offset)).unwrap();
            if let Ok(due) = cal.add_working_days(start, n) {
                prop_assert!(due >= start);
                prop_assert_eq!(cal.working_days_between(start, due).unwrap(), n);
                if n > 0 {
                    prop_assert!(cal.is_working_day(due).unwrap());
                    let before = due.pred_opt().unwrap();
                    prop_assert_eq!(cal.working_days_between(start, before).unwrap(), n - 1);
                }
                if let Ok(next) = cal.add_working_days(start, n + 1) {
                    prop_assert!(next > due);
                }
            }
        }

        /// Counting back: the working days between a start and its deadline are n, so adding
        /// n and counting back gives n again, from any start (holidays and 调休 included).
        #[test]
        fn adding_then_counting_back_gives_n(offset in 0u64..1090, n in 0u32..80) {
            let cal = Calendar::default_cn();
            let start = d("2024-01-01").checked_add_days(Days::new(offset)).unwrap();
            if let Ok(due) = cal.add_working_days(start, n) {
                prop_assert_eq!(cal.working_days_between(start, due).unwrap(), n);
            }
        }

        /// Every make-up day (调休, a weekend day in `workdays`) counts as a working day: the
        /// deadline one working day before it lands on it.
        #[test]
        fn make_up_weekend_days_count(i in 0usize..64) {
            let cal = Calendar::default_cn();
            let make_up: Vec<NaiveDate> = cal.years.values().flat_map(|y| y.workdays.iter().copied()).collect();
            prop_assume!(!make_up.is_empty());
            let day = make_up[i % make_up.len()];
            prop_assert!(is_weekend(day));
            prop_assert!(cal.is_working_day(day).unwrap());
            let before = day.pred_opt().unwrap();
            prop_assert_eq!(cal.add_working_days(before, 1).unwrap(), day);
        }
    }
}
