//! The result rule (检查结果判定): from item answers to 符合 / 基本符合 / 不符合.
//!
//! The rule is configuration stored with each template version, because editions disagree (the
//! 2016 national table judges by general-item pass rate; another edition in use counts failed
//! general items). [`evaluate`] is pure and total: bad answers become [`EvalProblem`]s, never
//! errors or panics, so the caller can show the inspector everything at once and refuse
//! submission in a later step.
//!
//! Counting conventions (shared by all editions):
//! - An item is *checked* when it has a (counted) answer; a not-applicable (合理缺项) answer
//!   counts as checked.
//! - Not-applicable answers are excluded from the pass-rate denominator:
//!   pass rate = passed ÷ (checked − not applicable) × 100.
//! - Coverage minimums count *assessed* items only (pass or fail). A 合理缺项 item was not
//!   inspected, so it must not help reach the "at least 3 key / 7 general items" minimum.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{TemplateContent, TemplateProblem};

/// The inspector's finding for one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// 是 / 符合: the requirement is met.
    Pass,
    /// 否 / 不符合: a problem was found.
    Fail,
    /// 合理缺项: the item does not apply to this business (only where the item allows it).
    NotApplicable,
}

/// The overall inspection result printed on the result record (监督检查结果记录表).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResultCode {
    /// 符合: no problem in any checked item. Follow-up: 通过.
    Compliant,
    /// 基本符合: minor problems. Follow-up: 书面限期整改 (written order to fix by a deadline),
    /// then a recheck.
    BasicallyCompliant,
    /// 不符合: serious problems. Follow-up: stop operating at once if there is a food-safety
    /// risk; a case may be opened.
    NonCompliant,
}

impl ResultCode {
    /// The Chinese label printed on the form.
    pub fn label_zh(self) -> &'static str {
        match self {
            ResultCode::Compliant => "符合",
            ResultCode::BasicallyCompliant => "基本符合",
            ResultCode::NonCompliant => "不符合",
        }
    }
}

/// Minimum number of items an inspection must actually assess (pass or fail; 合理缺项 does not
/// count) before it may be submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct Coverage {
    /// Minimum key items (重点项) assessed. 3 on the 2016 national table.
    pub min_key_checked: u32,
    /// Minimum general items assessed. 7 on the 2016 national table.
    pub min_general_checked: u32,
}

impl Coverage {
    /// The 2016 national table's minimums: 3 key items and 7 general items.
    pub const NATIONAL_2016: Coverage = Coverage {
        min_key_checked: 3,
        min_general_checked: 7,
    };
}

fn default_gap_result() -> ResultCode {
    ResultCode::BasicallyCompliant
}

/// A versioned, configurable result rule, stored with the template. Tagged by `kind` so other
/// editions can be added without breaking stored templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResultRule {
    /// The 2016 national table's printed rule. 符合: no checked item failed. 基本符合: at most
    /// `basic_max_key_failed` key items failed and `basic_min_general_pass_rate_pct`% ≤ general
    /// pass rate < 100%. 不符合: more key items failed, or the pass rate is below the threshold.
    // Explicit: snake_case alone would give "pass_rate2016".
    #[serde(rename = "pass_rate_2016")]
    PassRate2016 {
        /// Minimum items to assess.
        coverage: Coverage,
        /// Lowest general-item pass rate (whole percent, 1–100) still judged 基本符合;
        /// inclusive, so exactly 70% is 基本符合. 70 on the printed form.
        basic_min_general_pass_rate_pct: u32,
        /// Most key items that may fail for 基本符合. 1 on the printed form.
        basic_max_key_failed: u32,
        /// Result when 1..=`basic_max_key_failed` key items failed but no applicable general
        /// item failed (every one passed, or none was applicable). The printed wording does not
        /// cover this case; the domain guide says 基本符合 (the default). Must be
        /// `basically_compliant` or `non_compliant`: a failed key item is never 符合 (an invalid
        /// `compliant` is evaluated as `basically_compliant`).
        #[serde(default = "default_gap_result")]
        #[schema(default = "basically_compliant")]
        gap_result: ResultCode,
    },
    /// The other edition in use. 符合: no checked item failed. 基本符合: no key item failed and
    /// at most `basic_max_general_failed` general items failed. 不符合: any key item failed, or
    /// more general items failed.
    GeneralFailCount {
        /// Minimum items to assess.
        coverage: Coverage,
        /// Most general items that may fail for 基本符合 (8 in the edition we know of).
        basic_max_general_failed: u32,
    },
}

impl Default for ResultRule {
    fn default() -> Self {
        Self::default_2016()
    }
}

impl ResultRule {
    /// The rule printed on the 2016 national table: coverage 3 key / 7 general, 基本符合 from
    /// 70% general pass rate with at most 1 key item failed; 1 key failed with every general
    /// item passing is 基本符合.
    pub fn default_2016() -> Self {
        ResultRule::PassRate2016 {
            coverage: Coverage::NATIONAL_2016,
            basic_min_general_pass_rate_pct: 70,
            basic_max_key_failed: 1,
            gap_result: ResultCode::BasicallyCompliant,
        }
    }

    /// The "at most 8 general items failed, no key item failed" edition, with the national
    /// coverage minimums (that edition's own minimums are not known to us).
    pub fn default_general_fail_count() -> Self {
        ResultRule::GeneralFailCount {
            coverage: Coverage::NATIONAL_2016,
            basic_max_general_failed: 8,
        }
    }

    /// Stable identifier of the rule's edition, equal to its serialized `kind`, e.g. for
    /// showing which rule judged an inspection.
    pub fn version_label(&self) -> &'static str {
        match self {
            ResultRule::PassRate2016 { .. } => "pass_rate_2016",
            ResultRule::GeneralFailCount { .. } => "general_fail_count",
        }
    }

    /// The coverage minimums of this rule.
    pub fn coverage(&self) -> Coverage {
        match self {
            ResultRule::PassRate2016 { coverage, .. }
            | ResultRule::GeneralFailCount { coverage, .. } => *coverage,
        }
    }

    /// Checks the rule's own parameters. Paths are relative to the rule (e.g.
    /// "basic_min_general_pass_rate_pct"); [`TemplateContent::validate`] prefixes them with
    /// `rule.`. Codes: `invalid_pass_rate_threshold` (outside 1–100), `invalid_gap_result`
    /// (`compliant`). Whether the template has enough items for the coverage is checked by the
    /// template, which knows its items.
    pub fn validate(&self) -> Result<(), Vec<TemplateProblem>> {
        let mut problems = Vec::new();
        match self {
            ResultRule::PassRate2016 {
                basic_min_general_pass_rate_pct,
                gap_result,
                ..
            } => {
                if !(1..=100).contains(basic_min_general_pass_rate_pct) {
                    problems.push(TemplateProblem::new(
                        "basic_min_general_pass_rate_pct",
                        "invalid_pass_rate_threshold",
                        format!(
                            "pass-rate threshold must be 1–100 percent, got {basic_min_general_pass_rate_pct}"
                        ),
                    ));
                }
                if *gap_result == ResultCode::Compliant {
                    problems.push(TemplateProblem::new(
                        "gap_result",
                        "invalid_gap_result",
                        "an inspection with a failed key item cannot be 符合 (compliant)",
                    ));
                }
            }
            // Any limit is meaningful: 0 means every general failure is 不符合.
            ResultRule::GeneralFailCount { .. } => {}
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Applies the rule to the tallied counts.
    fn judge(&self, t: &Tally) -> ResultCode {
        // Saturating only to stay panic-free; the tally guarantees the order.
        let applicable = t.general_checked.saturating_sub(t.general_not_applicable);
        let general_failed = applicable.saturating_sub(t.general_passed);
        if t.key_failed == 0 && general_failed == 0 {
            return ResultCode::Compliant;
        }
        match *self {
            ResultRule::PassRate2016 {
                basic_min_general_pass_rate_pct: pct,
                basic_max_key_failed,
                gap_result,
                ..
            } => {
                if t.key_failed > basic_max_key_failed {
                    ResultCode::NonCompliant
                } else if general_failed == 0 {
                    // Key failure(s) within the limit and nothing to hold against the general
                    // items (all passed or none applicable): the case the printed text misses.
                    // An invalid `compliant` setting is read as 基本符合 so a failed item can
                    // never yield 符合.
                    match gap_result {
                        ResultCode::Compliant => ResultCode::BasicallyCompliant,
                        other => other,
                    }
                } else if u64::from(t.general_passed) * 100
                    >= u64::from(pct) * u64::from(applicable)
                {
                    // Integer comparison so exactly 70% is 基本符合 with no float error; the rate
                    // is below 100% here because a general item failed.
                    ResultCode::BasicallyCompliant
                } else {
                    ResultCode::NonCompliant
                }
            }
            ResultRule::GeneralFailCount {
                basic_max_general_failed,
                ..
            } => {
                if t.key_failed == 0 && general_failed <= basic_max_general_failed {
                    ResultCode::BasicallyCompliant
                } else {
                    ResultCode::NonCompliant
                }
            }
        }
    }
}

/// The inspector's answer for one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Answer {
    /// Code of the template item, e.g. "3.1".
    pub item_code: String,
    /// The finding.
    pub status: ItemStatus,
}

/// Something wrong with the answers. The offending answer is left out of every count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EvalProblem {
    /// Stable snake_case identifier: `unknown_item`, `duplicate_answer`,
    /// `not_applicable_not_allowed`, `key_coverage_below_minimum`,
    /// `general_coverage_below_minimum`.
    pub code: String,
    /// The item concerned; None for coverage problems.
    pub item_code: Option<String>,
    /// Human-readable explanation.
    pub message: String,
}

impl EvalProblem {
    fn new(code: &str, item_code: Option<&str>, message: String) -> Self {
        Self {
            code: code.to_owned(),
            item_code: item_code.map(str::to_owned),
            message,
        }
    }
}

/// The result of applying a template's rule to a set of answers, with the counts behind it so
/// the form and reviewers can see why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Evaluation {
    /// 符合 / 基本符合 / 不符合. Always computed, even when `coverage_ok` is false or there are
    /// problems; the submission step decides whether it may be recorded.
    pub result: ResultCode,
    /// Key items answered (including 合理缺项).
    pub key_checked: u32,
    /// Key items answered 合理缺项.
    pub key_not_applicable: u32,
    /// Key items answered fail.
    pub key_failed: u32,
    /// General items answered (including 合理缺项).
    pub general_checked: u32,
    /// General items answered pass.
    pub general_passed: u32,
    /// General items answered 合理缺项 (excluded from the pass rate).
    pub general_not_applicable: u32,
    /// General-item pass rate in percent (0–100), truncated (not rounded) to 2 decimals so it
    /// never shows a threshold as reached when it is not (69.999…% shows 69.99, not 70.00).
    /// None when no general item was applicable. For display only: the result is decided with
    /// exact integer arithmetic.
    pub general_pass_rate: Option<f64>,
    /// Whether the rule's coverage minimums were met, counting assessed (pass/fail) items only.
    pub coverage_ok: bool,
    /// Codes of the items that failed, in template order. They must be checked again at the
    /// next inspection (当次检查发现的不合格项目，应列入下次检查必查项目).
    pub failed_items: Vec<String>,
    /// Problems with the answers and coverage, in answer order, coverage last. Empty when the
    /// answers are clean.
    pub problems: Vec<EvalProblem>,
}

#[derive(Default)]
struct Tally {
    key_checked: u32,
    key_not_applicable: u32,
    key_failed: u32,
    general_checked: u32,
    general_passed: u32,
    general_not_applicable: u32,
}

/// Evaluates answers against a template and its rule. Never panics, never errors; works on
/// unvalidated templates too (an item code repeated in the template resolves to its first
/// occurrence).
///
/// Answer handling:
/// - an answer whose code is not in the template → `unknown_item`, ignored;
/// - a second (or later) answer for the same item → `duplicate_answer`, ignored; the first
///   answer is the one considered, even if that first answer is itself rejected below;
/// - not-applicable on an item with `na_allowed = false` → `not_applicable_not_allowed`, and the
///   item counts as unanswered.
///
/// Items without an answer are simply not checked. Coverage below the rule's minimums adds
/// `key_coverage_below_minimum` / `general_coverage_below_minimum` and sets `coverage_ok` false,
/// but the result is still computed.
///
/// Results for the 2016 rule with default parameters:
///
/// | key failed | general pass rate       | result                         |
/// |------------|-------------------------|--------------------------------|
/// | 0          | 100% or none applicable | 符合                           |
/// | 0 or 1     | 70% ≤ rate < 100%       | 基本符合                       |
/// | 1          | 100% or none applicable | 基本符合 (`gap_result`)        |
/// | ≥ 2        | any                     | 不符合                         |
/// | any        | < 70%                   | 不符合                         |
pub fn evaluate(template: &TemplateContent, answers: &[Answer]) -> Evaluation {
    let mut index = HashMap::new();
    for item in template.items() {
        index.entry(item.code.as_str()).or_insert(item);
    }

    let mut tally = Tally::default();
    let mut problems = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut failed: HashSet<&str> = HashSet::new();

    for answer in answers {
        let code = answer.item_code.as_str();
        let Some(item) = index.get(code) else {
            problems.push(EvalProblem::new(
                "unknown_item",
                Some(code),
                format!("item {code:?} is not in this checklist"),
            ));
            continue;
        };
        if !seen.insert(code) {
            problems.push(EvalProblem::new(
                "duplicate_answer",
                Some(code),
                format!("item {code} was answered more than once; only the first answer is used"),
            ));
            continue;
        }
        if answer.status == ItemStatus::NotApplicable && !item.na_allowed {
            problems.push(EvalProblem::new(
                "not_applicable_not_allowed",
                Some(code),
                format!("item {code} may not be marked 合理缺项 (not applicable)"),
            ));
            continue;
        }
        // Counts are bounded by the number of distinct template items, so they cannot
        // overflow in practice; saturate anyway rather than panic.
        let inc = |n: &mut u32| *n = n.saturating_add(1);
        if item.key {
            inc(&mut tally.key_checked);
            match answer.status {
                ItemStatus::Pass => {}
                ItemStatus::Fail => inc(&mut tally.key_failed),
                ItemStatus::NotApplicable => inc(&mut tally.key_not_applicable),
            }
        } else {
            inc(&mut tally.general_checked);
            match answer.status {
                ItemStatus::Pass => inc(&mut tally.general_passed),
                ItemStatus::Fail => {}
                ItemStatus::NotApplicable => inc(&mut tally.general_not_applicable),
            }
        }
        if answer.status == ItemStatus::Fail {
            failed.insert(code);
        }
    }

    let coverage = template.rule.coverage();
    let key_assessed = tally.key_checked.saturating_sub(tally.key_not_applicable);
    let general_assessed = tally
        .general_checked
        .saturating_sub(tally.general_not_applicable);
    let mut coverage_ok = true;
    if key_assessed < coverage.min_key_checked {
        coverage_ok = false;
        problems.push(EvalProblem::new(
            "key_coverage_below_minimum",
            None,
            format!(
                "{key_assessed} key items assessed (pass or fail); at least {} required",
                coverage.min_key_checked
            ),
        ));
    }
    if general_assessed < coverage.min_general_checked {
        coverage_ok = false;
        problems.push(EvalProblem::new(
            "general_coverage_below_minimum",
            None,
            format!(
                "{general_assessed} general items assessed (pass or fail); at least {} required",
                coverage.min_general_checked
            ),
        ));
    }

    let general_pass_rate = (general_assessed > 0).then(|| {
        let hundredths = u64::from(tally.general_passed) * 10_000 / u64::from(general_assessed);
        hundredths as f64 / 100.0
    });

    let mut failed_items = Vec::with_capacity(failed.len());
    for item in template.items() {
        if failed.remove(item.code.as_str()) {
            failed_items.push(item.code.clone());
        }
    }

    Evaluation {
        result: template.rule.judge(&tally),
        key_checked: tally.key_checked,
        key_not_applicable: tally.key_not_applicable,
        key_failed: tally.key_failed,
        general_checked: tally.general_checked,
        general_passed: tally.general_passed,
        general_not_applicable: tally.general_not_applicable,
        general_pass_rate,
        coverage_ok,
        failed_items,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{catering_2016, Item, Section};
    use super::*;
    use proptest::prelude::*;
    use ItemStatus::{Fail, NotApplicable as Na, Pass};
    use ResultCode::{BasicallyCompliant as Basic, Compliant, NonCompliant as Non};

    /// A template with 5 key items (K1..K5 → "1.1".."1.5") and 12 general items
    /// ("2.1".."2.12"); "2.12" does not allow 合理缺项.
    fn template(rule: ResultRule) -> TemplateContent {
        let mk = |code: String, key: bool| Item {
            text: format!("要求 {code}"),
            code,
            key,
            na_allowed: true,
            photo_required_on_fail: key,
        };
        let mut general: Vec<Item> = (1..=12).map(|n| mk(format!("2.{n}"), false)).collect();
        general[11].na_allowed = false;
        TemplateContent {
            title: "test".into(),
            sections: vec![
                Section {
                    code: "1".into(),
                    title: "key".into(),
                    items: (1..=5).map(|n| mk(format!("1.{n}"), true)).collect(),
                },
                Section {
                    code: "2".into(),
                    title: "general".into(),
                    items: general,
                },
            ],
            rule,
        }
    }

    /// Answers: key statuses for 1.1.., then general statuses for 2.1..
    fn answers(key: &[ItemStatus], general: &[ItemStatus]) -> Vec<Answer> {
        let k = key
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("1.{}", i + 1), *s));
        let g = general
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("2.{}", i + 1), *s));
        k.chain(g)
            .map(|(item_code, status)| Answer { item_code, status })
            .collect()
    }

    /// `p` passes then `f` fails then `n` not-applicable.
    fn gen(p: usize, f: usize, n: usize) -> Vec<ItemStatus> {
        [vec![Pass; p], vec![Fail; f], vec![Na; n]].concat()
    }

    fn codes(e: &Evaluation) -> Vec<&str> {
        e.problems.iter().map(|p| p.code.as_str()).collect()
    }

    #[test]
    fn labels_and_versions() {
        assert_eq!(Compliant.label_zh(), "符合");
        assert_eq!(Basic.label_zh(), "基本符合");
        assert_eq!(Non.label_zh(), "不符合");
        assert_eq!(ResultRule::default_2016().version_label(), "pass_rate_2016");
        assert_eq!(
            ResultRule::default_general_fail_count().version_label(),
            "general_fail_count"
        );
        assert_eq!(ResultRule::default(), ResultRule::default_2016());
        assert_eq!(
            ResultRule::default_2016().coverage(),
            Coverage::NATIONAL_2016
        );
        assert_eq!(serde_json::to_value(Na).unwrap(), "not_applicable");
        assert_eq!(serde_json::to_value(Basic).unwrap(), "basically_compliant");
    }

    #[test]
    fn rule_serde() {
        let json = serde_json::to_value(ResultRule::default_2016()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "pass_rate_2016",
                "coverage": {"min_key_checked": 3, "min_general_checked": 7},
                "basic_min_general_pass_rate_pct": 70,
                "basic_max_key_failed": 1,
                "gap_result": "basically_compliant"
            })
        );
        // gap_result may be omitted and defaults to the guide's reading.
        let parsed: ResultRule = serde_json::from_value(serde_json::json!({
            "kind": "pass_rate_2016",
            "coverage": {"min_key_checked": 3, "min_general_checked": 7},
            "basic_min_general_pass_rate_pct": 70,
            "basic_max_key_failed": 1
        }))
        .unwrap();
        assert_eq!(parsed, ResultRule::default_2016());
        let other = ResultRule::default_general_fail_count();
        let back: ResultRule =
            serde_json::from_str(&serde_json::to_string(&other).unwrap()).unwrap();
        assert_eq!(back, other);
        assert!(serde_json::from_str::<ResultRule>(r#"{"kind":"nope"}"#).is_err());
    }

    #[test]
    fn rule_validate() {
        assert_eq!(ResultRule::default_2016().validate(), Ok(()));
        assert_eq!(ResultRule::default_general_fail_count().validate(), Ok(()));
        let bad = |pct, gap| ResultRule::PassRate2016 {
            coverage: Coverage::NATIONAL_2016,
            basic_min_general_pass_rate_pct: pct,
            basic_max_key_failed: 1,
            gap_result: gap,
        };
        for (rule, expected) in [
            (bad(0, Basic), vec!["invalid_pass_rate_threshold"]),
            (bad(101, Non), vec!["invalid_pass_rate_threshold"]),
            (bad(1, Compliant), vec!["invalid_gap_result"]),
            (
                bad(0, Compliant),
                vec!["invalid_pass_rate_threshold", "invalid_gap_result"],
            ),
        ] {
            let got: Vec<String> = rule
                .validate()
                .unwrap_err()
                .into_iter()
                .map(|p| p.code)
                .collect();
            assert_eq!(got, expected, "{rule:?}");
        }
        assert_eq!(bad(100, Non).validate(), Ok(()));
    }

    #[test]
    fn pass_rate_2016_table() {
        // (name, key [pass, fail, n/a], general [pass, fail, n/a], result, pass rate)
        #[rustfmt::skip]
        let cases = [
            ("all pass",                     [3, 0, 0], [7, 0, 0],  Compliant, Some(100.0)),
            ("exactly 70% (7/10)",           [3, 0, 0], [7, 3, 0],  Basic,     Some(70.0)),
            ("7/11 = 63.63%",                [3, 0, 0], [7, 4, 0],  Non,       Some(63.63)),
            ("below 70% (6/9 = 66.66%)",     [3, 0, 0], [6, 3, 0],  Non,       Some(66.66)),
            ("one general fail, 90%",        [3, 0, 0], [9, 1, 0],  Basic,     Some(90.0)),
            ("1 key fail + 80%",             [2, 1, 0], [8, 2, 0],  Basic,     Some(80.0)),
            ("1 key fail + exactly 70%",     [2, 1, 0], [7, 3, 0],  Basic,     Some(70.0)),
            ("1 key fail + below 70%",       [2, 1, 0], [6, 3, 0],  Non,       Some(66.66)),
            ("2 key fails + 100%",           [1, 2, 0], [7, 0, 0],  Non,       Some(100.0)),
            ("2 key fails + 80%",            [1, 2, 0], [8, 2, 0],  Non,       Some(80.0)),
            ("gap: 1 key fail + 100%",       [2, 1, 0], [7, 0, 0],  Basic,     Some(100.0)),
            // N/A leaves the denominator: 7 pass, 3 fail, 1 N/A → 7/10 = 70%.
            ("N/A excluded from rate",       [3, 0, 0], [7, 3, 1],  Basic,     Some(70.0)),
            ("key N/A is not a failure",     [3, 0, 2], [7, 0, 0],  Compliant, Some(100.0)),
            ("all general N/A, 0 key fail",  [3, 0, 0], [0, 0, 11], Compliant, None),
            ("all general N/A, 1 key fail",  [2, 1, 0], [0, 0, 11], Basic,     None),
            ("all general N/A, 2 key fails", [1, 2, 0], [0, 0, 11], Non,       None),
            ("no answers",                   [0, 0, 0], [0, 0, 0],  Compliant, None),
            ("all general fail",             [3, 0, 0], [0, 7, 0],  Non,       Some(0.0)),
            ("2/3 truncated, not rounded",   [3, 0, 0], [2, 1, 0],  Non,       Some(66.66)),
        ];
        let t = template(ResultRule::default_2016());
        for (name, [kp, kf, kn], [gp, gf, gn], result, rate) in cases {
            let e = evaluate(&t, &answers(&gen(kp, kf, kn), &gen(gp, gf, gn)));
            assert_eq!(e.result, result, "{name}");
            assert_eq!(e.general_pass_rate, rate, "{name}");
        }
    }

    #[test]
    fn boundary_69_point_something() {
        // A bigger template so that a 69.x% rate is reachable: 100 general items, 69 or 70 pass.
        let mut t = template(ResultRule::default_2016());
        t.sections[1].items = (1..=100)
            .map(|n| Item {
                code: format!("2.{n}"),
                text: "x".into(),
                key: false,
                na_allowed: true,
                photo_required_on_fail: false,
            })
            .collect();
        let run =
            |p: usize, f: usize, n: usize| evaluate(&t, &answers(&gen(3, 0, 0), &gen(p, f, n)));
        // 69/99 = 69.69…%
        let e = run(69, 30, 1);
        assert_eq!((e.result, e.general_pass_rate), (Non, Some(69.69)));
        // 70/100 = 70%
        let e = run(70, 30, 0);
        assert_eq!((e.result, e.general_pass_rate), (Basic, Some(70.0)));
        // 99/100 = 99%
        let e = run(99, 1, 0);
        assert_eq!((e.result, e.general_pass_rate), (Basic, Some(99.0)));
    }

    #[test]
    fn configured_2016_parameters() {
        // Stricter reading of the gap and a 60% threshold with up to 2 key failures.
        let t = template(ResultRule::PassRate2016 {
            coverage: Coverage::NATIONAL_2016,
            basic_min_general_pass_rate_pct: 60,
            basic_max_key_failed: 2,
            gap_result: Non,
        });
        let run = |k: Vec<ItemStatus>, g: Vec<ItemStatus>| evaluate(&t, &answers(&k, &g)).result;
        assert_eq!(run(gen(3, 0, 0), gen(6, 4, 0)), Basic); // 60%
        assert_eq!(run(gen(3, 0, 0), gen(5, 4, 0)), Non); // 55.5%
        assert_eq!(run(gen(1, 2, 0), gen(6, 4, 0)), Basic); // 2 key fails allowed
        assert_eq!(run(gen(0, 3, 0), gen(9, 1, 0)), Non);
        assert_eq!(run(gen(2, 1, 0), gen(7, 0, 0)), Non); // gap → configured non_compliant
        assert_eq!(run(gen(3, 0, 0), gen(7, 0, 0)), Compliant);
    }

    #[test]
    fn general_fail_count_table() {
        let t = template(ResultRule::default_general_fail_count());
        // (name, key [pass, fail, n/a], general [pass, fail, n/a], result)
        #[rustfmt::skip]
        let cases = [
            ("all pass",                     [3, 0, 0], [7, 0, 0], Compliant),
            ("1 general fail",               [3, 0, 0], [7, 1, 0], Basic),
            ("exactly 8 general fails",      [3, 0, 0], [3, 8, 0], Basic),
            ("9 general fails",              [3, 0, 0], [2, 9, 0], Non),
            ("1 key fail, general all pass", [2, 1, 0], [7, 0, 0], Non),
            ("1 key fail, 1 general fail",   [2, 1, 0], [7, 1, 0], Non),
            ("N/A is not a failure",         [3, 0, 1], [7, 0, 4], Compliant),
            ("no answers",                   [0, 0, 0], [0, 0, 0], Compliant),
        ];
        for (name, [kp, kf, kn], [gp, gf, gn], result) in cases {
            let e = evaluate(&t, &answers(&gen(kp, kf, kn), &gen(gp, gf, gn)));
            assert_eq!(e.result, result, "{name}");
        }
        let strict = template(ResultRule::GeneralFailCount {
            coverage: Coverage::NATIONAL_2016,
            basic_max_general_failed: 0,
        });
        assert_eq!(
            evaluate(&strict, &answers(&gen(3, 0, 0), &gen(7, 1, 0))).result,
            Non
        );
    }

    #[test]
    fn counts_and_failed_items() {
        let t = template(ResultRule::default_2016());
        // General answers given in reverse order to check failed_items is in template order.
        let mut a = answers(&[Pass, Fail, Na, Pass], &[]);
        a.extend(
            [(3, Fail), (2, Na), (1, Fail)]
                .into_iter()
                .chain((4..=9).map(|n| (n, Pass)))
                .map(|(n, status)| Answer {
                    item_code: format!("2.{n}"),
                    status,
                }),
        );
        let e = evaluate(&t, &a);
        assert_eq!(e.key_checked, 4);
        assert_eq!(e.key_not_applicable, 1);
        assert_eq!(e.key_failed, 1);
        assert_eq!(e.general_checked, 9);
        assert_eq!(e.general_passed, 6);
        assert_eq!(e.general_not_applicable, 1);
        assert_eq!(e.general_pass_rate, Some(75.0));
        assert_eq!(e.failed_items, ["1.2", "2.1", "2.3"]);
        assert_eq!(e.result, Basic);
        assert!(e.coverage_ok);
        assert!(e.problems.is_empty());
    }

    #[test]
    fn coverage_minimums() {
        let t = template(ResultRule::default_2016());
        // Exactly met: 3 key, 7 general assessed.
        let e = evaluate(&t, &answers(&gen(3, 0, 0), &gen(7, 0, 0)));
        assert!(e.coverage_ok);
        assert!(e.problems.is_empty());
        // One key short.
        let e = evaluate(&t, &answers(&gen(2, 0, 0), &gen(7, 0, 0)));
        assert!(!e.coverage_ok);
        assert_eq!(codes(&e), ["key_coverage_below_minimum"]);
        assert_eq!(e.result, Compliant, "result is still computed");
        // One general short.
        let e = evaluate(&t, &answers(&gen(3, 0, 0), &gen(6, 0, 0)));
        assert!(!e.coverage_ok);
        assert_eq!(codes(&e), ["general_coverage_below_minimum"]);
        // N/A answers do not count toward coverage: 3 key answered but one N/A.
        let e = evaluate(&t, &answers(&gen(2, 0, 1), &gen(6, 1, 1)));
        assert_eq!((e.key_checked, e.general_checked), (3, 8));
        assert!(!e.coverage_ok);
        assert_eq!(codes(&e), ["key_coverage_below_minimum"]);
        // No answers at all: both problems, result 符合 by vacuity, flagged by coverage.
        let e = evaluate(&t, &[]);
        assert!(!e.coverage_ok);
        assert_eq!(
            codes(&e),
            [
                "key_coverage_below_minimum",
                "general_coverage_below_minimum"
            ]
        );
        assert_eq!(e.result, Compliant);
        assert_eq!(e.general_pass_rate, None);
        assert!(e.problems.iter().all(|p| p.item_code.is_none()));
    }

    #[test]
    fn bad_answers_are_problems_and_not_counted() {
        let t = template(ResultRule::default_2016());
        let mut a = answers(&gen(3, 0, 0), &gen(7, 0, 0));
        let extra = |code: &str, status| Answer {
            item_code: code.into(),
            status,
        };
        a.push(extra("9.9", Fail)); // unknown
        a.push(extra("1.1", Fail)); // duplicate of a pass: ignored
        a.push(extra("2.12", Na)); // N/A not allowed
        a.push(extra("2.12", Pass)); // duplicate of the rejected N/A
        a.push(extra("", Pass)); // unknown
        let e = evaluate(&t, &a);
        assert_eq!(
            codes(&e),
            [
                "unknown_item",
                "duplicate_answer",
                "not_applicable_not_allowed",
                "duplicate_answer",
                "unknown_item"
            ]
        );
        let item_codes: Vec<Option<&str>> =
            e.problems.iter().map(|p| p.item_code.as_deref()).collect();
        assert_eq!(
            item_codes,
            [
                Some("9.9"),
                Some("1.1"),
                Some("2.12"),
                Some("2.12"),
                Some("")
            ]
        );
        assert_eq!(e.key_checked, 3);
        assert_eq!(e.key_failed, 0);
        assert_eq!(e.general_checked, 7);
        assert_eq!(e.general_not_applicable, 0);
        assert_eq!(e.result, Compliant);
        assert!(e.coverage_ok);
        assert!(e.failed_items.is_empty());
    }

    #[test]
    fn catering_2016_end_to_end() {
        let t = catering_2016();
        let a: Vec<Answer> = t
            .items()
            .map(|i| Answer {
                item_code: i.code.clone(),
                status: if i.code == "4.2" || i.code == "7.4" {
                    Fail
                } else {
                    Pass
                },
            })
            .collect();
        let e = evaluate(&t, &a);
        assert_eq!(e.key_checked, 7);
        assert_eq!(e.key_failed, 1);
        assert_eq!(e.general_checked, 23);
        assert_eq!(e.general_passed, 22);
        assert_eq!(e.general_pass_rate, Some(95.65));
        assert_eq!(e.result, Basic);
        assert_eq!(e.failed_items, ["4.2", "7.4"]);
        assert!(e.coverage_ok);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["result"], "basically_compliant");
        let back: Evaluation = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn invalid_template_does_not_panic() {
        let mut t = template(ResultRule::PassRate2016 {
            coverage: Coverage {
                min_key_checked: u32::MAX,
                min_general_checked: u32::MAX,
            },
            basic_min_general_pass_rate_pct: u32::MAX,
            basic_max_key_failed: u32::MAX,
            gap_result: Compliant,
        });
        t.sections[1].items[1].code = "2.1".into(); // duplicate code in the template
        let e = evaluate(&t, &answers(&gen(0, 5, 0), &gen(1, 11, 0)));
        assert_eq!(e.key_failed, 5);
        assert!(!e.coverage_ok);
        assert_eq!(e.result, Non);
    }

    fn rule_strategy() -> impl Strategy<Value = ResultRule> {
        let coverage = (0u32..20, 0u32..20).prop_map(|(k, g)| Coverage {
            min_key_checked: k,
            min_general_checked: g,
        });
        let result = prop_oneof![Just(Compliant), Just(Basic), Just(Non)];
        prop_oneof![
            (coverage.clone(), any::<u32>(), any::<u32>(), result).prop_map(
                |(coverage, pct, max_key, gap_result)| ResultRule::PassRate2016 {
                    coverage,
                    basic_min_general_pass_rate_pct: pct,
                    basic_max_key_failed: max_key % 4,
                    gap_result,
                }
            ),
            (coverage, 0u32..12).prop_map(|(coverage, n)| ResultRule::GeneralFailCount {
                coverage,
                basic_max_general_failed: n,
            }),
        ]
    }

    fn answers_strategy() -> impl Strategy<Value = Vec<Answer>> {
        let mut pool: Vec<String> = catering_2016().items().map(|i| i.code.clone()).collect();
        pool.extend((1..=12).map(|n| format!("2.{n}")));
        pool.extend(["9.9", "", "x", "1.01"].map(String::from));
        let code = prop_oneof![
            4 => proptest::sample::select(pool),
            1 => "\\PC{0,6}",
        ];
        let status = prop_oneof![Just(Pass), Just(Fail), Just(Na)];
        proptest::collection::vec(
            (code, status).prop_map(|(item_code, status)| Answer { item_code, status }),
            0..60,
        )
    }

    proptest! {
        #[test]
        fn evaluate_is_total_and_consistent(
            rule in rule_strategy(),
            use_catering in any::<bool>(),
            a in answers_strategy(),
        ) {
            let mut t = if use_catering { catering_2016() } else { template(rule.clone()) };
            t.rule = rule.clone();
            let e = evaluate(&t, &a);

            prop_assert!(e.key_failed + e.key_not_applicable <= e.key_checked);
            prop_assert!(e.general_passed + e.general_not_applicable <= e.general_checked);
            prop_assert!(e.key_checked as usize <= t.key_count());
            prop_assert!(e.general_checked as usize <= t.general_count());
            // Every answer is either counted or reported.
            let item_problems = e.problems.iter().filter(|p| p.item_code.is_some()).count();
            prop_assert_eq!(
                (e.key_checked + e.general_checked) as usize + item_problems,
                a.len()
            );
            let applicable = e.general_checked - e.general_not_applicable;
            match e.general_pass_rate {
                None => prop_assert_eq!(applicable, 0),
                Some(r) => {
                    prop_assert!(applicable > 0);
                    prop_assert!((0.0..=100.0).contains(&r));
                    // Truncation keeps the displayed rate on the correct side of any whole
                    // percent threshold.
                    let exact = f64::from(e.general_passed) * 100.0 / f64::from(applicable);
                    prop_assert!(r <= exact + 1e-9 && exact - r < 0.01 + 1e-9);
                }
            }
            let general_failed = applicable - e.general_passed;
            prop_assert_eq!(
                e.failed_items.len(),
                (e.key_failed + general_failed) as usize
            );
            // 符合 exactly when nothing failed.
            prop_assert_eq!(
                e.result == Compliant,
                e.key_failed == 0 && general_failed == 0
            );
            let cov = rule.coverage();
            prop_assert_eq!(
                e.coverage_ok,
                e.key_checked - e.key_not_applicable >= cov.min_key_checked
                    && applicable >= cov.min_general_checked
            );
            prop_assert_eq!(e.coverage_ok, !e.problems.iter().any(|p| p.item_code.is_none()));
            if rule.validate().is_ok() {
                if let ResultRule::PassRate2016 { basic_min_general_pass_rate_pct: pct, basic_max_key_failed, .. } = rule {
                    if e.key_failed > basic_max_key_failed
                        || u64::from(e.general_passed) * 100 < u64::from(pct) * u64::from(applicable)
                    {
                        prop_assert_eq!(e.result, Non);
                    }
                }
            }
        }
    }
}
