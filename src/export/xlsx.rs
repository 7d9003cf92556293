//! XLSX of a published issue: sheets 红榜 and 黑榜 (the entries, frozen header row, widths for
//! Chinese text) and 说明 (the issue, its criteria, the disclaimer, the licence).
//!
//! Memory: the list sheets are rust_xlsxwriter "constant memory" sheets with inline strings, so
//! while rows go in only the current row is held; earlier rows are spooled as sheet XML to an
//! anonymous temp file (the OS temp dir). At [`XlsxListWriter::finish`] each spool is copied
//! through a buffer into the archive (rust_xlsxwriter 0.80 and later; 0.79 read a sheet back
//! whole, 496 MB at 1,000,000 rows), and the archive is written as a stream with ZIP data
//! descriptors, so `finish` needs only `Write` and an HTTP download streams it directly. What
//! the format cannot do is send its first byte before the last row: the sheets are the
//! workbook's package parts, written when the workbook is saved.
//!
//! Text cells go through [`cell_text`]: neutralised, CR/CRLF written as LF.

use std::borrow::Cow;
use std::io::Write;

use rust_xlsxwriter::{Format, Workbook, Worksheet};

use super::cell::neutralise;
use super::progress::{self, Progress};
use super::rows::ListType;
use super::{
    entry_cells, inspection_cells, Cell, ExportEntry, ExportError, ExportInspection, ExportIssue,
    Result, ENTRY_HEADERS, INSPECTION_HEADERS,
};

/// Rows an XLSX sheet holds, header included.
const MAX_ROWS: u32 = 1_048_576;

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

pub struct XlsxListWriter {
    workbook: Workbook,
    /// 红榜, 黑榜, each with its next row.
    sheets: [(Worksheet, u32); 2],
    issue: ExportIssue,
    progress: Option<Progress>,
}

impl XlsxListWriter {
    pub fn new(issue: ExportIssue) -> Result<XlsxListWriter> {
        let mut workbook = Workbook::new();
        fast_deflate(&mut workbook);
        // The 榜单 column is the sheet itself.
        let mut sheet = |t: ListType| -> Result<(Worksheet, u32)> {
            let ws = data_sheet(&mut workbook, t.label_zh(), &ENTRY_HEADERS[1..], &WIDTHS)?;
            Ok((ws, 1))
        };
        let sheets = [sheet(ListType::Red)?, sheet(ListType::Black)?];
        Ok(XlsxListWriter {
            workbook,
            sheets,
            issue,
            progress: None,
        })
    }

    pub fn set_progress(&mut self, progress: Progress) {
        self.progress = Some(progress);
    }

    /// One entry, onto its list's sheet. Entries of each list must come in the order they are
    /// to appear (the read side orders by list and position); the lists may interleave.
    pub fn entry(&mut self, e: &ExportEntry) -> Result<()> {
        let (ws, row) = match e.list_type {
            ListType::Red => &mut self.sheets[0],
            ListType::Black => &mut self.sheets[1],
        };
        if *row >= MAX_ROWS {
            return Err(ExportError::TooManyRows(e.list_type.label_zh()));
        }
        write_row(ws, *row, entry_cells(e).into_iter().skip(1))?;
        *row += 1;
        progress::tick(&mut self.progress);
        Ok(())
    }

    /// Adds the 说明 sheet and writes the workbook to `out` (a file, a download's channel, or
    /// a `Vec` in tests).
    pub fn finish<W: Write + Send>(self, out: W) -> Result<W> {
        let XlsxListWriter {
            mut workbook,
            sheets,
            issue,
            mut progress,
        } = self;
        for (ws, _) in sheets {
            workbook.push_worksheet(ws);
        }
        workbook.push_worksheet(notes_sheet(&issue_notes(&issue))?);
        progress::done(&mut progress);
        save(workbook, out)
    }
}

/// Column widths of the 检查记录 sheet ([`INSPECTION_HEADERS`]).
const HISTORY_WIDTHS: [f64; 6] = [38.0, 12.0, 10.0, 10.0, 20.0, 60.0];

/// XLSX of an establishment's public history: a 检查记录 sheet (one row per published
/// inspection, frozen header) and 说明 (the establishment as listed publicly, the disclaimer,
/// the licence). Same memory profile as [`XlsxListWriter`].
pub struct XlsxHistoryWriter {
    workbook: Workbook,
    sheet: Worksheet,
    row: u32,
    establishment: Vec<(&'static str, String)>,
}

impl XlsxHistoryWriter {
    /// `establishment`: label / value rows for the 说明 sheet (public fields only).
    pub fn new(establishment: Vec<(&'static str, String)>) -> Result<XlsxHistoryWriter> {
        let mut workbook = Workbook::new();
        fast_deflate(&mut workbook);
        let sheet = data_sheet(
            &mut workbook,
            "检查记录",
            &INSPECTION_HEADERS,
            &HISTORY_WIDTHS,
        )?;
        Ok(XlsxHistoryWriter {
            workbook,
            sheet,
            row: 1,
            establishment,
        })
    }

    pub fn inspection(&mut self, i: &ExportInspection) -> Result<()> {
        if self.row >= MAX_ROWS {
            return Err(ExportError::TooManyRows("检查记录"));
        }
        write_row(&mut self.sheet, self.row, inspection_cells(i))?;
        self.row += 1;
        Ok(())
    }

    pub fn finish<W: Write + Send>(self, out: W) -> Result<W> {
        let XlsxHistoryWriter {
            mut workbook,
            sheet,
            mut establishment,
            ..
        } = self;
        workbook.push_worksheet(sheet);
        establishment.push(("声明", super::DISCLAIMER.to_string()));
        establishment.push(("开放许可", super::OPEN_LICENCE.to_string()));
        workbook.push_worksheet(notes_sheet(&establishment)?);
        save(workbook, out)
    }
}

/// Most of a big workbook's time goes into deflating the sheets' XML: level 2 takes about 0.57
/// of the default level's time for an 11% larger file (rust_xlsxwriter's measurements).
pub(crate) fn fast_deflate(workbook: &mut Workbook) {
    workbook.set_zip_compression_level(2);
}

pub(crate) fn save<W: Write + Send>(mut workbook: Workbook, mut out: W) -> Result<W> {
    workbook.save_to_writer(&mut out)?;
    Ok(out)
}

/// A constant-memory data sheet with a bold, frozen header row and column widths.
pub(crate) fn data_sheet(
    workbook: &mut Workbook,
    name: &str,
    headers: &[&str],
    widths: &[f64],
) -> Result<Worksheet> {
    let header = Format::new().set_bold();
    let mut ws = workbook.new_worksheet_with_constant_memory()?;
    ws.set_name(name)?;
    for (col, w) in widths.iter().enumerate() {
        ws.set_column_width(col as u16, *w)?;
    }
    for (col, h) in headers.iter().enumerate() {
        ws.write_string_with_format(0, col as u16, *h, &header)?;
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(ws)
}

/// One row of cells from column A.
pub(crate) fn write_row<'a>(
    ws: &mut Worksheet,
    row: u32,
    cells: impl IntoIterator<Item = Cell<'a>>,
) -> Result<()> {
    for (col, c) in cells.into_iter().enumerate() {
        let col = col as u16;
        match c {
            Cell::Text(t) => {
                ws.write_string(row, col, cell_text(&t).as_ref())?;
            }
            Cell::Int(n) => {
                ws.write_number(row, col, n as f64)?;
            }
            Cell::Float(x) => {
                ws.write_number(row, col, x)?;
            }
            Cell::Date(d) => {
                // Text, not an Excel serial: it reads the same in every program.
                ws.write_string(row, col, d.format("%Y-%m-%d").to_string())?;
            }
            Cell::Empty => {}
        }
    }
    Ok(())
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

/// The 说明 sheet: label / value rows.
pub(crate) fn notes_sheet(rows: &[(&'static str, String)]) -> Result<Worksheet> {
    let mut ws = Worksheet::new();
    ws.set_name("说明")?;
    ws.set_column_width(0, 14)?;
    ws.set_column_width(1, 90)?;
    let bold = Format::new().set_bold();
    let wrap = Format::new().set_text_wrap();
    for (r, (label, value)) in rows.iter().enumerate() {
        ws.write_string_with_format(r as u32, 0, *label, &bold)?;
        ws.write_string_with_format(r as u32, 1, cell_text(value).as_ref(), &wrap)?;
    }
    Ok(ws)
}
