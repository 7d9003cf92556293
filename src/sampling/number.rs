//! 抽样单编号 (sample number): either a national-system number the sampler copies from the
//! national platform, or one this system generates from a configured prefix.
//!
//! - **National**: `^[A-Z]{2}\d{17}$` (e.g. `DC26110000123456789`: 2 letters, 2-digit year,
//!   6-digit region, serial). Opaque beyond that loose shape. Input is trimmed, folded from
//!   full width and upper-cased first; the normal form is what is stored and compared.
//! - **Generated**: `{PREFIX}-{YYYYMMDD}-{SEQ}`, e.g. `FC-20260302-0007`. The prefix is 1–12
//!   upper-case letters or digits starting with a letter; `SEQ` is the next sequence number
//!   (from 1), zero-padded to 4 digits and longer without padding past 9999. The hyphens make
//!   a generated number unable to look like a national one, so the two never collide; the
//!   caller keeps the sequence (per prefix and date, or global: both give unique numbers).

use chrono::{Datelike, NaiveDate};

/// Which kind of 抽样单编号 a string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    National,
    Generated,
}

/// Why a number, prefix or sequence is refused. Each has a stable code (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("抽样单编号 {0:?} is not a national-system number (2 letters and 17 digits, e.g. DC26110000123456789)")]
    NotNational(String),
    #[error("the sample-number prefix {0:?} must be 1 to {MAX_PREFIX_CHARS} upper-case letters or digits, starting with a letter")]
    BadPrefix(String),
    #[error("sample-number sequences start at 1")]
    ZeroSequence,
    #[error("{0} cannot be written as an 8-digit date")]
    BadDate(NaiveDate),
}

impl NumberError {
    pub fn code(&self) -> &'static str {
        match self {
            NumberError::NotNational(_) => "invalid_sampling_no",
            NumberError::BadPrefix(_) => "invalid_sampling_no_prefix",
            NumberError::ZeroSequence | NumberError::BadDate(_) => "invalid_sampling_no_sequence",
        }
    }
}

/// Longest configured prefix.
pub const MAX_PREFIX_CHARS: usize = 12;

/// A national-system number in its normal form.
pub fn parse_national(s: &str) -> Result<String, NumberError> {
    let code = crate::establishment::codes::normalise_code(s);
    let b = code.as_bytes();
    let ok = b.len() == 19
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..].iter().all(u8::is_ascii_digit);
    if ok {
        Ok(code)
    } else {
        Err(NumberError::NotNational(s.trim().to_string()))
    }
}

/// A checked prefix for generated numbers (from configuration).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Prefix(String);

impl Prefix {
    pub fn parse(s: &str) -> Result<Prefix, NumberError> {
        let b = s.as_bytes();
        let ok = (1..=MAX_PREFIX_CHARS).contains(&b.len())
            && b[0].is_ascii_uppercase()
            && b.iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if ok {
            Ok(Prefix(s.to_string()))
        } else {
            Err(NumberError::BadPrefix(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The number for sequence `seq` on `date` (the bureau's date of the submission).
pub fn generate(prefix: &Prefix, date: NaiveDate, seq: u32) -> Result<String, NumberError> {
    if seq == 0 {
        return Err(NumberError::ZeroSequence);
    }
    if !(1000..=9999).contains(&date.year()) {
        return Err(NumberError::BadDate(date));
    }
    Ok(format!(
        "{}-{}-{seq:04}",
        prefix.as_str(),
        date.format("%Y%m%d")
    ))
}

/// The parts of a generated number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub prefix: Prefix,
    pub date: NaiveDate,
    pub seq: u32,
}

/// Reads a generated number back (exactly what [`generate`] writes: no leading zeros past 4
/// digits, so each number has one spelling).
pub fn parse_generated(s: &str) -> Option<Generated> {
    let mut parts = s.split('-');
    let (p, d, n) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let prefix = Prefix::parse(p).ok()?;
    if d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let date = NaiveDate::parse_from_str(d, "%Y%m%d").ok()?;
    let canonical_width = n.len() == 4 || (n.len() > 4 && !n.starts_with('0'));
    if !canonical_width || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seq: u32 = n.parse().ok().filter(|&q| q > 0)?;
    Some(Generated { prefix, date, seq })
}

/// Which kind `s` is, if either.
pub fn classify(s: &str) -> Option<Kind> {
    if parse_national(s).is_ok() {
        Some(Kind::National)
    } else if parse_generated(s.trim()).is_some() {
        Some(Kind::Generated)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn national_numbers() {
        assert_eq!(
            parse_national(" dc26110000123456789 ").unwrap(),
            "DC26110000123456789"
        );
        // Full width, as a Chinese IME types it.
        assert_eq!(
            parse_national("ＤＣ26110000123456789").unwrap(),
            "DC26110000123456789"
        );
        for bad in [
            "",
            "DC2611000012345678",
            "DC261100001234567890",
            "D126110000123456789",
            "DC2611000012345678X",
            "DC-6110000123456789",
        ] {
            let e = parse_national(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_sampling_no");
        }
        assert_eq!(classify("DC26110000123456789"), Some(Kind::National));
        assert_eq!(classify("FC-20260302-0007"), Some(Kind::Generated));
        assert_eq!(classify("FC-20260302-007"), None);
    }

    #[test]
    fn generated_numbers() {
        let p = Prefix::parse("FC").unwrap();
        assert_eq!(
            generate(&p, d("2026-03-02"), 7).unwrap(),
            "FC-20260302-0007"
        );
        assert_eq!(
            generate(&p, d("2026-03-02"), 12345).unwrap(),
            "FC-20260302-12345"
        );
        assert_eq!(
            generate(&p, d("2026-03-02"), 0),
            Err(NumberError::ZeroSequence)
        );
        for bad in ["", "fc", "1A", "FC-", "ABCDEFGHIJKLM", "食检"] {
            assert!(Prefix::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_generated("FC-20260302-00007"), None);
        assert_eq!(parse_generated("FC-20260230-0007"), None);
        assert_eq!(parse_generated("FC-20260302-0000"), None);
        assert_eq!(parse_generated("FC-20260302-0007-1"), None);
    }

    proptest! {
        /// Generated numbers read back to their parts, never look national, and distinct
        /// inputs give distinct numbers.
        #[test]
        fn generated_round_trip_and_never_national(
            prefix in "[A-Z][A-Z0-9]{0,11}",
            offset in 0u64..40_000,
            seq in 1u32..=u32::MAX,
            seq2 in 1u32..=u32::MAX,
        ) {
            let p = Prefix::parse(&prefix).unwrap();
            let date = d("2000-01-01").checked_add_days(chrono::Days::new(offset)).unwrap();
            let n = generate(&p, date, seq).unwrap();
            prop_assert_eq!(parse_generated(&n), Some(Generated { prefix: p.clone(), date, seq }));
            prop_assert!(parse_national(&n).is_err());
            prop_assert_eq!(classify(&n), Some(Kind::Generated));
            let m = generate(&p, date, seq2).unwrap();
            prop_assert_eq!(n == m, seq == seq2);
        }

        /// Exactly the national shape is accepted, in its normal form.
        #[test]
        fn national_shape(letters in "[A-Za-z]{2}", digits in "[0-9]{14,20}") {
            let s = format!("{letters}{digits}");
            let got = parse_national(&s);
            prop_assert_eq!(got.is_ok(), digits.len() == 17);
            if let Ok(n) = got {
                prop_assert_eq!(n, s.to_ascii_uppercase());
            }
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,30}") {
            let _ = parse_national(&s);
            let _ = parse_generated(&s);
            let _ = classify(&s);
        }
    }
}
