//! Inspection checklists (检查要点表): template content, its validation, and the 2016 national
//! catering table. Pure logic, no I/O.
//!
//! Templates are data because provinces and cities use their own editions (e.g. a 40-item local
//! table). Storage keeps them versioned (draft → published, published is immutable) and an
//! inspection points at the exact version it used; this module only defines what one version
//! contains and when it is acceptable. The result rule travels with the template so that an old
//! inspection is always judged by the rule it was performed under.

pub mod rule;
pub mod version;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use self::rule::{Coverage, ResultRule};

/// Longest template or section title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest item text, in characters.
pub const MAX_ITEM_TEXT_CHARS: usize = 1000;

/// The content of one template version, as stored (as JSON) and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TemplateContent {
    /// Title printed on the form, e.g. "餐饮服务日常监督检查要点表". 1–200 characters.
    pub title: String,
    /// Sections (检查项目) in printed order. At least one.
    pub sections: Vec<Section>,
    /// The rule that turns item answers into the inspection result (检查结果判定).
    pub rule: ResultRule,
}

/// One section of the checklist, e.g. "3 制度管理".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Section {
    /// Section number as printed, digits only, e.g. "3". Every item code in the section starts
    /// with it ("3.1", "3.2").
    pub code: String,
    /// Section title, e.g. "制度管理". 1–200 characters.
    pub title: String,
    /// Items (检查内容) in printed order. At least one.
    pub items: Vec<Item>,
}

/// One check point (检查内容) of the checklist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Item {
    /// Item number `<section>.<n>`, e.g. "3.1" or "10.12"; unique within the template. Answers
    /// refer to items by this code.
    pub code: String,
    /// The requirement as printed. 1–1000 characters.
    pub text: String,
    /// 重点项 (key item, printed with `*`). Key items weigh more in the result rule.
    pub key: bool,
    /// Whether the inspector may mark this item 合理缺项 (not applicable), e.g. 专间 checks in a
    /// shop without a dedicated room. Defaults to true, as on the printed forms.
    #[serde(default = "default_true")]
    #[schema(default = true)]
    pub na_allowed: bool,
    /// Whether a failed answer must carry a photo as evidence. Defaults to false.
    #[serde(default)]
    #[schema(default = false)]
    pub photo_required_on_fail: bool,
}

fn default_true() -> bool {
    true
}

/// One thing wrong with a template, so an editor can show every problem at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TemplateProblem {
    /// Where the problem is, as a path into the template JSON, e.g. `sections[2].items[0].code`
    /// or `rule.coverage.min_key_checked`.
    pub path: String,
    /// Stable snake_case identifier for clients, e.g. "duplicate_item_code".
    pub code: String,
    /// Human-readable explanation (Chinese/English mixed, for editors).
    pub message: String,
}

impl TemplateProblem {
    pub(crate) fn new(
        path: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// `<digits>` with no leading zero (other than "0" itself), so "3.1" and "03.01" cannot both
/// exist and look like the same item.
fn is_canonical_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

/// Splits an item code `<digits>.<digits>` into (section, number); None if malformed.
fn split_item_code(code: &str) -> Option<(&str, &str)> {
    let (section, number) = code.split_once('.')?;
    (is_canonical_number(section) && is_canonical_number(number)).then_some((section, number))
}

/// Checks a title-like text: trimmed non-empty and at most `max` characters.
fn check_text(
    value: &str,
    max: usize,
    path: &str,
    what: &str,
    empty_code: &str,
    long_code: &str,
    problems: &mut Vec<TemplateProblem>,
) {
    if value.trim().is_empty() {
        problems.push(TemplateProblem::new(
            path,
            empty_code,
            format!("{what} must not be empty"),
        ));
    } else {
        let len = value.chars().count();
        if len > max {
            problems.push(TemplateProblem::new(
                path,
                long_code,
                format!("{what} is {len} characters; at most {max} allowed"),
            ));
        }
    }
}

impl TemplateContent {
    /// Validates the template before it may be saved or published. Returns every problem found
    /// (not just the first) so the editor can mark them all:
    ///
    /// - title non-empty and ≤ 200 chars (`title_empty`, `title_too_long`);
    /// - at least one section (`no_sections`), each with at least one item
    ///   (`section_without_items`), a digits-only code (`invalid_section_code`) that no other
    ///   section uses (`duplicate_section_code`) and a title like the template's
    ///   (`section_title_empty`, `section_title_too_long`);
    /// - item codes of shape `<digits>.<digits>` without leading zeros (`invalid_item_code`),
    ///   unique across the template (`duplicate_item_code`, reported on the later occurrence)
    ///   and prefixed by their section's code (`item_code_section_mismatch`);
    /// - item text non-empty and ≤ 1000 chars (`item_text_empty`, `item_text_too_long`);
    /// - the rule valid ([`ResultRule::validate`], paths prefixed with `rule.`);
    /// - enough key and general items to meet the rule's coverage minimums
    ///   (`not_enough_key_items`, `not_enough_general_items`), otherwise no inspection could ever
    ///   be submitted with it.
    pub fn validate(&self) -> Result<(), Vec<TemplateProblem>> {
        let mut problems = Vec::new();
        check_text(
            &self.title,
            MAX_TITLE_CHARS,
            "title",
            "title",
            "title_empty",
            "title_too_long",
            &mut problems,
        );
        if self.sections.is_empty() {
            problems.push(TemplateProblem::new(
                "sections",
                "no_sections",
                "a template needs at least one section",
            ));
        }

        // Code -> path of its first occurrence, to point duplicates at the original.
        let mut section_codes: HashMap<&str, String> = HashMap::new();
        let mut item_codes: HashMap<&str, String> = HashMap::new();
        for (si, section) in self.sections.iter().enumerate() {
            let spath = format!("sections[{si}]");
            let section_code_ok = is_canonical_number(&section.code);
            if !section_code_ok {
                problems.push(TemplateProblem::new(
                    format!("{spath}.code"),
                    "invalid_section_code",
                    format!(
                        "section code {:?} must be a number without leading zeros, e.g. \"3\"",
                        section.code
                    ),
                ));
            } else if let Some(first) = section_codes.get(section.code.as_str()) {
                problems.push(TemplateProblem::new(
                    format!("{spath}.code"),
                    "duplicate_section_code",
                    format!("section code {:?} is already used by {first}", section.code),
                ));
            } else {
                section_codes.insert(&section.code, spath.clone());
            }
            check_text(
                &section.title,
                MAX_TITLE_CHARS,
                &format!("{spath}.title"),
                "section title",
                "section_title_empty",
                "section_title_too_long",
                &mut problems,
            );
            if section.items.is_empty() {
                problems.push(TemplateProblem::new(
                    format!("{spath}.items"),
                    "section_without_items",
                    "a section needs at least one item",
                ));
            }

            for (ii, item) in section.items.iter().enumerate() {
                let ipath = format!("{spath}.items[{ii}]");
                match split_item_code(&item.code) {
                    None => problems.push(TemplateProblem::new(
                        format!("{ipath}.code"),
                        "invalid_item_code",
                        format!(
                            "item code {:?} must look like <section>.<number>, e.g. \"3.1\"",
                            item.code
                        ),
                    )),
                    // Only compare prefixes when the section code itself is sane; otherwise the
                    // section problem already explains it.
                    Some((prefix, _)) if section_code_ok && prefix != section.code => {
                        problems.push(TemplateProblem::new(
                            format!("{ipath}.code"),
                            "item_code_section_mismatch",
                            format!(
                                "item code {:?} does not start with its section code \"{}.\"",
                                item.code, section.code
                            ),
                        ));
                    }
                    Some(_) => {}
                }
                if let Some(first) = item_codes.get(item.code.as_str()) {
                    problems.push(TemplateProblem::new(
                        format!("{ipath}.code"),
                        "duplicate_item_code",
                        format!("item code {:?} is already used by {first}", item.code),
                    ));
                } else {
                    item_codes.insert(&item.code, ipath.clone());
                }
                check_text(
                    &item.text,
                    MAX_ITEM_TEXT_CHARS,
                    &format!("{ipath}.text"),
                    "item text",
                    "item_text_empty",
                    "item_text_too_long",
                    &mut problems,
                );
            }
        }

        if let Err(rule_problems) = self.rule.validate() {
            problems.extend(rule_problems.into_iter().map(|mut p| {
                p.path = if p.path.is_empty() {
                    "rule".to_owned()
                } else {
                    format!("rule.{}", p.path)
                };
                p
            }));
        }

        let Coverage {
            min_key_checked,
            min_general_checked,
        } = self.rule.coverage();
        let (key, general) = (self.key_count(), self.general_count());
        if (key as u64) < u64::from(min_key_checked) {
            problems.push(TemplateProblem::new(
                "rule.coverage.min_key_checked",
                "not_enough_key_items",
                format!(
                    "the rule requires {min_key_checked} key items to be checked but the template has only {key}"
                ),
            ));
        }
        if (general as u64) < u64::from(min_general_checked) {
            problems.push(TemplateProblem::new(
                "rule.coverage.min_general_checked",
                "not_enough_general_items",
                format!(
                    "the rule requires {min_general_checked} general items to be checked but the template has only {general}"
                ),
            ));
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The item with this code, if any (the first one, should an invalid template repeat it).
    pub fn item(&self, code: &str) -> Option<&Item> {
        self.items().find(|item| item.code == code)
    }

    /// All items in printed order, across sections.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.sections.iter().flat_map(|s| s.items.iter())
    }

    /// Number of key items (重点项).
    pub fn key_count(&self) -> usize {
        self.items().filter(|i| i.key).count()
    }

    /// Number of general (non-key) items.
    pub fn general_count(&self) -> usize {
        self.items().filter(|i| !i.key).count()
    }
}

/// The embedded 2016 national catering table (reference data, not user input).
const CATERING_2016_JSON: &str = include_str!("catering-2016.json");

/// Shape of the reference file; it carries more (header fields, notes) than a template needs.
#[derive(Deserialize)]
struct ReferenceTable {
    title: String,
    coverage: ReferenceCoverage,
    sections: Vec<ReferenceSection>,
}

#[derive(Deserialize)]
struct ReferenceCoverage {
    min_key_items_checked: u32,
    min_general_items_checked: u32,
}

#[derive(Deserialize)]
struct ReferenceSection {
    code: String,
    title: String,
    items: Vec<ReferenceItem>,
}

#[derive(Deserialize)]
struct ReferenceItem {
    code: String,
    key: bool,
    text: String,
}

/// The 2016 national catering table (餐饮服务日常监督检查要点表: 9 sections, 30 items, 7 key)
/// with the printed 2016 result rule ([`ResultRule::default_2016`]), as a starting template.
///
/// Every item allows 合理缺项 (the printed form does not restrict it) and key items require a
/// photo on failure, since a failed key item can make the result 不符合 and lead to a case.
pub fn catering_2016() -> TemplateContent {
    // The JSON is compiled in and covered by tests, so a parse failure is a build defect, never
    // a runtime input problem.
    let table: ReferenceTable = serde_json::from_str(CATERING_2016_JSON)
        .expect("embedded catering-2016.json matches ReferenceTable");
    let mut rule = ResultRule::default_2016();
    if let ResultRule::PassRate2016 { coverage, .. } = &mut rule {
        *coverage = Coverage {
            min_key_checked: table.coverage.min_key_items_checked,
            min_general_checked: table.coverage.min_general_items_checked,
        };
    }
    TemplateContent {
        title: table.title,
        sections: table
            .sections
            .into_iter()
            .map(|s| Section {
                code: s.code,
                title: s.title,
                items: s
                    .items
                    .into_iter()
                    .map(|i| Item {
                        code: i.code,
                        text: i.text,
                        key: i.key,
                        na_allowed: true,
                        photo_required_on_fail: i.key,
                    })
                    .collect(),
            })
            .collect(),
        rule,
    }
}

#[cfg(test)]
mod tests {
    use super::rule::ResultCode;
    use super::*;

    fn item(code: &str, key: bool) -> Item {
        Item {
            code: code.into(),
            text: format!("要求 {code}"),
            key,
            na_allowed: true,
            photo_required_on_fail: false,
        }
    }

    fn problem_codes(t: &TemplateContent) -> Vec<(String, String)> {
        match t.validate() {
            Ok(()) => vec![],
            Err(ps) => ps.into_iter().map(|p| (p.path, p.code)).collect(),
        }
    }

    fn has(t: &TemplateContent, path: &str, code: &str) -> bool {
        problem_codes(t).iter().any(|(p, c)| p == path && c == code)
    }

    #[test]
    fn catering_2016_shape_and_validity() {
        let t = catering_2016();
        assert_eq!(t.title, "餐饮服务日常监督检查要点表");
        assert_eq!(t.sections.len(), 9);
        assert_eq!(t.items().count(), 30);
        assert_eq!(t.key_count(), 7);
        assert_eq!(t.general_count(), 23);
        assert_eq!(t.rule, ResultRule::default_2016());
        assert_eq!(t.validate(), Ok(()));
        let keys: Vec<&str> = t
            .items()
            .filter(|i| i.key)
            .map(|i| i.code.as_str())
            .collect();
        assert_eq!(keys, ["3.1", "3.2", "4.1", "4.2", "6.1", "8.4", "9.3"]);
        assert!(t.items().all(|i| i.na_allowed));
        assert!(t.items().all(|i| i.photo_required_on_fail == i.key));
        assert_eq!(t.item("7.3").map(|i| i.key), Some(false));
        assert!(t.item("7.30").is_none());
    }

    #[test]
    fn serde_round_trip() {
        let t = catering_2016();
        let json = serde_json::to_string(&t).unwrap();
        let back: TemplateContent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        let value = serde_json::to_value(&t).unwrap();
        assert_eq!(value["rule"]["kind"], "pass_rate_2016");
        assert_eq!(value["rule"]["coverage"]["min_key_checked"], 3);
        assert_eq!(value["sections"][2]["items"][0]["code"], "3.1");
    }

    #[test]
    fn item_flags_default_when_absent() {
        let json = r#"{
            "title": "t",
            "sections": [{"code": "1", "title": "s", "items": [{"code": "1.1", "text": "x", "key": true}]}],
            "rule": {"kind": "general_fail_count",
                     "coverage": {"min_key_checked": 1, "min_general_checked": 0},
                     "basic_max_general_failed": 8}
        }"#;
        let t: TemplateContent = serde_json::from_str(json).unwrap();
        let i = &t.sections[0].items[0];
        assert!(i.na_allowed);
        assert!(!i.photo_required_on_fail);
        assert_eq!(t.validate(), Ok(()));
    }

    #[test]
    fn validate_reports_every_problem() {
        let t = TemplateContent {
            title: " ".into(),
            sections: vec![
                Section {
                    code: "1".into(),
                    title: "ok".into(),
                    items: vec![
                        item("1.1", true),
                        item("2.1", false),  // wrong prefix
                        item("1.1", false),  // duplicate
                        item("1.x", false),  // malformed
                        item("1.01", false), // leading zero
                        Item {
                            text: "".into(),
                            ..item("1.2", false)
                        },
                        Item {
                            text: "字".repeat(MAX_ITEM_TEXT_CHARS + 1),
                            ..item("1.3", false)
                        },
                    ],
                },
                Section {
                    code: "1".into(),
                    title: "".into(),
                    items: vec![],
                },
                Section {
                    code: "a".into(),
                    title: "x".repeat(MAX_TITLE_CHARS + 1),
                    items: vec![item("a.1", false)],
                },
            ],
            rule: ResultRule::PassRate2016 {
                coverage: Coverage {
                    min_key_checked: 2,
                    min_general_checked: 99,
                },
                basic_min_general_pass_rate_pct: 101,
                basic_max_key_failed: 1,
                gap_result: ResultCode::Compliant,
            },
        };
        let expected = [
            ("title", "title_empty"),
            ("sections[0].items[1].code", "item_code_section_mismatch"),
            ("sections[0].items[2].code", "duplicate_item_code"),
            ("sections[0].items[3].code", "invalid_item_code"),
            ("sections[0].items[4].code", "invalid_item_code"),
            ("sections[0].items[5].text", "item_text_empty"),
            ("sections[0].items[6].text", "item_text_too_long"),
            ("sections[1].code", "duplicate_section_code"),
            ("sections[1].title", "section_title_empty"),
            ("sections[1].items", "section_without_items"),
            ("sections[2].code", "invalid_section_code"),
            ("sections[2].title", "section_title_too_long"),
            ("sections[2].items[0].code", "invalid_item_code"),
            (
                "rule.basic_min_general_pass_rate_pct",
                "invalid_pass_rate_threshold",
            ),
            ("rule.gap_result", "invalid_gap_result"),
            ("rule.coverage.min_key_checked", "not_enough_key_items"),
            (
                "rule.coverage.min_general_checked",
                "not_enough_general_items",
            ),
        ];
        let got = problem_codes(&t);
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn validate_single_problems() {
        let base = catering_2016();

        let mut t = base.clone();
        t.title = "标".repeat(MAX_TITLE_CHARS);
        assert_eq!(t.validate(), Ok(()), "exactly 200 chars is fine");
        t.title.push('标');
        assert!(has(&t, "title", "title_too_long"));

        let mut t = base.clone();
        t.sections.clear();
        assert!(has(&t, "sections", "no_sections"));
        assert!(has(
            &t,
            "rule.coverage.min_key_checked",
            "not_enough_key_items"
        ));

        let mut t = base.clone();
        t.sections[8].items[2].code = "1.1".into();
        assert!(has(&t, "sections[8].items[2].code", "duplicate_item_code"));
        assert!(has(
            &t,
            "sections[8].items[2].code",
            "item_code_section_mismatch"
        ));

        let mut t = base.clone();
        t.sections[0].items[0].code = "1.".into();
        assert!(has(&t, "sections[0].items[0].code", "invalid_item_code"));

        let mut t = base.clone();
        t.sections[0].items[0].text = "\n\t".into();
        assert!(has(&t, "sections[0].items[0].text", "item_text_empty"));

        // Exactly enough key items: 7 needed, 7 present.
        let mut t = base.clone();
        if let ResultRule::PassRate2016 { coverage, .. } = &mut t.rule {
            coverage.min_key_checked = 7;
            coverage.min_general_checked = 23;
        }
        assert_eq!(t.validate(), Ok(()));
        if let ResultRule::PassRate2016 { coverage, .. } = &mut t.rule {
            coverage.min_key_checked = 8;
        }
        assert_eq!(
            problem_codes(&t),
            vec![(
                "rule.coverage.min_key_checked".to_string(),
                "not_enough_key_items".to_string()
            )]
        );

        // Two-digit codes are fine.
        let t = TemplateContent {
            title: "local".into(),
            sections: vec![Section {
                code: "10".into(),
                title: "s".into(),
                items: vec![item("10.12", true), item("10.0", false)],
            }],
            rule: ResultRule::GeneralFailCount {
                coverage: Coverage {
                    min_key_checked: 1,
                    min_general_checked: 1,
                },
                basic_max_general_failed: 8,
            },
        };
        assert_eq!(t.validate(), Ok(()));
    }

    #[test]
    fn problem_display() {
        let p = TemplateProblem::new("title", "title_empty", "title must not be empty");
        assert_eq!(p.to_string(), "title: title must not be empty");
    }

    #[test]
    fn openapi_schema_generates() {
        #[derive(utoipa::OpenApi)]
        #[openapi(components(schemas(
            TemplateContent,
            TemplateProblem,
            rule::Evaluation,
            rule::Answer
        )))]
        struct Doc;
        let json = serde_json::to_value(<Doc as utoipa::OpenApi>::openapi()).unwrap();
        let schemas = &json["components"]["schemas"];
        for name in [
            "TemplateContent",
            "Section",
            "Item",
            "ResultRule",
            "Coverage",
            "ItemStatus",
            "ResultCode",
            "Evaluation",
            "EvalProblem",
            "Answer",
            "TemplateProblem",
        ] {
            assert!(schemas.get(name).is_some(), "missing schema {name}");
        }
        let na = &schemas["Item"]["properties"]["na_allowed"];
        assert_eq!(na["default"], true);
        assert!(na["description"].as_str().unwrap().contains("合理缺项"));
        let required = schemas["Item"]["required"].as_array().unwrap();
        assert!(!required.iter().any(|r| r == "na_allowed"));
    }
}
