//! The sampling announcement (抽检信息公告) as files: CSV (one file, both tables: a row per
//! qualified sample and a row per failed item of each unqualified sample, the sample's columns
//! repeated) and XLSX (合格 and 不合格 sheets with frozen headers and widths for Chinese text,
//! and a 说明 sheet). Every text cell goes through the same neutralising writers as the list
//! exports. An announcement is bounded (a period's samples), so the rows come as slices.

use std::io::Write;

use super::csv::CsvWriter;
use super::workbook::{SheetSpec, StreamedWorkbook};
use super::{Cell, Result};
use crate::public::announcement::{PublicAnnouncement, PublicFailedItem, PublicSample, DISCLAIMER};

/// CSV columns (the XLSX sheets leave out 结论, which is the sheet, and the 合格 sheet the
/// item columns).
pub const HEADERS: [&str; 22] = [
    "结论",
    "序号",
    "抽样单编号",
    "被抽样单位名称",
    "营业执照名称",
    "被抽样单位地址",
    "乡镇街道",
    "样品名称",
    "商标",
    "规格型号",
    "生产日期/批号",
    "标称生产企业名称",
    "标称生产企业地址",
    "食品分类",
    "抽样环节",
    "检验机构",
    "检验报告编号",
    "不合格项目",
    "检验结果",
    "计量单位",
    "标准值",
    "判定依据",
];

const WIDTHS: [f64; 21] = [
    6.0, 22.0, 26.0, 30.0, 40.0, 12.0, 18.0, 12.0, 14.0, 20.0, 28.0, 40.0, 16.0, 8.0, 24.0, 18.0,
    20.0, 12.0, 10.0, 12.0, 18.0,
];

fn sample_cells(s: &PublicSample) -> [Cell<'_>; 16] {
    [
        Cell::Int(s.position),
        Cell::text(&s.sample_no),
        Cell::text(&s.premises_name),
        Cell::text(&s.premises_licensed_name),
        Cell::text(&s.premises_address),
        Cell::text(&s.town),
        Cell::text(&s.sample_name),
        Cell::text(&s.brand),
        Cell::text(&s.specification),
        Cell::text(&s.production_date_or_batch),
        Cell::text(&s.producer_name),
        Cell::text(&s.producer_address),
        Cell::text(&s.category_name),
        Cell::text(s.stage.label_zh()),
        Cell::text(&s.lab_name),
        Cell::text(&s.report_no),
    ]
}

fn opt(s: &Option<String>) -> Cell<'_> {
    s.as_deref().map_or(Cell::Empty, Cell::text)
}

fn item_cells(i: Option<&PublicFailedItem>) -> [Cell<'_>; 5] {
    match i {
        Some(i) => [
            Cell::text(&i.name),
            Cell::text(&i.value),
            opt(&i.unit),
            opt(&i.limit),
            opt(&i.standard),
        ],
        None => [
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
        ],
    }
}

/// One line per failed item (at least one line per sample).
fn unqualified_lines(s: &PublicSample) -> Vec<Option<&PublicFailedItem>> {
    if s.failed_items.is_empty() {
        vec![None]
    } else {
        s.failed_items.iter().map(Some).collect()
    }
}

/// Both tables as one CSV (UTF-8 with BOM, RFC 4180).
pub fn write_csv<W: Write>(
    out: W,
    qualified: &[PublicSample],
    unqualified: &[PublicSample],
) -> Result<W> {
    let mut w = CsvWriter::new(out, &HEADERS)?;
    for s in qualified {
        let cells = std::iter::once(Cell::text("合格"))
            .chain(sample_cells(s))
            .chain(item_cells(None));
        w.row(cells)?;
    }
    for s in unqualified {
        for i in unqualified_lines(s) {
            let cells = std::iter::once(Cell::text("不合格"))
                .chain(sample_cells(s))
                .chain(item_cells(i));
            w.row(cells)?;
        }
    }
    w.finish()
}

fn notes(a: &PublicAnnouncement, published_on: &str) -> Vec<(&'static str, String)> {
    vec![
        ("期号", a.announcement_no.clone()),
        ("标题", a.title.clone()),
        (
            "报告期间",
            format!("{} 至 {}", a.period_start, a.period_end),
        ),
        (
            "抽样环节",
            a.stage
                .map_or("全部".to_string(), |s| s.label_zh().to_string()),
        ),
        (
            "食品分类",
            a.category_name.clone().unwrap_or_else(|| "全部".into()),
        ),
        ("发布日期", published_on.to_string()),
        ("合格样品", format!("{} 批次", a.qualified_count)),
        ("不合格样品", format!("{} 批次", a.unqualified_count)),
        ("声明", DISCLAIMER.to_string()),
        ("开放许可", super::OPEN_LICENCE.to_string()),
    ]
}

/// The workbook: 合格, 不合格 (a row per failed item) and 说明.
pub fn write_xlsx<W: Write>(
    out: W,
    a: &PublicAnnouncement,
    published_on: &str,
    qualified: &[PublicSample],
    unqualified: &[PublicSample],
) -> Result<W> {
    let sheets = [
        SheetSpec {
            name: "合格",
            headers: &HEADERS[1..17],
            widths: &WIDTHS[..16],
        },
        SheetSpec {
            name: "不合格",
            headers: &HEADERS[1..],
            widths: &WIDTHS,
        },
    ];
    let mut book = StreamedWorkbook::new(out, &sheets, &notes(a, published_on))?;
    for s in qualified {
        book.row(0, sample_cells(s))?;
    }
    for s in unqualified {
        for i in unqualified_lines(s) {
            book.row(1, sample_cells(s).into_iter().chain(item_cells(i)))?;
        }
    }
    book.finish()
}
