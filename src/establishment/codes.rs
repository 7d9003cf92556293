//! Identifiers on Chinese food-business records: the 统一社会信用代码 (USCC), the
//! 食品经营许可证 / 备案 number, and a loose phone-number check.
//!
//! Input is typed by hand or pasted from Excel/WPS. Before checking it we trim it, upper-case
//! it, and fold full-width characters (`９１３５…`, `（０２２）`, typed with a Chinese IME) to
//! ASCII. We check only what we are sure of. Where a rule is known to have exceptions, the
//! input gets a warning rather than a refusal.
//!
//! Pure logic, no I/O.

use std::fmt;

/// The 31 characters a USCC may contain. I, O, S, V and Z are left out because they are easily
/// confused with 1, 0, 5, U and 2. A character's value is its index in this string.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// `3^i mod 31` for i = 0..17 (GB 32100-2015).
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Folds a full-width ASCII variant (U+FF01–U+FF5E) and the ideographic space to plain ASCII.
/// Anything else passes through unchanged.
fn fold_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Trim, fold full-width characters, upper-case. The normal form that codes are stored in.
pub(crate) fn normalise_code(s: &str) -> String {
    s.chars()
        .map(fold_width)
        .collect::<String>()
        .trim()
        .to_ascii_uppercase()
}

fn uscc_value(c: char) -> Option<u32> {
    let c = u8::try_from(c.to_ascii_uppercase()).ok()?;
    USCC_ALPHABET
        .iter()
        .position(|&a| a == c)
        .and_then(|i| u32::try_from(i).ok())
}

/// 统一社会信用代码 (unified social credit code, GB 32100-2015): 18 characters. The 18th is a
/// mod-31 check character over the first 17.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Uscc(String);

impl Uscc {
    /// Parses a USCC.
    ///
    /// The input is trimmed and upper-cased first. Full-width characters are folded to ASCII.
    /// - `Ok((code, None))`: the code is valid.
    /// - `Ok((code, Some(warning)))`: the shape is right and only the check character fails.
    ///   Some early pilot codes really do fail it, so the code is kept and a person confirms
    ///   it. Refusing it would lock those businesses out of the registry.
    /// - `Err(message)`: the shape is wrong, that is, not 18 characters, or characters outside
    ///   `0-9A-HJ-NPQRTUWXY`. That is a typo, not a pilot code.
    pub fn parse(s: &str) -> Result<(Uscc, Option<String>), String> {
        let code = normalise_code(s);
        let len = code.chars().count();
        if len != 18 {
            return Err(format!(
                "统一社会信用代码 (USCC) must be 18 characters, got {len}"
            ));
        }
        if let Some(c) = code.chars().find(|&c| uscc_value(c).is_none()) {
            let hint = match c {
                'I' | 'O' | 'S' | 'V' | 'Z' => {
                    " (I, O, S, V and Z are never used; did you mean 1, 0, 5, U or 2?)"
                }
                _ => "",
            };
            return Err(format!(
                "统一社会信用代码 (USCC) contains {c:?}, which is not allowed; only 0-9 and \
                 A-Z without I, O, S, V, Z are used{hint}"
            ));
        }
        let (first17, last) = code.split_at(17);
        let expected = Uscc::check_char(first17);
        let actual = last.chars().next();
        let warning = match (expected, actual) {
            (Some(e), Some(a)) if e == a => None,
            (Some(e), Some(a)) => Some(format!(
                "统一社会信用代码 (USCC) check character is {a:?} but should be {e:?}; stored \
                 anyway because some early pilot codes fail the check, please verify it \
                 against the business licence"
            )),
            // Unreachable after the shape checks above. If it is reached anyway, we warn
            // instead of panicking.
            _ => Some("统一社会信用代码 (USCC) check character could not be verified".to_string()),
        };
        Ok((Uscc(code), warning))
    }

    /// The normalised (upper-case, trimmed) code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The expected 18th character for the first 17 characters. Returns `None` unless the
    /// input is exactly 17 characters from the USCC alphabet. Lower case is accepted.
    ///
    /// `check = alphabet[(31 − Σ vᵢ·wᵢ mod 31) mod 31]`, with weights `wᵢ = 3^i mod 31`.
    pub fn check_char(first17: &str) -> Option<char> {
        if first17.chars().count() != 17 {
            return None;
        }
        let mut sum = 0u32;
        for (c, w) in first17.chars().zip(USCC_WEIGHTS) {
            sum += uscc_value(c)? * w;
        }
        let idx = (31 - sum % 31) % 31;
        USCC_ALPHABET
            .get(usize::try_from(idx).ok()?)
            .map(|&b| char::from(b))
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which document a [`LicenseNo`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenseKind {
    /// 食品经营许可证 (food business licence), `JY…`.
    Licence,
    /// 仅销售预包装食品备案 (filing for prepackaged-food-only sellers, since 2023-12-01), `YB…`.
    Filing,
}

/// 食品经营许可证编号 (`JY` + 14 digits), or a 仅销售预包装食品备案编号 (`YB` + 14 digits).
/// Businesses that sell only prepackaged food have filed (备案) instead of holding a licence
/// since 2023-12-01, so both are accepted where a licence number is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LicenseNo(String);

impl LicenseNo {
    /// Parses a licence or filing number. It is trimmed, upper-cased and folded from full
    /// width first. Only the shape is checked: the check-digit algorithm is not published,
    /// and guessing it would refuse real licences.
    pub fn parse(s: &str) -> Result<LicenseNo, String> {
        let code = normalise_code(s);
        let (prefix, digits) = match code.char_indices().nth(2) {
            Some((i, _)) => code.split_at(i),
            None => (code.as_str(), ""),
        };
        let shape =
            "must be JY (食品经营许可证) or YB (仅销售预包装食品备案) followed by 14 digits";
        match prefix {
            "JY" | "YB" => {}
            "SC" => {
                return Err(format!(
                    "{code} is a food production licence number (食品生产许可证, SC…), not a \
                     food business licence (食品经营许可证, JY…); the business licence {shape}"
                ))
            }
            _ => return Err(format!("licence number {code:?} {shape}")),
        }
        let n = digits.chars().count();
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "licence number {code:?} contains non-digits after {prefix}; it {shape}"
            ));
        }
        if n != 14 {
            return Err(format!(
                "licence number {code:?} has {n} digits after {prefix}; it {shape}"
            ));
        }
        Ok(LicenseNo(code))
    }

    /// The normalised (upper-case, trimmed) number.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Licence (`JY`) or filing (`YB`). `parse` admits nothing else.
    pub fn kind(&self) -> LicenseKind {
        if self.0.starts_with("YB") {
            LicenseKind::Filing
        } else {
            LicenseKind::Licence
        }
    }
}

impl fmt::Display for LicenseNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A loose check that a contact number looks like a mainland Chinese phone number. It catches
/// typos and swapped fields. It does not prove the number exists.
///
/// Accepted, with spaces ignored and full-width characters folded:
/// - mobile: `1[3-9]` + 9 digits, with an optional `+86`/`86`/`0086` prefix, and hyphens
///   between groups as in `138-1234-5678`;
/// - landline: an optional area code `0xx`/`0xxx` (or `(0xx)`) with an optional `-`, then a
///   7–8 digit local number starting 2–9, then an optional extension `-NNN` or `转NNN`
///   (1–6 digits);
/// - `400`/`800` service numbers (10 digits, hyphens allowed), which chain outlets list.
pub fn is_plausible_phone(s: &str) -> bool {
    let t: Vec<char> = s
        .chars()
        .map(fold_width)
        .filter(|c| !c.is_whitespace())
        .collect();
    is_mobile(&t) || is_landline(&t) || is_service_number(&t)
}

fn all_digits(s: &[char]) -> bool {
    s.iter().all(char::is_ascii_digit)
}

/// Digits in at most three hyphen-separated, non-empty groups. Returns the digits.
fn hyphenated_digits(s: &[char]) -> Option<Vec<char>> {
    let groups: Vec<&[char]> = s.split(|&c| c == '-').collect();
    if groups.len() > 3 || groups.iter().any(|g| g.is_empty() || !all_digits(g)) {
        return None;
    }
    Some(groups.concat())
}

fn is_mobile(t: &[char]) -> bool {
    let rest = ["+86", "0086", "86"]
        .iter()
        .find_map(|p| {
            let p: Vec<char> = p.chars().collect();
            t.strip_prefix(p.as_slice())
        })
        .map(|r| r.strip_prefix(&['-']).unwrap_or(r))
        .unwrap_or(t);
    match hyphenated_digits(rest) {
        Some(d) => d.len() == 11 && d[0] == '1' && ('3'..='9').contains(&d[1]),
        None => false,
    }
}

fn is_landline(t: &[char]) -> bool {
    let is_area = |a: &[char]| (3..=4).contains(&a.len()) && a[0] == '0' && all_digits(a);
    // "(022)12345678"
    if let Some(inner) = t.strip_prefix(&['(']) {
        if let Some(close) = inner.iter().position(|&c| c == ')') {
            let (area, rest) = inner.split_at(close);
            let rest = &rest[1..];
            let rest = rest.strip_prefix(&['-']).unwrap_or(rest);
            return is_area(area) && is_local_with_extension(rest);
        }
        return false;
    }
    // No area code, or a 3- or 4-digit one (010, 022, 0xxx). A bare run of digits is
    // ambiguous, so try both lengths.
    if is_local_with_extension(t) {
        return true;
    }
    (3..=4).any(|n| {
        t.len() > n && is_area(&t[..n]) && {
            let rest = &t[n..];
            is_local_with_extension(rest.strip_prefix(&['-']).unwrap_or(rest))
        }
    })
}

fn is_local_with_extension(t: &[char]) -> bool {
    let n = t.iter().take_while(|c| c.is_ascii_digit()).count();
    if !(7..=8).contains(&n) || !('2'..='9').contains(&t[0]) {
        return false;
    }
    match t[n..].split_first() {
        None => true,
        Some((&sep, ext)) => {
            (sep == '-' || sep == '转') && (1..=6).contains(&ext.len()) && all_digits(ext)
        }
    }
}

fn is_service_number(t: &[char]) -> bool {
    match hyphenated_digits(t) {
        Some(d) => {
            d.len() == 10 && (d.starts_with(&['4', '0', '0']) || d.starts_with(&['8', '0', '0']))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Published codes that pass the check. The first is the worked example that circulates
    /// with GB 32100-2015. The others were taken from public business-licence records and
    /// verified with the algorithm.
    const VALID: [&str; 6] = [
        "91350100M000100Y43",
        "91110000802100433B",
        "914403001922038216",
        "91440300708461136T",
        "91330100716105852F",
        "91120000103071899G",
    ];

    #[test]
    fn weights_are_powers_of_three_mod_31() {
        let mut w = 1u32;
        for expected in USCC_WEIGHTS {
            assert_eq!(w, expected);
            w = w * 3 % 31;
        }
    }

    #[test]
    fn published_codes_are_valid() {
        for c in VALID {
            let (code, warning) = Uscc::parse(c).expect("shape ok");
            assert_eq!(warning, None, "{c}");
            assert_eq!(code.as_str(), c);
            assert_eq!(code.to_string(), c);
            let last = c.chars().last();
            assert_eq!(Uscc::check_char(&c[..17]), last, "{c}");
        }
    }

    #[test]
    fn wrong_check_char_is_a_warning_not_an_error() {
        // 91350100M000100Y43 with the last character changed.
        let (code, warning) = Uscc::parse("91350100M000100Y44").expect("shape ok");
        assert_eq!(code.as_str(), "91350100M000100Y44");
        let w = warning.expect("warning");
        assert!(w.contains("'4'") && w.contains("'3'"), "{w}");
        // A swapped pair of characters is caught by the check too.
        let (_, warning) = Uscc::parse("91350100M000100Y34").expect("shape ok");
        assert!(warning.is_some());
    }

    #[test]
    fn input_is_normalised() {
        let (code, warning) = Uscc::parse("  91350100m000100y43\t").expect("ok");
        assert_eq!(code.as_str(), "91350100M000100Y43");
        assert_eq!(warning, None);
        // Full-width, as typed with a Chinese IME, with an ideographic space.
        let (code, warning) =
            Uscc::parse("９１３５０１００Ｍ０００１００Ｙ４３\u{3000}").expect("ok");
        assert_eq!(code.as_str(), "91350100M000100Y43");
        assert_eq!(warning, None);
        assert_eq!(Uscc::check_char("91350100m000100y4"), Some('3'));
    }

    #[test]
    fn excluded_letters_rejected() {
        for bad in ['I', 'O', 'S', 'V', 'Z'] {
            let s = format!("91350100{bad}000100Y43");
            let err = Uscc::parse(&s).expect_err("must reject");
            assert!(err.contains("did you mean"), "{err}");
            let lower = s.to_lowercase();
            assert!(Uscc::parse(&lower).is_err(), "{lower}");
        }
        assert!(Uscc::parse("91350100M000100Y4-").is_err());
        assert!(Uscc::parse("91350100M000100Y4统").is_err());
        assert_eq!(Uscc::check_char("91350100O00010043"), None);
    }

    #[test]
    fn wrong_length_rejected() {
        for s in [
            "",
            "91350100M000100Y4",
            "91350100M000100Y433",
            "9135 0100 M000 100Y43",
        ] {
            assert!(Uscc::parse(s).is_err(), "{s:?}");
        }
        assert!(Uscc::parse("91350100M000100Y4")
            .expect_err("short")
            .contains("got 17"));
        assert_eq!(Uscc::check_char("9135"), None);
        assert_eq!(Uscc::check_char("91350100M000100Y43"), None);
    }

    #[test]
    fn licence_shapes() {
        let l = LicenseNo::parse("JY21101050012345").expect("ok");
        assert_eq!(l.as_str(), "JY21101050012345");
        assert_eq!(l.kind(), LicenseKind::Licence);
        let l = LicenseNo::parse(" jy21101050012345 ").expect("ok");
        assert_eq!(l.as_str(), "JY21101050012345");
        assert_eq!(l.to_string(), "JY21101050012345");
        let f = LicenseNo::parse("YB11201160000123").expect("ok");
        assert_eq!(f.kind(), LicenseKind::Filing);
        let l = LicenseNo::parse("ＪＹ２１１０１０５００１２３４５").expect("full width ok");
        assert_eq!(l.as_str(), "JY21101050012345");

        let short = LicenseNo::parse("JY2110105001234").expect_err("too short");
        assert!(short.contains("13 digits"), "{short}");
        assert!(LicenseNo::parse("JY211010500123456").is_err());
        assert!(LicenseNo::parse("JY2110105001234X").is_err());
        assert!(LicenseNo::parse("YB1120116000012").is_err());
        let sc = LicenseNo::parse("SC10612010500123").expect_err("production licence");
        assert!(
            sc.contains("production licence") && sc.contains("not"),
            "{sc}"
        );
        assert!(LicenseNo::parse("sc10612010500123").is_err());
        for bad in [
            "",
            "J",
            "JY",
            "21101050012345",
            "XK21101050012345",
            "津餐证字2015第120000-000001号",
        ] {
            assert!(LicenseNo::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn phones() {
        for ok in [
            "13812345678",
            "138 1234 5678",
            "138-1234-5678",
            "+8613812345678",
            "+86 138 1234 5678",
            "8613812345678",
            "008613812345678",
            "19912345678",
            "１３８１２３４５６７８",
            "022-23456789",
            "02223456789",
            "022 2345 6789",
            "(022)23456789",
            "（０２２）２３４５６７８９",
            "010-6512345",
            "0317-2345678",
            "23456789",
            "2345678",
            "022-23456789-123",
            "022-23456789转8001",
            "400-123-4567",
            "8001234567",
        ] {
            assert!(is_plausible_phone(ok), "{ok:?} should pass");
        }
        for bad in [
            "",
            "12812345678",    // 12x is not a mobile prefix
            "1381234567",     // 10 digits
            "138123456789",   // 12 digits
            "+8712812345678", // wrong country
            "abc",
            "022-123",       // local part too short
            "022-234567",    // 6-digit local number
            "234567890",     // 9-digit local number
            "022-03456789",  // local numbers do not start with 0
            "022-23456789-", // empty extension
            "022-23456789转",
            "022-23456789-1234567", // extension too long
            "(022-23456789",
            "(22)23456789", // area codes start with 0
            "13812345678a",
            "138--12345678",
            "500-123-4567",
            "电话",
        ] {
            assert!(!is_plausible_phone(bad), "{bad:?} should fail");
        }
    }

    fn alphabet_char() -> impl Strategy<Value = char> {
        (0..31usize).prop_map(|i| char::from(USCC_ALPHABET[i]))
    }

    proptest! {
        #[test]
        fn prefix_plus_check_char_is_valid_and_others_warn(
            prefix in proptest::collection::vec(alphabet_char(), 17),
            other in alphabet_char(),
        ) {
            let first17: String = prefix.into_iter().collect();
            let check = Uscc::check_char(&first17);
            prop_assert!(check.is_some());
            let check = check.unwrap_or('?');
            let (code, warning) = Uscc::parse(&format!("{first17}{check}"))
                .map_err(TestCaseError::fail)?;
            prop_assert_eq!(code.as_str(), format!("{first17}{check}"));
            prop_assert_eq!(warning, None);
            let lower = format!("{first17}{check}").to_lowercase();
            prop_assert_eq!(Uscc::parse(&lower).map(|(_, w)| w.is_none()), Ok(true));

            let (_, warning) = Uscc::parse(&format!("{first17}{other}"))
                .map_err(TestCaseError::fail)?;
            prop_assert_eq!(warning.is_some(), other != check);
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,24}") {
            let _ = Uscc::parse(&s);
            let _ = LicenseNo::parse(&s);
            let _ = is_plausible_phone(&s);
            let _ = Uscc::check_char(&s);
        }

        #[test]
        fn any_jy_or_yb_with_14_digits_parses(prefix in "(JY|YB|jy|yb)", digits in "[0-9]{14}") {
            let l = LicenseNo::parse(&format!("{prefix}{digits}"));
            prop_assert!(l.is_ok());
        }

        #[test]
        fn any_mobile_is_plausible(second in "[3-9]", rest in "[0-9]{9}") {
            let mobile = format!("1{second}{rest}");
            prop_assert!(is_plausible_phone(&mobile));
            let prefixed = format!("+86{}", mobile);
            prop_assert!(is_plausible_phone(&prefixed));
        }
    }
}
