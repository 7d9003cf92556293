//! Lab results (检验结果): test items, their limits and verdicts, and the overall 合格/不合格.
//!
//! The lab states a verdict per item and overall. We read each item's value and limit where we
//! can and judge the item ourselves ([`judge`]); where that disagrees with the lab's item
//! verdict the item is flagged for a reviewer, not refused (our reading of a limit is simpler
//! than a lab's: sampling plans such as `n=5,c=2,m=100,M=1000` are not judged at all). The
//! overall verdict follows from the lab's item verdicts (不合格 when any item is 不合格), and a
//! stated overall verdict that does not is refused ([`check`]).
//!
//! Value forms: a number (`0.03`, `1.2×10^3`, units after it ignored), `<0.01` (below the
//! quantification limit), `未检出`/`ND`, `检出`, `阴性`, `阳性`; anything else is kept as text.
//! Limit forms: `≤0.05`, `<10`, `≥60`, `>0`, ranges `0.5~1.5` (also `～`, `-`, `—`, `至`),
//! `不得检出`, `阴性`; blank or `/` means no limit; anything else (a plain number included,
//! which could be a minimum or a maximum) is text and not judged.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

coded_enum! {
    /// 合格 / 不合格, of one item or of the sample.
    Verdict {
        Qualified = "qualified", "合格";
        Unqualified = "unqualified", "不合格";
    }
}

/// A test value as read from the lab's text.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    /// `<x`: below the quantification limit `x`.
    Below(f64),
    /// 未检出 / ND.
    NotDetected,
    /// 检出.
    Detected,
    /// 阴性.
    Negative,
    /// 阳性.
    Positive,
    Text(String),
}

/// A limit as read from the lab's text.
#[derive(Debug, Clone, PartialEq)]
pub enum Limit {
    /// No limit (blank or `/`): risk-monitoring items often have none.
    None,
    AtMost {
        max: f64,
        inclusive: bool,
    },
    AtLeast {
        min: f64,
        inclusive: bool,
    },
    /// Both ends inclusive.
    Range {
        lo: f64,
        hi: f64,
    },
    /// 不得检出.
    NotDetected,
    /// 阴性.
    Negative,
    Text(String),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::None => f.write_str("/"),
            Limit::AtMost { max, inclusive } => {
                write!(f, "{}{max}", if *inclusive { "≤" } else { "<" })
            }
            Limit::AtLeast { min, inclusive } => {
                write!(f, "{}{min}", if *inclusive { "≥" } else { ">" })
            }
            Limit::Range { lo, hi } => write!(f, "{lo}~{hi}"),
            Limit::NotDetected => f.write_str("不得检出"),
            Limit::Negative => f.write_str("阴性"),
            Limit::Text(t) => f.write_str(t),
        }
    }
}

const SUPERSCRIPTS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];

/// A non-negative decimal at the start of `s` (after full-width folding), with an optional
/// `×10^n` / `×10ⁿ` factor; the rest of `s` must hold no digit (a unit, say).
fn leading_number(s: &str) -> Option<(f64, &str)> {
    let s = s.trim_start();
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(s.len(), |(i, _)| i);
    let (num, mut rest) = s.split_at(end);
    if !num.starts_with(|c: char| c.is_ascii_digit()) || num.ends_with('.') {
        return None;
    }
    let mut value: f64 = num.parse().ok()?;
    let trimmed = rest.trim_start();
    if let Some(after) = ['×', 'X', 'x', '*']
        .iter()
        .find_map(|m| trimmed.strip_prefix(*m))
        .and_then(|r| r.trim_start().strip_prefix("10"))
    {
        let after = after.strip_prefix('^').unwrap_or(after);
        let (negative, after) = match after.strip_prefix(['-', '⁻']) {
            Some(r) => (true, r),
            None => (false, after),
        };
        let (mut exp, mut digits, mut used) = (0i32, 0, 0);
        for c in after.chars() {
            let d = c
                .to_digit(10)
                .or_else(|| SUPERSCRIPTS.iter().position(|s| *s == c).map(|p| p as u32));
            match d {
                // Three digits are far past any real exponent; more would overflow.
                Some(d) if digits < 3 => {
                    exp = exp * 10 + d as i32;
                    digits += 1;
                    used += c.len_utf8();
                }
                _ => break,
            }
        }
        if digits == 0 {
            return None;
        }
        // Dividing keeps 5×10^-2 exactly 0.05 (multiplying by 0.01 would not).
        let scale = 10f64.powi(exp);
        value = if negative {
            value / scale
        } else {
            value * scale
        };
        rest = &after[used..];
    }
    // A unit may follow (`mg/kg`, `g/100g`, `%`); anything else (`12 (n=5)`, `1,2`) is not one
    // number.
    let unit_like = match rest.trim_start().chars().next() {
        None => true,
        Some(c) => c.is_alphabetic() || matches!(c, '%' | '/' | '‰' | '°' | '℃'),
    };
    if !unit_like || !value.is_finite() {
        return None;
    }
    Some((value, rest))
}

fn fold(s: &str) -> String {
    crate::establishment::codes::normalise_code(s)
}

/// Reads a test value (see the module doc).
pub fn parse_value(s: &str) -> Value {
    let t = fold(s);
    if t.starts_with("未检出") || t == "ND" || t.starts_with("ND ") || t.starts_with("ND(") {
        return Value::NotDetected;
    }
    if t == "NOT DETECTED" || t == "N.D." {
        return Value::NotDetected;
    }
    match t.as_str() {
        "检出" | "DETECTED" => return Value::Detected,
        "阴性" | "NEGATIVE" => return Value::Negative,
        "阳性" | "POSITIVE" => return Value::Positive,
        _ => {}
    }
    if let Some(r) = t.strip_prefix(['<', '＜', '≤']) {
        if let Some((v, _)) = leading_number(r) {
            return Value::Below(v);
        }
    }
    match leading_number(&t) {
        Some((v, _)) => Value::Number(v),
        None => Value::Text(s.trim().to_string()),
    }
}

/// Reads a limit (see the module doc).
pub fn parse_limit(s: &str) -> Limit {
    let t = fold(s);
    match t.as_str() {
        "" | "/" | "—" | "-" | "--" => return Limit::None,
        "阴性" | "NEGATIVE" => return Limit::Negative,
        _ => {}
    }
    if t.starts_with("不得检出") {
        return Limit::NotDetected;
    }
    let ops: [(&str, bool, bool); 9] = [
        // (operator, at most, inclusive); longer spellings first.
        ("<=", true, true),
        (">=", false, true),
        ("≤", true, true),
        ("≦", true, true),
        ("≥", false, true),
        ("≧", false, true),
        ("<", true, false),
        ("＜", true, false),
        (">", false, false),
    ];
    for (op, at_most, inclusive) in ops {
        if let Some((v, _)) = t.strip_prefix(op).and_then(leading_number) {
            return if at_most {
                Limit::AtMost { max: v, inclusive }
            } else {
                Limit::AtLeast { min: v, inclusive }
            };
        }
    }
    for sep in ["~", "～", "—", "–", "-", "至"] {
        if let Some((a, b)) = t.split_once(sep) {
            if let (Some((lo, "")), Some((hi, _))) = (
                leading_number(a).map(|(v, r)| (v, r.trim())),
                leading_number(b),
            ) {
                if lo <= hi {
                    return Limit::Range { lo, hi };
                }
            }
        }
    }
    Limit::Text(s.trim().to_string())
}

fn verdict(ok: bool) -> Verdict {
    if ok {
        Verdict::Qualified
    } else {
        Verdict::Unqualified
    }
}

/// Our verdict for a value against a limit, where the two are comparable; `None` otherwise
/// (no limit, text on either side, a quantification limit that straddles the limit).
pub fn judge(value: &Value, limit: &Limit) -> Option<Verdict> {
    use Value as V;
    match (value, limit) {
        (V::Number(v), Limit::AtMost { max, inclusive }) => {
            Some(verdict(v < max || (*inclusive && v == max)))
        }
        (V::Below(x), Limit::AtMost { max, .. }) => (x <= max).then_some(Verdict::Qualified),
        (V::NotDetected, Limit::AtMost { .. }) => Some(Verdict::Qualified),
        (V::Number(v), Limit::AtLeast { min, inclusive }) => {
            Some(verdict(v > min || (*inclusive && v == min)))
        }
        (V::Below(x), Limit::AtLeast { min, .. }) => (x <= min).then_some(Verdict::Unqualified),
        (V::NotDetected, Limit::AtLeast { min, .. }) => {
            (*min > 0.0).then_some(Verdict::Unqualified)
        }
        (V::Number(v), Limit::Range { lo, hi }) => Some(verdict(lo <= v && v <= hi)),
        (V::Below(x), Limit::Range { lo, .. }) => (x <= lo).then_some(Verdict::Unqualified),
        (V::NotDetected, Limit::Range { lo, .. }) => (*lo > 0.0).then_some(Verdict::Unqualified),
        (V::NotDetected | V::Negative, Limit::NotDetected | Limit::Negative) => {
            Some(Verdict::Qualified)
        }
        (V::Detected | V::Positive, Limit::NotDetected | Limit::Negative) => {
            Some(Verdict::Unqualified)
        }
        // A measured amount is a detection.
        (V::Number(v), Limit::NotDetected) => (*v > 0.0).then_some(Verdict::Unqualified),
        _ => None,
    }
}

/// One test item as the lab reports it (JSON body, or a row of an uploaded file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub struct Item {
    /// 检验项目 (e.g. `毒死蜱`, `菌落总数`).
    pub name: String,
    /// 检验结果 as written (`0.03`, `未检出`, `<10`, `阴性`).
    pub value: String,
    /// 计量单位 (`mg/kg`, `CFU/g`).
    pub unit: Option<String>,
    /// 标准指标 / 限量 as written (`≤0.05`, `不得检出`, `0.5~1.5`); absent: no limit.
    pub limit: Option<String>,
    /// 判定依据 (e.g. `GB 2763-2021`).
    pub standard: Option<String>,
    /// 检验方法 (e.g. `GB 23200.113-2018`).
    pub method: Option<String>,
    /// The lab's 单项判定.
    pub verdict: Verdict,
    /// A microbiological item (微生物项目): no 复检 for its failure.
    #[serde(default)]
    pub microbiological: bool,
}

/// A lab's report as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub struct Report {
    /// 报告编号 (loosely checked: 1–64 characters with a digit, no control characters).
    pub report_no: String,
    pub items: Vec<Item>,
    /// The lab's stated 检验结论.
    pub overall: Verdict,
}

/// Most items in one report.
pub const MAX_ITEMS: usize = 2000;
/// Longest text in an item, in characters.
pub const MAX_ITEM_TEXT_CHARS: usize = 200;
/// Longest report number, in characters.
pub const MAX_REPORT_NO_CHARS: usize = 64;

/// Something wrong with one item (`index` is 0-based in `items`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ItemProblem {
    pub index: usize,
    pub field: String,
    pub code: String,
    pub message: String,
}

/// Why a report is refused (422). Each has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("report number {0:?} does not look like one: 1 to {MAX_REPORT_NO_CHARS} characters with at least one digit")]
    BadReportNo(String),
    #[error("a report needs at least one test item")]
    NoItems,
    #[error("a report has at most {MAX_ITEMS} items")]
    TooManyItems,
    #[error("{}", describe_items(.0))]
    Items(Vec<ItemProblem>),
    #[error("the stated overall verdict {} does not follow from the items: {}", .stated.label_zh(), describe_mismatch(.computed, .failed))]
    OverallMismatch {
        stated: Verdict,
        computed: Verdict,
        /// Names of the items the lab judged 不合格.
        failed: Vec<String>,
    },
}

fn describe_items(problems: &[ItemProblem]) -> String {
    match problems.first() {
        Some(p) => format!(
            "{} item problem(s); the first, item {}: {}",
            problems.len(),
            p.index + 1,
            p.message
        ),
        None => "item problems".to_string(),
    }
}

fn describe_mismatch(computed: &Verdict, failed: &[String]) -> String {
    match computed {
        Verdict::Unqualified => format!("不合格 items: {}", failed.join(", ")),
        Verdict::Qualified => "every item is 合格".to_string(),
    }
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::BadReportNo(_) => "invalid_report_no",
            Refusal::NoItems | Refusal::TooManyItems | Refusal::Items(_) => "invalid_result_items",
            Refusal::OverallMismatch { .. } => "overall_verdict_mismatch",
        }
    }
}

/// One item after checking.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedItem {
    pub value: Value,
    pub limit: Limit,
    /// Our verdict, where value and limit are comparable.
    pub computed: Option<Verdict>,
    /// Our verdict differs from the lab's: flagged for a reviewer.
    pub disagrees: bool,
}

/// An item the lab judged 不合格.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FailedItem {
    pub index: usize,
    pub name: String,
    pub microbiological: bool,
}

/// An accepted report.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub overall: Verdict,
    /// Per item, in report order.
    pub items: Vec<CheckedItem>,
    /// Indexes of the items whose computed verdict disagrees with the lab's.
    pub disagreements: Vec<usize>,
    pub failed: Vec<FailedItem>,
}

/// Whether `s` looks like a report number (see [`Report::report_no`]).
pub fn report_no_looks_valid(s: &str) -> bool {
    let t = s.trim();
    (1..=MAX_REPORT_NO_CHARS).contains(&t.chars().count())
        && t.chars()
            .any(|c| c.is_ascii_digit() || ('０'..='９').contains(&c))
        && crate::text::find_forbidden(t).is_none()
}

/// The overall verdict that follows from item verdicts: 不合格 when any item is.
pub fn overall(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    verdict(verdicts.into_iter().all(|v| v == Verdict::Qualified))
}

fn item_problems(i: usize, item: &Item, out: &mut Vec<ItemProblem>) {
    let mut problem = |field: &str, code: &str, message: String| {
        out.push(ItemProblem {
            index: i,
            field: field.to_string(),
            code: code.to_string(),
            message,
        })
    };
    for (field, v, required) in [
        ("name", Some(&item.name), true),
        ("value", Some(&item.value), true),
        ("unit", item.unit.as_ref(), false),
        ("limit", item.limit.as_ref(), false),
        ("standard", item.standard.as_ref(), false),
        ("method", item.method.as_ref(), false),
    ] {
        let t = v.map_or("", |s| s.trim());
        if required && t.is_empty() {
            problem(field, "required", format!("{field} is required"));
        } else if t.chars().count() > MAX_ITEM_TEXT_CHARS {
            problem(
                field,
                "too_long",
                format!("{field} is longer than {MAX_ITEM_TEXT_CHARS} characters"),
            );
        } else if let Some(c) = crate::text::find_forbidden(t) {
            problem(
                field,
                "forbidden_character",
                format!(
                    "{field} contains the control character {}",
                    crate::text::describe(c)
                ),
            );
        }
    }
}

/// Checks a report (see the module doc): its number's shape, every item's text, each item's
/// verdict where it can be computed (disagreements flagged), and the stated overall verdict.
pub fn check(report: &Report) -> Result<Checked, Refusal> {
    if !report_no_looks_valid(&report.report_no) {
        return Err(Refusal::BadReportNo(report.report_no.trim().to_string()));
    }
    if report.items.is_empty() {
        return Err(Refusal::NoItems);
    }
    if report.items.len() > MAX_ITEMS {
        return Err(Refusal::TooManyItems);
    }
    let mut problems = Vec::new();
    for (i, item) in report.items.iter().enumerate() {
        item_problems(i, item, &mut problems);
    }
    if !problems.is_empty() {
        return Err(Refusal::Items(problems));
    }
    let items: Vec<CheckedItem> = report
        .items
        .iter()
        .map(|item| {
            let value = parse_value(&item.value);
            let limit = parse_limit(item.limit.as_deref().unwrap_or(""));
            let computed = judge(&value, &limit);
            CheckedItem {
                disagrees: computed.is_some_and(|c| c != item.verdict),
                value,
                limit,
                computed,
            }
        })
        .collect();
    let failed: Vec<FailedItem> = report
        .items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.verdict == Verdict::Unqualified)
        .map(|(index, item)| FailedItem {
            index,
            name: item.name.trim().to_string(),
            microbiological: item.microbiological,
        })
        .collect();
    let computed = overall(report.items.iter().map(|i| i.verdict));
    if computed != report.overall {
        return Err(Refusal::OverallMismatch {
            stated: report.overall,
            computed,
            failed: failed.iter().map(|f| f.name.clone()).collect(),
        });
    }
    Ok(Checked {
        overall: computed,
        disagreements: items
            .iter()
            .enumerate()
            .filter(|(_, c)| c.disagrees)
            .map(|(i, _)| i)
            .collect(),
        items,
        failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn item(name: &str, value: &str, limit: &str, verdict: Verdict) -> Item {
        Item {
            name: name.into(),
            value: value.into(),
            unit: Some("mg/kg".into()),
            limit: Some(limit.into()),
            standard: Some("GB 2763-2021".into()),
            method: Some("GB 23200.113-2018".into()),
            verdict,
            microbiological: false,
        }
    }

    #[test]
    fn values() {
        assert_eq!(parse_value("0.03"), Value::Number(0.03));
        assert_eq!(parse_value(" 0.03 mg/kg"), Value::Number(0.03));
        assert_eq!(parse_value("０.０３"), Value::Number(0.03));
        assert_eq!(parse_value("1.2×10^3"), Value::Number(1200.0));
        assert_eq!(parse_value("1.2×10³ CFU/g"), Value::Number(1200.0));
        assert_eq!(parse_value("5x10-2"), Value::Number(0.05));
        assert_eq!(parse_value("<10"), Value::Below(10.0));
        assert_eq!(parse_value("＜0.01"), Value::Below(0.01));
        assert_eq!(parse_value("未检出"), Value::NotDetected);
        assert_eq!(parse_value("未检出（检出限0.01）"), Value::NotDetected);
        assert_eq!(parse_value("nd"), Value::NotDetected);
        assert_eq!(parse_value("检出"), Value::Detected);
        assert_eq!(parse_value("阴性"), Value::Negative);
        assert_eq!(parse_value("阳性"), Value::Positive);
        assert_eq!(parse_value("见附页"), Value::Text("见附页".into()));
        assert_eq!(parse_value("1.2.3"), Value::Text("1.2.3".into()));
        assert_eq!(parse_value("12 (n=5)"), Value::Text("12 (n=5)".into()));
    }

    #[test]
    fn limits() {
        let at_most = |max, inclusive| Limit::AtMost { max, inclusive };
        assert_eq!(parse_limit("≤0.05"), at_most(0.05, true));
        assert_eq!(parse_limit("<=0.05 mg/kg"), at_most(0.05, true));
        assert_eq!(parse_limit("<10"), at_most(10.0, false));
        assert_eq!(parse_limit("＜10"), at_most(10.0, false));
        assert_eq!(parse_limit("≤1.0×10⁴"), at_most(10000.0, true));
        assert_eq!(
            parse_limit("≥60"),
            Limit::AtLeast {
                min: 60.0,
                inclusive: true
            }
        );
        assert_eq!(
            parse_limit(">0"),
            Limit::AtLeast {
                min: 0.0,
                inclusive: false
            }
        );
        for r in [
            "0.5~1.5",
            "0.5～1.5",
            "0.5-1.5",
            "0.5—1.5",
            "0.5至1.5",
            "0.5 ~ 1.5 g/100g",
        ] {
            assert_eq!(parse_limit(r), Limit::Range { lo: 0.5, hi: 1.5 }, "{r}");
        }
        assert_eq!(parse_limit("不得检出"), Limit::NotDetected);
        assert_eq!(parse_limit("不得检出/25g"), Limit::NotDetected);
        assert_eq!(parse_limit("阴性"), Limit::Negative);
        assert_eq!(parse_limit("/"), Limit::None);
        assert_eq!(parse_limit(""), Limit::None);
        assert_eq!(parse_limit("0.05"), Limit::Text("0.05".into()));
        assert_eq!(
            parse_limit("n=5,c=2,m=100,M=1000"),
            Limit::Text("n=5,c=2,m=100,M=1000".into())
        );
        assert_eq!(parse_limit("1.5~0.5"), Limit::Text("1.5~0.5".into()));
    }

    #[test]
    fn judging() {
        let j = |v: &str, l: &str| judge(&parse_value(v), &parse_limit(l));
        use Verdict::*;
        assert_eq!(j("0.05", "≤0.05"), Some(Qualified));
        assert_eq!(j("0.05", "<0.05"), Some(Unqualified));
        assert_eq!(j("0.06", "≤0.05"), Some(Unqualified));
        assert_eq!(j("未检出", "≤0.05"), Some(Qualified));
        assert_eq!(j("<0.01", "≤0.05"), Some(Qualified));
        assert_eq!(j("<0.1", "≤0.05"), None);
        assert_eq!(j("59.9", "≥60"), Some(Unqualified));
        assert_eq!(j("未检出", "≥60"), Some(Unqualified));
        assert_eq!(j("1.0", "0.5~1.5"), Some(Qualified));
        assert_eq!(j("1.6", "0.5~1.5"), Some(Unqualified));
        assert_eq!(j("未检出", "不得检出"), Some(Qualified));
        assert_eq!(j("检出", "不得检出"), Some(Unqualified));
        assert_eq!(j("0.002", "不得检出"), Some(Unqualified));
        assert_eq!(j("阳性", "阴性"), Some(Unqualified));
        assert_eq!(j("阴性", "阴性"), Some(Qualified));
        assert_eq!(j("0.03", "/"), None);
        assert_eq!(j("见附页", "≤0.05"), None);
        assert_eq!(j("120", "n=5,c=2,m=100,M=1000"), None);
    }

    #[test]
    fn reports() {
        use Verdict::*;
        let mut r = Report {
            report_no: "WT2026-0123".into(),
            items: vec![
                item("毒死蜱", "0.03", "≤0.05", Qualified),
                item("克百威", "未检出", "≤0.02", Qualified),
            ],
            overall: Qualified,
        };
        let c = check(&r).unwrap();
        assert_eq!(c.overall, Qualified);
        assert!(c.failed.is_empty() && c.disagreements.is_empty());

        // The lab says 合格 for an item over its limit: flagged, not refused.
        r.items[0].value = "0.08".into();
        let c = check(&r).unwrap();
        assert_eq!(c.disagreements, [0]);
        assert_eq!(c.items[0].computed, Some(Unqualified));

        // An item 不合格 with the overall 合格 is refused, naming the item.
        r.items[0].verdict = Unqualified;
        let e = check(&r).unwrap_err();
        assert_eq!(e.code(), "overall_verdict_mismatch");
        assert!(e.to_string().contains("毒死蜱"), "{e}");
        r.overall = Unqualified;
        let c = check(&r).unwrap();
        assert_eq!(
            c.failed,
            [FailedItem {
                index: 0,
                name: "毒死蜱".into(),
                microbiological: false
            }]
        );
        // 不合格 overall with every item 合格.
        r.items[0].verdict = Qualified;
        let e = check(&r).unwrap_err();
        assert!(e.to_string().contains("every item"), "{e}");

        r.overall = Qualified;
        r.report_no = "报告".into();
        assert_eq!(check(&r).unwrap_err().code(), "invalid_report_no");
        r.report_no = "(2026)食检字第0123号".into();
        r.items[1].name = " ".into();
        r.items[0].unit = Some("a\u{7}".into());
        let Err(Refusal::Items(problems)) = check(&r) else {
            panic!("expected item problems");
        };
        let got: Vec<(usize, &str, &str)> = problems
            .iter()
            .map(|p| (p.index, p.field.as_str(), p.code.as_str()))
            .collect();
        assert_eq!(
            got,
            [(0, "unit", "forbidden_character"), (1, "name", "required")]
        );
        r.items.clear();
        assert_eq!(check(&r), Err(Refusal::NoItems));
    }

    #[test]
    fn verdicts_accept_chinese() {
        let v: Verdict = serde_json::from_str("\"不合格\"").unwrap();
        assert_eq!(v, Verdict::Unqualified);
        assert_eq!(serde_json::to_value(v).unwrap(), "unqualified");
    }

    fn arb_verdict() -> impl Strategy<Value = Verdict> {
        prop_oneof![Just(Verdict::Qualified), Just(Verdict::Unqualified)]
    }

    proptest! {
        /// Limits written in each operator form read back to themselves, and a number is
        /// judged against them exactly as the comparison says.
        #[test]
        fn limit_forms_and_number_verdicts(v in 0u32..100_000, m in 0u32..100_000, op in 0usize..4) {
            let (v, m) = (f64::from(v) / 1000.0, f64::from(m) / 1000.0);
            let (text, want) = match op {
                0 => (format!("≤{m}"), v <= m),
                1 => (format!("<{m}"), v < m),
                2 => (format!("≥{m}"), v >= m),
                _ => (format!(">{m}"), v > m),
            };
            let limit = parse_limit(&text);
            prop_assert_eq!(limit.to_string(), text);
            prop_assert_eq!(parse_value(&v.to_string()), Value::Number(v));
            prop_assert_eq!(judge(&Value::Number(v), &limit), Some(verdict(want)));
        }

        /// The overall verdict is 不合格 exactly when an item is, and a report is accepted
        /// exactly when the lab states that.
        #[test]
        fn overall_follows_the_items(verdicts in proptest::collection::vec(arb_verdict(), 1..30), stated in arb_verdict()) {
            let items: Vec<Item> = verdicts.iter().enumerate()
                .map(|(i, v)| item(&format!("项目{i}"), "0.01", "≤0.05", *v)).collect();
            let any_failed = verdicts.contains(&Verdict::Unqualified);
            let computed = verdict(!any_failed);
            let r = Report { report_no: "R1".into(), items, overall: stated };
            match check(&r) {
                Ok(c) => {
                    prop_assert_eq!(stated, computed);
                    prop_assert_eq!(c.failed.len(), verdicts.iter().filter(|v| **v == Verdict::Unqualified).count());
                    // 0.01 ≤ 0.05: every lab 不合格 is a disagreement.
                    prop_assert_eq!(c.disagreements.len(), c.failed.len());
                }
                Err(Refusal::OverallMismatch { computed: c, .. }) => {
                    prop_assert!(stated != computed);
                    prop_assert_eq!(c, computed);
                }
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }

        /// A range judges a number inside it 合格 and outside it 不合格.
        #[test]
        fn ranges(lo in 0u32..1000, width in 0u32..1000, v in 0u32..3000) {
            let (lo, hi, v) = (f64::from(lo), f64::from(lo + width), f64::from(v));
            let limit = parse_limit(&format!("{lo}~{hi}"));
            prop_assert_eq!(&limit, &Limit::Range { lo, hi });
            prop_assert_eq!(judge(&Value::Number(v), &limit), Some(verdict(lo <= v && v <= hi)));
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,30}") {
            let _ = judge(&parse_value(&s), &parse_limit(&s));
            let _ = report_no_looks_valid(&s);
        }
    }
}
