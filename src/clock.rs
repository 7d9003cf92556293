//! The bureau's calendar day. Due dates and "overdue" are days in the bureau's time zone, not in
//! whatever zone the server's host happens to be set to (a container is usually UTC, where a
//! task due on 1 December is still "not overdue" until 08:00 the next morning in Tianjin).

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Deserializer};

/// A time zone as configured: `Asia/Shanghai` (China's single zone, UTC+8 without daylight
/// saving since 1991; also its old aliases `Asia/Chongqing`, `Asia/Harbin`, `PRC`; not
/// `Asia/Urumqi`, which is UTC+6), `UTC`, or a fixed offset `+HH:MM` / `-HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BureauZone(FixedOffset);

impl BureauZone {
    pub const SHANGHAI: BureauZone = BureauZone(match FixedOffset::east_opt(8 * 3600) {
        Some(o) => o,
        None => panic!("UTC+8 is a valid offset"),
    });

    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        match s {
            "Asia/Shanghai" | "Asia/Chongqing" | "Asia/Harbin" | "PRC" => {
                return Ok(Self::SHANGHAI)
            }
            "UTC" | "Etc/UTC" | "Z" => return Ok(BureauZone(FixedOffset::east_opt(0).unwrap())),
            _ => {}
        }
        let bad = || {
            format!("time_zone {s:?}: expected Asia/Shanghai, UTC or a fixed offset like +08:00")
        };
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+') => (1, &s[1..]),
            Some(b'-') => (-1, &s[1..]),
            _ => return Err(bad()),
        };
        let (h, m) = rest.split_once(':').ok_or_else(bad)?;
        let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h.abs() > 14 || !(0..60).contains(&m) || h < 0 {
            return Err(bad());
        }
        FixedOffset::east_opt(sign * (h * 3600 + m * 60))
            .map(BureauZone)
            .ok_or_else(bad)
    }

    /// The bureau's calendar day at instant `now`.
    pub fn date_at(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.0).date_naive()
    }

    /// Today in the bureau, `YYYY-MM-DD` (how due dates are stored and compared).
    pub fn today(&self) -> String {
        self.date_at(Utc::now()).format("%Y-%m-%d").to_string()
    }
}

impl Default for BureauZone {
    fn default() -> Self {
        Self::SHANGHAI
    }
}

impl<'de> Deserialize<'de> for BureauZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BureauZone::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Unix milliseconds as an RFC 3339 UTC string with milliseconds, the API's time format.
pub fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_bureau_day_starts_at_midnight_beijing_time() {
        let z = BureauZone::default();
        // 16:30 UTC on 1 December is 00:30 on 2 December in Tianjin: a task due on the 1st is
        // overdue, whatever zone the host is in.
        assert_eq!(
            z.date_at(at("2026-12-01T16:30:00Z")).to_string(),
            "2026-12-02"
        );
        assert_eq!(
            z.date_at(at("2026-12-01T15:59:59Z")).to_string(),
            "2026-12-01"
        );
        let utc = BureauZone::parse("UTC").unwrap();
        assert_eq!(
            utc.date_at(at("2026-12-01T16:30:00Z")).to_string(),
            "2026-12-01"
        );
    }

    #[test]
    fn zones_parse_or_are_refused() {
        assert_eq!(BureauZone::parse("Asia/Shanghai"), Ok(BureauZone::SHANGHAI));
        assert_eq!(BureauZone::parse("+08:00"), Ok(BureauZone::SHANGHAI));
        let minus = BureauZone::parse("-03:30").unwrap();
        assert_eq!(
            minus.date_at(at("2026-12-01T02:00:00Z")).to_string(),
            "2026-11-30"
        );
        for bad in [
            "Asia/Urumqi",
            "Europe/Berlin",
            "8",
            "+8",
            "+25:00",
            "+08:75",
            "",
            "--1:00",
        ] {
            assert!(BureauZone::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
