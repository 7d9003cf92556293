//! XLSX of a published issue: sheets 红榜 and 黑榜 (the entries, frozen header row, widths for
//! Chinese text) and 说明 (the issue, its criteria, the disclaimer, the licence); and of an
//! establishment's public history.
//!
//! Both stream ([`super::workbook`]): the workbook's fixed parts go out first, then each sheet
//! row by row as the entries are read, so a download's first byte comes before the rows are
//! read and memory holds one row whatever the issue's size. Entries come black list first
//! (the read side's order), so 黑榜's part precedes 红榜's in the archive; the workbook's own
//! order (红榜, 黑榜, 说明) is what readers show.
//!
//! Text cells go through [`cell_text`]: neutralised, CR/CRLF written as LF.

use std::borrow::Cow;
use std::io::Write;

use super::cell::neutralise;
use super::progress::{self, Progress};
use super::rows::ListType;
use super::workbook::{SheetSpec, StreamedWorkbook};
use super::{
    entry_cells, inspection_cells, ExportEntry, ExportInspection, ExportIssue, Result,
    ENTRY_HEADERS, INSPECTION_HEADERS,
};

/// Column widths in Excel's units (a digit's width; a Chinese character takes about two).
const WIDTHS: [f64; 18] = [
    6.0,  // 序号
    38.0, // 主体编号 (a UUID)
    26.0, // 牌匾名称
    32.0, // 营业执照名称
    20.0, // 许可证编号
    44.0, // 经营地址
    14.0, // 乡镇街道
    14.0, // 业态
    12.0, // 检查日期
    10.0, // 检查结果
    44.0, // 上榜理由
    32.0, // 处理措施
    44.0, // 整改后信息
    12.0, // 整改日期
    32.0, // 撤销说明
    12.0, // 撤销日期
    12.0, // 经度
    12.0, // 纬度
];

pub struct XlsxListWriter<W: Write> {
    book: StreamedWorkbook<W>,
    progress: Option<Progress>,
}

impl<W: Write> XlsxListWriter<W> {
    /// Writes the workbook's fixed parts (with the 说明 sheet) to `out` at once.
    pub fn new(out: W, issue: &ExportIssue) -> Result<XlsxListWriter<W>> {
        // The 榜单 column is the sheet itself.
        let sheet = |t: ListType| SheetSpec {
            name: t.label_zh(),
            headers: &ENTRY_HEADERS[1..],
            widths: &WIDTHS,
        };
        let book = StreamedWorkbook::new(
            out,
            &[sheet(ListType::Red), sheet(ListType::Black)],
            &issue_notes(issue),
        )?;
        Ok(XlsxListWriter {
            book,
            progress: None,
        })
    }

    pub fn set_progress(&mut self, progress: Progress) {
        self.progress = Some(progress);
    }

    /// One entry, onto its list's sheet. Entries of each list must come together, in the
    /// order they are to appear (the read side orders by list and position).
    pub fn entry(&mut self, e: &ExportEntry) -> Result<()> {
        let sheet = match e.list_type {
            ListType::Red => 0,
            ListType::Black => 1,
        };
        self.book.row(sheet, entry_cells(e).into_iter().skip(1))?;
        progress::tick(&mut self.progress);
        Ok(())
    }

    /// Ends the sheets and the archive; gives `out` back.
    pub fn finish(mut self) -> Result<W> {
        progress::done(&mut self.progress);
        self.book.finish()
    }
}

/// Column widths of the 检查记录 sheet ([`INSPECTION_HEADERS`]).
const HISTORY_WIDTHS: [f64; 6] = [38.0, 12.0, 10.0, 10.0, 20.0, 60.0];

/// XLSX of an establishment's public history: a 检查记录 sheet (one row per published
/// inspection, frozen header) and 说明 (the establishment as listed publicly, the disclaimer,
/// the licence). Streams as [`XlsxListWriter`] does.
pub struct XlsxHistoryWriter<W: Write> {
    book: StreamedWorkbook<W>,
}

impl<W: Write> XlsxHistoryWriter<W> {
    /// `establishment`: label / value rows for the 说明 sheet (public fields only).
    pub fn new(
        out: W,
        mut establishment: Vec<(&'static str, String)>,
    ) -> Result<XlsxHistoryWriter<W>> {
        establishment.push(("声明", super::DISCLAIMER.to_string()));
        establishment.push(("开放许可", super::OPEN_LICENCE.to_string()));
        let spec = SheetSpec {
            name: "检查记录",
            headers: &INSPECTION_HEADERS,
            widths: &HISTORY_WIDTHS,
        };
        let book = StreamedWorkbook::new(out, &[spec], &establishment)?;
        Ok(XlsxHistoryWriter { book })
    }

    pub fn inspection(&mut self, i: &ExportInspection) -> Result<()> {
        self.book.row(0, inspection_cells(i))
    }

    pub fn finish(self) -> Result<W> {
        self.book.finish()
    }
}

/// A text cell as written: neutralised, and line breaks as Excel makes them (LF). A CR would be
/// stored as the escape `_x000D_`, which Excel and calamine decode but openpyxl and others
/// show literally.
pub fn cell_text(text: &str) -> Cow<'_, str> {
    let t = neutralise(text);
    if t.contains('\r') {
        Cow::Owned(t.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        t
    }
}

/// An issue's 说明 rows.
fn issue_notes(issue: &ExportIssue) -> Vec<(&'static str, String)> {
    let period = format!(
        "{} 至 {}",
        issue.period_start.format("%Y-%m-%d"),
        issue.period_end.format("%Y-%m-%d")
    );
    vec![
        ("期号", issue.issue_no.clone()),
        ("版次", format!("第{}版", issue.revision)),
        ("修订说明", issue.revision_note.clone().unwrap_or_default()),
        ("标题", issue.title.clone()),
        ("主题", issue.theme.clone()),
        ("辖区", issue.district.clone()),
        ("检查期间", period),
        (
            "发布日期",
            issue.published_on.format("%Y-%m-%d").to_string(),
        ),
        ("上榜标准", issue.criteria.clone()),
        ("声明", super::DISCLAIMER.to_string()),
        ("开放许可", super::OPEN_LICENCE.to_string()),
    ]
}
