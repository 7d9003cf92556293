//! Formula (CSV) injection, by the OWASP rule: a cell whose text begins with `=`, `+`, `-`, `@`,
//! a tab or a carriage return may be taken as a formula; such text is written with a leading
//! apostrophe so the spreadsheet shows it as text.

use std::borrow::Cow;

/// Whether a spreadsheet may read `text` as a formula (OWASP's trigger characters, also after
/// leading tabs, carriage returns or spaces, which some programs skip).
pub fn is_formula_like(text: &str) -> bool {
    let rest = text.trim_start_matches([' ', '\t', '\r', '\n']);
    starts_with_trigger(rest) || (rest.len() != text.len() && text.starts_with(['\t', '\r']))
}

fn starts_with_trigger(s: &str) -> bool {
    s.starts_with(['=', '+', '-', '@'])
}

/// The text as every CSV/XLSX export must write it: formula-like text gets a leading `'`;
/// everything else is unchanged (and not copied).
pub fn neutralise(text: &str) -> Cow<'_, str> {
    if is_formula_like(text) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_triggers_are_neutralised() {
        for bad in [
            "=HYPERLINK(\"http://x\",\"点我\")",
            "+1+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(A1:A9)",
            "\t=1+1",
            "\r=1+1",
            "  =1+1",
            "\tplain",
        ] {
            assert!(is_formula_like(bad), "{bad:?}");
            let n = neutralise(bad);
            assert!(n.starts_with('\''), "{bad:?} -> {n:?}");
            assert_eq!(&n[1..], bad, "the text itself is kept");
        }
    }

    #[test]
    fn ordinary_text_is_untouched() {
        for ok in [
            "老王烧烤",
            "宝坻区 钰华街道 1-3 号",
            "",
            "a=b",
            "13800000000",
            "JY11201000000001",
        ] {
            assert!(!is_formula_like(ok), "{ok:?}");
            assert!(matches!(neutralise(ok), Cow::Borrowed(_)));
        }
    }
}
