//! An XLSX workbook streamed part by part, so a download starts before its rows are read.
//!
//! rust_xlsxwriter writes a workbook when it is saved, after the last row. Here it builds the
//! workbook's *template* instead: the data sheets with their frozen bold header rows and column
//! widths but no data, and the 说明 sheet whole. That small package is written out first, part
//! by part, except the data sheets; each data sheet is then written as its rows arrive: the
//! template's sheet XML up to the end of its header row, one `<row>` per data row (inline
//! strings, so no shared-string table has to be held), then the rest of the template's XML. The
//! archive is a stream with ZIP data descriptors, so only `Write` is needed and nothing but the
//! current row (and a 64 KiB buffer) is held, whatever the number of rows.
//!
//! The sheets stream one at a time: rows of a sheet that is already finished are refused
//! ([`ExportError::OutOfOrder`]); the read side orders rows by sheet. A sheet that gets no rows
//! is written at [`StreamedWorkbook::finish`] with its header only.
//!
//! Text cells go through [`cell_text`] (neutralised, CR/CRLF as LF) and are escaped for XML,
//! with the control characters XML cannot hold written as Excel's `_xHHHH_` escapes.

use std::io::{self, Cursor, Read, Write};

use rust_xlsxwriter::{Format, Workbook, Worksheet};
use zip::write::{SimpleFileOptions, StreamWriter};
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::{Cell, ExportError, Result};

/// Rows a sheet holds, header included.
pub const MAX_ROWS: u32 = 1_048_576;
/// Characters a cell holds (Excel's limit).
pub const MAX_CELL_CHARS: usize = 32_767;
/// How much sheet XML is gathered before it goes to the compressor.
const BUFFER: usize = 64 * 1024;

/// A data sheet: its name, header row and column widths (Excel's units: a digit's width; a
/// Chinese character takes about two).
pub struct SheetSpec<'a> {
    pub name: &'static str,
    pub headers: &'a [&'a str],
    pub widths: &'a [f64],
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Waiting,
    Open,
    Written,
}

struct DataSheet {
    /// 1-based, in the specs' order.
    index: usize,
    name: &'static str,
    part: String,
    /// The template's XML up to the end of its header row.
    head: Vec<u8>,
    /// From `</sheetData>` to the end.
    tail: Vec<u8>,
    state: State,
    /// The next row's number (1-based as in the XML; the header is row 1).
    next: u32,
}

pub struct StreamedWorkbook<W: Write> {
    zip: ZipWriter<StreamWriter<W>>,
    sheets: Vec<DataSheet>,
    open: Option<usize>,
    /// Column letters, A, B, …
    columns: Vec<String>,
    buf: Vec<u8>,
}

fn options() -> SimpleFileOptions {
    // Level 2: about 0.57 of the default level's time for an 11% larger file (rust_xlsxwriter's
    // measurements, and its choice for big sheets). large_file: sizes are unknown when a
    // streamed entry starts, so allow ZIP64.
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(2))
        .large_file(true)
}

fn template_error(what: &str) -> ExportError {
    ExportError::Io(io::Error::other(format!("xlsx template: {what}")))
}

/// The letters of a 0-based column: A … Z, AA …
fn column_name(mut col: usize) -> String {
    let mut name = Vec::new();
    loop {
        name.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    name.reverse();
    String::from_utf8(name).expect("ASCII")
}

impl<W: Write> StreamedWorkbook<W> {
    /// Writes the workbook's fixed parts to `out` at once: everything but the data sheets'
    /// rows. `notes` are the 说明 sheet's label / value rows (it comes after the data sheets).
    pub fn new(
        out: W,
        sheets: &[SheetSpec<'_>],
        notes: &[(&'static str, String)],
    ) -> Result<StreamedWorkbook<W>> {
        let mut template = Workbook::new();
        for s in sheets {
            template.push_worksheet(data_sheet(s)?);
        }
        template.push_worksheet(notes_sheet(notes)?);
        let bytes = template.save_to_buffer()?;
        let mut archive = ZipArchive::new(Cursor::new(bytes))?;

        let mut data: Vec<DataSheet> = Vec::with_capacity(sheets.len());
        let mut zip = ZipWriter::new_stream(out);
        for i in 0..archive.len() {
            let mut part = archive.by_index(i)?;
            let name = part.name().to_string();
            let mut xml = Vec::with_capacity(part.size() as usize);
            part.read_to_end(&mut xml)?;
            // rust_xlsxwriter names the worksheets' parts sheet1.xml, sheet2.xml, … in order.
            let index = name
                .strip_prefix("xl/worksheets/sheet")
                .and_then(|n| n.strip_suffix(".xml"))
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| (1..=sheets.len()).contains(n));
            match index {
                Some(n) => {
                    let (head, tail) = split_sheet(&xml)?;
                    data.push(DataSheet {
                        index: n,
                        name: sheets[n - 1].name,
                        part: name,
                        head,
                        tail,
                        state: State::Waiting,
                        next: 2,
                    });
                }
                None => {
                    zip.start_file(name, options())?;
                    zip.write_all(&xml)?;
                }
            }
        }
        // In the specs' order, whatever the archive's.
        data.sort_by_key(|d| d.index);
        if data.len() != sheets.len() {
            return Err(template_error("a data sheet is missing"));
        }
        let width = sheets.iter().map(|s| s.headers.len()).max().unwrap_or(0);
        Ok(StreamedWorkbook {
            zip,
            sheets: data,
            open: None,
            columns: (0..width).map(column_name).collect(),
            buf: Vec::with_capacity(BUFFER + 4096),
        })
    }

    /// One row onto sheet `sheet` (its index in the specs), from column A.
    pub fn row<'a>(
        &mut self,
        sheet: usize,
        cells: impl IntoIterator<Item = Cell<'a>>,
    ) -> Result<()> {
        if self.open != Some(sheet) {
            self.start(sheet)?;
        }
        let s = &mut self.sheets[sheet];
        if s.next > MAX_ROWS {
            return Err(ExportError::TooManyRows(s.name));
        }
        let r = s.next;
        s.next += 1;
        let buf = &mut self.buf;
        write!(buf, "<row r=\"{r}\">")?;
        for (col, cell) in cells.into_iter().enumerate() {
            let Some(letters) = self.columns.get(col) else {
                return Err(template_error("more cells than headers"));
            };
            match cell {
                Cell::Text(t) => text_cell(buf, letters, r, &super::xlsx::cell_text(&t))?,
                Cell::Int(n) => write!(buf, "<c r=\"{letters}{r}\"><v>{n}</v></c>")?,
                // Excel holds no NaN or infinity: such a number is left out.
                Cell::Float(x) if x.is_finite() => {
                    write!(buf, "<c r=\"{letters}{r}\"><v>{x}</v></c>")?
                }
                Cell::Float(_) | Cell::Empty => {}
                // Text, not an Excel serial: it reads the same in every program.
                Cell::Date(d) => {
                    text_cell(buf, letters, r, &d.format("%Y-%m-%d").to_string())?;
                }
            }
        }
        buf.extend_from_slice(b"</row>");
        if self.buf.len() >= BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.zip.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    fn start(&mut self, sheet: usize) -> Result<()> {
        if self.sheets[sheet].state == State::Written {
            return Err(ExportError::OutOfOrder(
                "an XLSX sheet's rows came after another sheet's",
            ));
        }
        self.close()?;
        let s = &mut self.sheets[sheet];
        self.zip.start_file(s.part.as_str(), options())?;
        self.zip.write_all(&s.head)?;
        s.state = State::Open;
        self.open = Some(sheet);
        Ok(())
    }

    /// Ends the open sheet, if any.
    fn close(&mut self) -> Result<()> {
        if let Some(i) = self.open.take() {
            self.flush()?;
            let s = &mut self.sheets[i];
            self.zip.write_all(&s.tail)?;
            s.state = State::Written;
        }
        Ok(())
    }

    /// Ends the last sheet, writes the sheets that got no rows, and the archive's directory.
    pub fn finish(mut self) -> Result<W> {
        self.close()?;
        for s in &mut self.sheets {
            if s.state == State::Waiting {
                self.zip.start_file(s.part.as_str(), options())?;
                self.zip.write_all(&s.head)?;
                self.zip.write_all(&s.tail)?;
                s.state = State::Written;
            }
        }
        Ok(self.zip.finish()?.into_inner())
    }
}

/// Splits a template sheet's XML after its header row (before `</sheetData>`), leaving out
/// the `<dimension>` element: it would name the header row alone, and readers that trust it
/// (openpyxl's read-only mode) would stop there. The element is optional.
fn split_sheet(xml: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let text = std::str::from_utf8(xml).map_err(|_| template_error("sheet is not UTF-8"))?;
    let end = text
        .find("</sheetData>")
        .ok_or_else(|| template_error("no sheetData"))?;
    let mut head = text[..end].to_string();
    if let Some(start) = head.find("<dimension ") {
        let stop = head[start..]
            .find("/>")
            .ok_or_else(|| template_error("dimension"))?;
        head.replace_range(start..start + stop + 2, "");
    }
    Ok((head.into_bytes(), text.as_bytes()[end..].to_vec()))
}

/// An inline-string cell.
fn text_cell(buf: &mut Vec<u8>, letters: &str, row: u32, text: &str) -> Result<()> {
    if text.chars().count() > MAX_CELL_CHARS {
        return Err(ExportError::CellTooLong);
    }
    write!(buf, "<c r=\"{letters}{row}\" t=\"inlineStr\"><is>")?;
    // Leading or trailing spaces survive only with xml:space (as Excel writes them).
    let spaced = text.starts_with(char::is_whitespace) || text.ends_with(char::is_whitespace);
    buf.extend_from_slice(if spaced {
        b"<t xml:space=\"preserve\">".as_slice()
    } else {
        b"<t>".as_slice()
    });
    escape(buf, text);
    buf.extend_from_slice(b"</t></is></c>");
    Ok(())
}

/// XML text escaping, plus Excel's `_xHHHH_` for the characters XML 1.0 cannot hold; a literal
/// `_xHHHH_` in the text gets its underscore escaped (`_x005F_`), so it reads back as typed.
fn escape(buf: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut plain = 0;
    for (i, c) in text.char_indices() {
        let sub: Option<std::borrow::Cow<'static, str>> = match c {
            '&' => Some("&amp;".into()),
            '<' => Some("&lt;".into()),
            '>' => Some("&gt;".into()),
            '\t' | '\n' => None,
            '\u{0}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}' => {
                Some(format!("_x{:04X}_", c as u32).into())
            }
            '_' if is_escape_at(&bytes[i..]) => Some("_x005F_".into()),
            _ => None,
        };
        if let Some(s) = sub {
            buf.extend_from_slice(&bytes[plain..i]);
            buf.extend_from_slice(s.as_bytes());
            plain = i + c.len_utf8();
        }
    }
    buf.extend_from_slice(&bytes[plain..]);
}

/// Whether `b` starts with `_xHHHH_`.
fn is_escape_at(b: &[u8]) -> bool {
    b.len() >= 7 && b[1] == b'x' && b[2..6].iter().all(u8::is_ascii_hexdigit) && b[6] == b'_'
}

/// A template data sheet: bold header row, frozen, column widths.
fn data_sheet(spec: &SheetSpec<'_>) -> Result<Worksheet> {
    let header = Format::new().set_bold();
    let mut ws = Worksheet::new();
    ws.set_name(spec.name)?;
    for (col, w) in spec.widths.iter().enumerate() {
        ws.set_column_width(col as u16, *w)?;
    }
    for (col, h) in spec.headers.iter().enumerate() {
        ws.write_string_with_format(0, col as u16, *h, &header)?;
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(ws)
}

/// The 说明 sheet: label / value rows.
fn notes_sheet(rows: &[(&'static str, String)]) -> Result<Worksheet> {
    let mut ws = Worksheet::new();
    ws.set_name("说明")?;
    ws.set_column_width(0, 14)?;
    ws.set_column_width(1, 90)?;
    let bold = Format::new().set_bold();
    let wrap = Format::new().set_text_wrap();
    for (r, (label, value)) in rows.iter().enumerate() {
        ws.write_string_with_format(r as u32, 0, *label, &bold)?;
        ws.write_string_with_format(r as u32, 1, super::xlsx::cell_text(value).as_ref(), &wrap)?;
    }
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use calamine::{Data, Reader, Xlsx};

    use super::*;

    const HEADERS: [&str; 3] = ["名称", "数量", "经度"];
    const WIDTHS: [f64; 3] = [20.0, 8.0, 12.0];

    fn specs() -> [SheetSpec<'static>; 2] {
        [
            SheetSpec {
                name: "甲",
                headers: &HEADERS,
                widths: &WIDTHS,
            },
            SheetSpec {
                name: "乙",
                headers: &HEADERS,
                widths: &WIDTHS,
            },
        ]
    }

    fn notes() -> Vec<(&'static str, String)> {
        vec![("声明", "仅供参考".to_string())]
    }

    fn read(bytes: Vec<u8>, sheet: &str) -> Vec<Vec<Data>> {
        let mut wb = Xlsx::new(Cursor::new(bytes)).unwrap();
        let range = wb.worksheet_range(sheet).unwrap();
        range.rows().map(|r| r.to_vec()).collect()
    }

    #[test]
    fn column_names_run_past_z() {
        let names: Vec<String> = [0, 1, 25, 26, 27, 51, 52, 701, 702]
            .into_iter()
            .map(column_name)
            .collect();
        assert_eq!(names, ["A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]);
    }

    #[test]
    fn the_fixed_parts_go_out_before_any_row() {
        /// A writer whose bytes can be looked at while the workbook still holds it.
        #[derive(Clone, Default)]
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let out = Shared::default();
        let book = StreamedWorkbook::new(out.clone(), &specs(), &notes()).unwrap();
        // Written straight through: the content types, workbook and 说明 parts are in `out`
        // already, before any row.
        let seen = out.0.lock().unwrap().clone();
        assert!(seen.starts_with(b"PK\x03\x04"), "a local file header first");
        let text = String::from_utf8_lossy(&seen);
        assert!(text.contains("[Content_Types].xml") && text.contains("xl/workbook.xml"));
        assert!(
            !text.contains("xl/worksheets/sheet1.xml"),
            "no data sheet yet"
        );
        drop(book);
    }

    #[test]
    fn rows_stream_into_their_sheets_and_read_back_exactly() {
        let mut book = StreamedWorkbook::new(Vec::new(), &specs(), &notes()).unwrap();
        let tricky = "a & b <c> \"d\" _x0041_ e\u{1}f\u{b}";
        // The second sheet first, as the black list comes first.
        book.row(
            1,
            [Cell::text(tricky), Cell::Int(-7), Cell::Float(117.409_1)],
        )
        .unwrap();
        book.row(
            1,
            [Cell::text("  留空格 "), Cell::Empty, Cell::Float(f64::NAN)],
        )
        .unwrap();
        book.row(0, [Cell::text("=1+1"), Cell::Int(3)]).unwrap();
        let bytes = book.finish().unwrap();
        let b = read(bytes.clone(), "乙");
        assert_eq!(
            b[0],
            HEADERS.map(|h| Data::String(h.into())).to_vec(),
            "the template's header row"
        );
        assert_eq!(
            b[1],
            vec![
                Data::String("a & b <c> \"d\" _x0041_ e\u{1}f\u{b}".into()),
                Data::Float(-7.0),
                Data::Float(117.409_1),
            ]
        );
        assert_eq!(b[2][0], Data::String("  留空格 ".into()));
        assert_eq!(b[2][1], Data::Empty);
        assert_eq!(b[2][2], Data::Empty, "no NaN in a sheet");
        let a = read(bytes.clone(), "甲");
        assert_eq!(a[1][0], Data::String("'=1+1".into()), "neutralised");
        let mut wb = Xlsx::new(Cursor::new(bytes)).unwrap();
        assert_eq!(wb.sheet_names(), vec!["甲", "乙", "说明"]);
        let n = wb.worksheet_range("说明").unwrap();
        assert_eq!(n.get((0, 1)), Some(&Data::String("仅供参考".into())));
    }

    #[test]
    fn a_sheet_cannot_come_back_after_another() {
        let mut book = StreamedWorkbook::new(Vec::new(), &specs(), &notes()).unwrap();
        book.row(0, [Cell::text("x")]).unwrap();
        book.row(1, [Cell::text("y")]).unwrap();
        assert!(matches!(
            book.row(0, [Cell::text("z")]),
            Err(ExportError::OutOfOrder(_))
        ));
    }

    #[test]
    fn sheets_without_rows_keep_their_header_and_frozen_pane() {
        let bytes = StreamedWorkbook::new(Vec::new(), &specs(), &notes())
            .unwrap()
            .finish()
            .unwrap();
        for s in ["甲", "乙"] {
            assert_eq!(read(bytes.clone(), s).len(), 1, "{s}: the header only");
        }
        let mut zip = ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut xml = String::new();
        zip.by_name("xl/worksheets/sheet2.xml")
            .unwrap()
            .read_to_string(&mut xml)
            .unwrap();
        assert!(xml.contains(r#"state="frozen""#), "{xml}");
        assert!(!xml.contains("<dimension"), "no stale dimension");
    }

    #[test]
    fn too_long_text_and_too_many_cells_are_refused() {
        let mut book = StreamedWorkbook::new(Vec::new(), &specs(), &notes()).unwrap();
        let long = "长".repeat(MAX_CELL_CHARS + 1);
        assert!(matches!(
            book.row(0, [Cell::text(&long)]),
            Err(ExportError::CellTooLong)
        ));
        let cells = (0..4).map(|_| Cell::Int(1));
        assert!(book.row(0, cells).is_err());
    }

    #[test]
    fn escape_keeps_plain_text_and_marks_what_xml_cannot_hold() {
        let mut b = Vec::new();
        escape(&mut b, "甲\t乙\n_x00e9_ _xZZ_ \u{0}");
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "甲\t乙\n_x005F_x00e9_ _xZZ_ _x0000_"
        );
    }
}
