//! The one rule for text coming in from outside: no control characters other than tab, newline
//! and carriage return. PostgreSQL cannot store U+0000 in `text` (SQLite can), and the other
//! controls are never meaningful in names, addresses or notes; refusing them at the edge keeps
//! both backends identical. Pure functions, used by the HTTP extractors.

/// A character that is refused in any text field: a Unicode control (`Cc`: U+0000–U+001F,
/// U+007F–U+009F) other than tab, newline and carriage return.
pub fn is_forbidden(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// The first forbidden character of `s`, if any.
pub fn find_forbidden(s: &str) -> Option<char> {
    s.chars().find(|&c| is_forbidden(c))
}

/// How a forbidden character is named in error messages (`U+0000`).
pub fn describe(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

/// The first forbidden character inside any string (keys included) of a JSON document, with the
/// byte offset of the string that holds it. Escapes (`\u0000`, `\b`, `\f`) are decoded; raw
/// characters are checked as they are. `json` must be valid JSON (parse it first): on invalid
/// input the answer is meaningless but the scan never panics.
pub fn json_find_forbidden(json: &[u8]) -> Option<(usize, char)> {
    let mut i = 0;
    let mut string_start = None;
    while i < json.len() {
        let b = json[i];
        match string_start {
            None => {
                if b == b'"' {
                    string_start = Some(i);
                }
                i += 1;
            }
            Some(start) => match b {
                b'"' => {
                    string_start = None;
                    i += 1;
                }
                b'\\' => {
                    let esc = json.get(i + 1).copied().unwrap_or(b'"');
                    match esc {
                        b'b' => return Some((start, '\u{8}')),
                        b'f' => return Some((start, '\u{c}')),
                        b'u' => {
                            let code = json
                                .get(i + 2..i + 6)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok());
                            // Controls are all in the BMP below U+00A0: surrogates never are.
                            if let Some(c) = code.and_then(char::from_u32) {
                                if is_forbidden(c) {
                                    return Some((start, c));
                                }
                            }
                            i += 6;
                        }
                        _ => i += 2,
                    }
                }
                // DEL, and raw bytes below 0x20 (invalid JSON, refused by any parser anyway).
                0x00..=0x1f | 0x7f if is_forbidden(b as char) => return Some((start, b as char)),
                // C1 controls U+0080–U+009F are 0xC2 0x80..=0x9F in UTF-8.
                0xc2 if matches!(json.get(i + 1), Some(0x80..=0x9f)) => {
                    let c = char::from_u32(u32::from(json[i + 1])).unwrap_or('\0');
                    return Some((start, c));
                }
                _ => i += 1,
            },
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_newline_cr_pass_other_controls_do_not() {
        assert_eq!(find_forbidden("老王\t饭店\r\n二楼"), None);
        assert_eq!(find_forbidden("a\0b"), Some('\0'));
        assert_eq!(find_forbidden("a\u{1b}[31m"), Some('\u{1b}'));
        assert_eq!(find_forbidden("\u{7f}"), Some('\u{7f}'));
        assert_eq!(find_forbidden("\u{85}"), Some('\u{85}'));
        // Not controls: format characters and the replacement character stay allowed.
        assert_eq!(find_forbidden("\u{a0}\u{200b}\u{fffd}"), None);
        assert_eq!(describe('\0'), "U+0000");
    }

    #[test]
    fn json_escapes_and_raw_characters_are_found() {
        let find = |s: &str| json_find_forbidden(s.as_bytes()).map(|(_, c)| c);
        assert_eq!(find(r#"{"username":"a\u0000b"}"#), Some('\0'));
        assert_eq!(find(r#"{"a\u0001":1}"#), Some('\u{1}'));
        assert_eq!(find(r#"["\b"]"#), Some('\u{8}'));
        assert_eq!(find(r#"["\f"]"#), Some('\u{c}'));
        assert_eq!(find(r#"["\u007F"]"#), Some('\u{7f}'));
        assert_eq!(find("[\"\u{7f}\"]"), Some('\u{7f}'));
        assert_eq!(find("[\"\u{9f}\"]"), Some('\u{9f}'));
        assert_eq!(find(r#"["\u0085"]"#), Some('\u{85}'));
    }

    #[test]
    fn json_without_controls_passes() {
        let find = |s: &str| json_find_forbidden(s.as_bytes());
        assert_eq!(
            find(r#"{"a":"\t\n\r\"\\\/ 老王 \u00e9 \ud83d\ude00","n":[1,2.5e3,true,null]}"#),
            None
        );
        // An escaped backslash followed by "u0000" is text, not an escape.
        assert_eq!(find(r#"{"path":"C:\\u0000"}"#), None);
        // "é" is 0xC3 0xA9 and "Ā" 0xC4 0x80: neither is a C1 control.
        assert_eq!(find("[\"é\u{100}\"]"), None);
        assert_eq!(find(""), None);
        // Truncated input never panics.
        assert_eq!(find(r#"["\u00"#), None);
        assert_eq!(find("[\"\\"), None);
    }

    #[test]
    fn json_scan_agrees_with_parsing_on_generated_strings() {
        // Every code point below U+0100 and a few beyond, as escape and as raw character.
        for cp in (0u32..0x100).chain([0x2028, 0xfeff, 0x1f600]) {
            let c = char::from_u32(cp).unwrap();
            let escaped = serde_json::to_string(&c.to_string()).unwrap();
            let doc = format!("{{\"k\":{escaped}}}");
            let parsed: serde_json::Value = serde_json::from_str(&doc).unwrap();
            let expect = find_forbidden(parsed["k"].as_str().unwrap());
            assert_eq!(
                json_find_forbidden(doc.as_bytes()).map(|(_, c)| c),
                expect,
                "{cp:#x}"
            );
            let unicode_escape = format!("{{\"k\":\"\\u{cp:04x}\"}}");
            if cp < 0x10000 {
                assert_eq!(
                    json_find_forbidden(unicode_escape.as_bytes()).map(|(_, c)| c),
                    expect,
                    "{cp:#x}"
                );
            }
        }
    }
}
