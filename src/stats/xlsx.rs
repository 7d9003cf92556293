//! The XLSX files of the statistics (one sheet per table) and of the 3·15 活动统计表 (exactly
//! the form's layout). Pure: figures in, bytes out. Every text cell goes through
//! [`neutralise`]: unit names, contacts and towns are typed by people.

use rust_xlsxwriter::{Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError};

use super::{Count, Stats, Values, FORM, FORM_HEADER_FIELDS, FORM_TITLE};
use crate::export::cell::neutralise;

fn header_format() -> Format {
    Format::new()
        .set_bold()
        .set_border(FormatBorder::Thin)
        .set_align(FormatAlign::Center)
        .set_align(FormatAlign::VerticalCenter)
}

fn cell_format() -> Format {
    Format::new().set_border(FormatBorder::Thin)
}

fn text(sheet: &mut Worksheet, row: u32, col: u16, s: &str, f: &Format) -> Result<(), XlsxError> {
    sheet.write_string_with_format(row, col, neutralise(s), f)?;
    Ok(())
}

/// A sheet of (label, count) rows under a two-column header, frozen below the header.
fn table(
    workbook: &mut Workbook,
    name: &str,
    headers: [&str; 2],
    rows: &[(String, i64)],
) -> Result<(), XlsxError> {
    let (h, c) = (header_format(), cell_format());
    let sheet = workbook.add_worksheet();
    sheet.set_name(name)?;
    sheet.set_column_width(0, 28)?;
    sheet.set_column_width(1, 12)?;
    for (i, label) in headers.iter().enumerate() {
        sheet.write_string_with_format(0, i as u16, *label, &h)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    for (i, (label, n)) in rows.iter().enumerate() {
        let r = i as u32 + 1;
        text(sheet, r, 0, label, &c)?;
        sheet.write_number_with_format(r, 1, *n as f64, &c)?;
    }
    Ok(())
}

fn counts(cs: &[Count]) -> Vec<(String, i64)> {
    cs.iter().map(|c| (c.key.clone(), c.count)).collect()
}

/// The statistics of a range: sheets 检查结果, 按街道覆盖, 按风险等级覆盖, 红黑榜, 整改, 复查
/// (the same figures as `GET /api/v1/stats`), each headed 项目 | 数量 (or 街道/乡镇 |
/// 户数, 风险等级 | 户数). The first sheet's first row names the range.
pub fn stats_xlsx(s: &Stats) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let i = &s.inspections;
    let range = format!("{} 至 {}", s.from, s.to);
    table(
        &mut wb,
        "检查结果",
        ["项目", "数量"],
        &[
            ("提交检查数".into(), i.submitted),
            ("待审核".into(), i.by_review_state.submitted),
            ("审核通过".into(), i.by_review_state.approved),
            ("退回".into(), i.by_review_state.returned),
            ("驳回".into(), i.by_review_state.rejected),
            ("审核通过：符合".into(), i.approved_by_result.compliant),
            (
                "审核通过：基本符合".into(),
                i.approved_by_result.basically_compliant,
            ),
            (
                "审核通过：不符合".into(),
                i.approved_by_result.non_compliant,
            ),
        ],
    )?;
    // The range, beside the header (D1:E1) so it is never read as a figure.
    if let Ok(sheet) = wb.worksheet_from_name("检查结果") {
        sheet.write_string(0, 3, "统计期间")?;
        sheet.write_string(0, 4, &range)?;
    }
    let mut town = counts(&s.coverage.by_town);
    town.push(("合计".into(), s.coverage.establishments));
    table(&mut wb, "按街道覆盖", ["街道/乡镇", "户数"], &town)?;
    let mut grade = counts(&s.coverage.by_risk_grade);
    grade.push(("合计".into(), s.coverage.establishments));
    table(&mut wb, "按风险等级覆盖", ["风险等级", "户数"], &grade)?;
    table(
        &mut wb,
        "红黑榜",
        ["榜单", "条目数"],
        &[
            ("红榜".into(), s.list_entries.red),
            ("黑榜".into(), s.list_entries.black),
        ],
    )?;
    let r = &s.rectifications;
    table(
        &mut wb,
        "整改",
        ["项目", "数量"],
        &[
            ("责令整改".into(), r.opened),
            ("整改完成".into(), r.closed),
            ("按期整改完成".into(), r.closed_on_time),
            ("复查不合格移交".into(), r.escalated),
        ],
    )?;
    table(
        &mut wb,
        "复查",
        ["项目", "数量"],
        &[
            ("复查任务".into(), s.rechecks.created),
            ("已复查".into(), s.rechecks.done),
        ],
    )?;
    wb.save_to_buffer()
}

/// Who filled a form (the header fields); for the total, the unit is 合计 and the contact
/// fields are empty.
#[derive(Debug, Clone, Copy)]
pub struct FormHeader<'a> {
    pub unit: &'a str,
    pub contact_name: &'a str,
    pub contact_phone: &'a str,
}

/// The form's sheet name.
pub const FORM_SHEET: &str = "3·15活动统计表";

/// The column headers of the form's table.
pub const FORM_COLUMNS: [&str; 4] = ["序号", "统计项目", "单位", "数量"];

/// The printed label of a row: the sub-row reads 其中：主题宣传活动.
pub fn printed_label(r: &super::FormRow) -> String {
    match r.parent {
        Some(_) => format!("其中：{}", r.label),
        None => r.label.to_string(),
    }
}

/// The 3·15 活动统计表 of one unit or of the total, in the form's layout:
/// row 1 the title (merged A:D); rows 2–4 填报单位, 联系人, 电话 (label in A, value merged
/// B:D); row 5 the headers 序号 | 统计项目 | 单位 | 数量; rows 6–20 the rows of [`FORM`] in
/// order, the sub-row (no number) under row 1. A row `values` lacks reads 0.
pub fn form_xlsx(header: FormHeader<'_>, values: &Values) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let (h, c) = (header_format(), cell_format());
    let title = Format::new()
        .set_bold()
        .set_font_size(16)
        .set_align(FormatAlign::Center)
        .set_align(FormatAlign::VerticalCenter);
    let sheet = wb.add_worksheet();
    sheet.set_name(FORM_SHEET)?;
    for (col, width) in [(0u16, 8.0), (1, 44.0), (2, 10.0), (3, 14.0)] {
        sheet.set_column_width(col, width)?;
    }
    sheet.set_row_height(0, 30)?;
    sheet.merge_range(0, 0, 0, 3, FORM_TITLE, &title)?;
    let fields = [header.unit, header.contact_name, header.contact_phone];
    for (i, (label, value)) in FORM_HEADER_FIELDS.iter().zip(fields).enumerate() {
        let r = 1 + i as u32;
        sheet.write_string_with_format(r, 0, *label, &h)?;
        sheet.merge_range(r, 1, r, 3, &neutralise(value), &c)?;
    }
    for (col, label) in FORM_COLUMNS.iter().enumerate() {
        sheet.write_string_with_format(4, col as u16, *label, &h)?;
    }
    for (i, r) in FORM.iter().enumerate() {
        let row = 5 + i as u32;
        match r.number {
            Some(n) => sheet.write_number_with_format(row, 0, f64::from(n), &c)?,
            None => sheet.write_blank(row, 0, &c)?,
        };
        sheet.write_string_with_format(row, 1, printed_label(r), &c)?;
        sheet.write_string_with_format(row, 2, r.unit, &c)?;
        let n = values.get(r.code).copied().unwrap_or(0);
        sheet.write_number_with_format(row, 3, n as f64, &c)?;
    }
    wb.save_to_buffer()
}
