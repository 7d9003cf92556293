//! The sampling announcement's rules (抽检信息公告), pure: which samples a draft proposes (a
//! reported result in the period, within the stage and category chosen) and what publication
//! copies of them (the public facts, split into the 合格 and 不合格 tables, numbered, each
//! unqualified sample with its failed items only). The period is checked by the store's query
//! (bureau-day bounds); everything else is here.

use std::collections::{BTreeMap, HashSet};

use super::form::{Entry, Form, Stage};
use super::results::Verdict;
use crate::public::announcement::{PublicFailedItem, PublicSample};

/// What an announcement is limited to, besides its period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    pub stage: Option<Stage>,
    /// The chosen category and every category under it; `None`: every category.
    pub categories: Option<HashSet<String>>,
}

impl Scope {
    pub fn admits(&self, stage: Stage, category_code: &str) -> bool {
        self.stage.is_none_or(|s| s == stage)
            && self
                .categories
                .as_ref()
                .is_none_or(|c| c.contains(category_code))
    }
}

/// `root` and every category below it in the tree given as `(code, parent_code)` pairs.
pub fn subtree(tree: &[(String, Option<String>)], root: &str) -> HashSet<String> {
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (code, parent) in tree {
        if let Some(p) = parent {
            children.entry(p.as_str()).or_default().push(code.as_str());
        }
    }
    let mut out = HashSet::new();
    let mut todo = vec![root];
    while let Some(c) = todo.pop() {
        if out.insert(c.to_string()) {
            todo.extend(children.get(c).into_iter().flatten());
        }
    }
    out
}

/// One test item of a sample's lab result.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemFact {
    pub verdict: Verdict,
    pub item: PublicFailedItem,
}

/// A sample with a reported result, as the draft sees it: its public facts (position 0, no
/// failed items yet) and its items.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleFacts {
    pub sample_id: String,
    pub row: PublicSample,
    pub items: Vec<ItemFact>,
}

/// What publication writes: the two tables, each numbered from 1 in 抽样单编号 order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Composition {
    /// (sample id, row) of the 合格 table.
    pub qualified: Vec<(String, PublicSample)>,
    /// (sample id, row) of the 不合格 table, each with its failed items.
    pub unqualified: Vec<(String, PublicSample)>,
}

/// The tables of an announcement: every proposed sample not excluded, by verdict.
pub fn compose(mut facts: Vec<SampleFacts>, excluded: &HashSet<String>) -> Composition {
    facts.sort_by(|a, b| {
        (a.row.sample_no.as_str(), a.sample_id.as_str())
            .cmp(&(b.row.sample_no.as_str(), b.sample_id.as_str()))
    });
    let mut out = Composition::default();
    for f in facts {
        if excluded.contains(&f.sample_id) {
            continue;
        }
        let mut row = f.row;
        let table = match row.verdict {
            Verdict::Qualified => {
                row.failed_items.clear();
                &mut out.qualified
            }
            Verdict::Unqualified => {
                row.failed_items = f
                    .items
                    .into_iter()
                    .filter(|i| i.verdict == Verdict::Unqualified)
                    .map(|i| i.item)
                    .collect();
                &mut out.unqualified
            }
        };
        row.position = table.len() as i64 + 1;
        table.push((f.sample_id, row));
    }
    out
}

fn text(e: &Entry<String>) -> String {
    match e.value() {
        Some(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => "/".to_string(),
    }
}

/// The 商标, 规格型号, 生产日期/批号 and producer of a sample from its form, "/" where the form
/// has none: `(brand, specification, production_date_or_batch, producer_name, producer_address)`.
pub fn product_facts(form: &Form) -> (String, String, String, String, String) {
    let date = form.sample_production_date.value().map(|d| d.to_string());
    let batch = form
        .sample_batch
        .value()
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty());
    let when = match (date, batch) {
        (Some(d), Some(b)) => format!("{d}（批号 {b}）"),
        (Some(d), None) => d,
        (None, Some(b)) => b,
        (None, None) => "/".to_string(),
    };
    (
        text(&form.sample_brand),
        text(&form.sample_specification),
        when,
        text(&form.producer_name),
        text(&form.producer_address),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(no: &str, verdict: Verdict) -> PublicSample {
        PublicSample {
            position: 0,
            verdict,
            sample_no: no.into(),
            premises_name: "店".into(),
            premises_licensed_name: "店".into(),
            premises_address: "路".into(),
            town: "镇".into(),
            sample_name: "小麦粉".into(),
            brand: "/".into(),
            specification: "1kg".into(),
            production_date_or_batch: "/".into(),
            producer_name: "/".into(),
            producer_address: "/".into(),
            category_code: "01".into(),
            category_name: "粮食加工品".into(),
            stage: Stage::Circulation,
            lab_name: "检验中心".into(),
            report_no: "R".into(),
            failed_items: vec![],
        }
    }

    fn item(name: &str, verdict: Verdict) -> ItemFact {
        ItemFact {
            verdict,
            item: PublicFailedItem {
                name: name.into(),
                value: "1".into(),
                unit: None,
                limit: None,
                standard: None,
            },
        }
    }

    #[test]
    fn subtree_follows_parents() {
        let tree: Vec<(String, Option<String>)> = [
            ("01", None),
            ("0101", Some("01")),
            ("010101", Some("0101")),
            ("02", None),
            ("0201", Some("02")),
        ]
        .into_iter()
        .map(|(c, p)| (c.to_string(), p.map(String::from)))
        .collect();
        let s = subtree(&tree, "01");
        assert_eq!(s.len(), 3);
        assert!(s.contains("010101") && !s.contains("0201"));
        let scope = Scope {
            stage: Some(Stage::Catering),
            categories: Some(s),
        };
        assert!(scope.admits(Stage::Catering, "0101"));
        assert!(!scope.admits(Stage::Circulation, "0101"));
        assert!(!scope.admits(Stage::Catering, "0201"));
        assert!(Scope::default().admits(Stage::Production, "x"));
    }

    #[test]
    fn only_failed_items_are_published() {
        let f = SampleFacts {
            sample_id: "s".into(),
            row: row("A", Verdict::Unqualified),
            items: vec![
                item("铅", Verdict::Unqualified),
                item("镉", Verdict::Qualified),
            ],
        };
        let c = compose(vec![f], &HashSet::new());
        assert_eq!(c.unqualified[0].1.failed_items.len(), 1);
        assert_eq!(c.unqualified[0].1.failed_items[0].name, "铅");
    }

    #[test]
    fn product_facts_write_slash_for_none() {
        let mut form = Form {
            sample_brand: Entry::NotApplicable,
            sample_specification: Entry::Value("1kg/袋".into()),
            sample_batch: Entry::Value("B7".into()),
            producer_name: Entry::Value("某面粉厂".into()),
            ..Form::default()
        };
        let (brand, spec, when, producer, address) = product_facts(&form);
        assert_eq!(
            (brand.as_str(), spec.as_str(), when.as_str()),
            ("/", "1kg/袋", "B7")
        );
        assert_eq!((producer.as_str(), address.as_str()), ("某面粉厂", "/"));
        form.sample_production_date =
            Entry::Value(chrono::NaiveDate::from_ymd_opt(2026, 2, 1).unwrap());
        assert_eq!(product_facts(&form).2, "2026-02-01（批号 B7）");
    }

    proptest! {
        /// Every sample not excluded lands in exactly the table of its verdict, each table is
        /// numbered 1..n in 抽样单编号 order, excluded samples appear nowhere, qualified rows
        /// carry no items and unqualified rows only failed ones.
        #[test]
        fn compose_partitions_and_numbers(
            samples in proptest::collection::vec((0u8..40, any::<bool>(), any::<bool>(), proptest::collection::vec(any::<bool>(), 0..4)), 0..30)
        ) {
            let mut facts = Vec::new();
            let mut excluded = HashSet::new();
            for (k, (no, bad, excl, items)) in samples.iter().enumerate() {
                let id = format!("s{k}");
                if *excl {
                    excluded.insert(id.clone());
                }
                let v = if *bad { Verdict::Unqualified } else { Verdict::Qualified };
                facts.push(SampleFacts {
                    sample_id: id,
                    row: row(&format!("N{no:02}"), v),
                    items: items
                        .iter()
                        .enumerate()
                        .map(|(i, f)| item(&format!("i{i}"), if *f { Verdict::Unqualified } else { Verdict::Qualified }))
                        .collect(),
                });
            }
            let c = compose(facts.clone(), &excluded);
            let kept = facts.iter().filter(|f| !excluded.contains(&f.sample_id)).count();
            prop_assert_eq!(c.qualified.len() + c.unqualified.len(), kept);
            for (table, verdict) in [(&c.qualified, Verdict::Qualified), (&c.unqualified, Verdict::Unqualified)] {
                for (i, (id, r)) in table.iter().enumerate() {
                    prop_assert!(!excluded.contains(id));
                    prop_assert_eq!(r.verdict, verdict);
                    prop_assert_eq!(r.position, i as i64 + 1);
                    if i > 0 {
                        prop_assert!(table[i - 1].1.sample_no <= r.sample_no);
                    }
                    let source = facts.iter().find(|f| &f.sample_id == id).unwrap();
                    let failed = source.items.iter().filter(|x| x.verdict == Verdict::Unqualified).count();
                    match verdict {
                        Verdict::Qualified => prop_assert!(r.failed_items.is_empty()),
                        Verdict::Unqualified => prop_assert_eq!(r.failed_items.len(), failed),
                    }
                }
            }
        }
    }
}
