//! Lab result items from an uploaded CSV (UTF-8 with or without BOM, or GBK/GB18030) or XLSX
//! file: one item per row under a header row, with every cell-level problem tied to the row
//! number the lab sees in Excel/WPS.
//!
//! The file-level guards are the registry import's (`establishment::import`): format sniffing
//! and text decoding, the XLSX unpacking limits checked before calamine opens anything (zip
//! bombs), Excel's column limit, and `catch_unwind` around third-party XLSX decoding. Rows
//! are read streaming and the read stops past `max_rows`.
//!
//! Columns (Chinese or English headers; `*` and `（必填）` markers ignored): 检验项目 `name`,
//! 检验结果 `value`, 单项判定 `verdict` are required; 计量单位 `unit`, 标准指标 `limit`,
//! 判定依据 `standard`, 检验方法 `method`, 微生物 `microbiological` (是/否, blank = 否) are
//! optional. The items' own checks (lengths, the overall verdict) are
//! [`super::results::check`]'s; [`Parsed::row_of`] maps its item index back to a row.

use super::results::{Item, Verdict};
use crate::establishment::import::{
    read_rows, render_number, strip_header, unwrap_formula_text, Cell, Format, ImportError,
    RowProblem, RowSink, MAX_COLUMNS, MAX_HEADER_SEARCH,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Name,
    Value,
    Unit,
    Limit,
    Standard,
    Method,
    Verdict,
    Microbiological,
}

/// (column, canonical name, Chinese headers accepted, English aliases).
const COLUMNS: [(Col, &str, &[&str], &[&str]); 8] = [
    (
        Col::Name,
        "name",
        &["检验项目", "检测项目", "项目名称", "项目"],
        &["item"],
    ),
    (
        Col::Value,
        "value",
        &["检验结果", "检测结果", "实测值", "结果"],
        &["result"],
    ),
    (Col::Unit, "unit", &["计量单位", "单位"], &[]),
    (
        Col::Limit,
        "limit",
        &["标准指标", "标准要求", "标准限值", "限量", "技术要求"],
        &[],
    ),
    (
        Col::Standard,
        "standard",
        &["判定依据", "判定标准", "标准依据"],
        &[],
    ),
    (
        Col::Method,
        "method",
        &["检验方法", "检测方法", "检验依据", "检测依据"],
        &[],
    ),
    (
        Col::Verdict,
        "verdict",
        &["单项判定", "单项结论", "结果判定", "判定"],
        &[],
    ),
    (
        Col::Microbiological,
        "microbiological",
        &["微生物", "微生物项目", "是否微生物项目"],
        &["micro"],
    ),
];

const REQUIRED: [Col; 3] = [Col::Name, Col::Value, Col::Verdict];

fn name_of(col: Col) -> &'static str {
    COLUMNS.iter().find(|c| c.0 == col).map_or("", |c| c.1)
}

fn match_column(text: &str) -> Option<Col> {
    let s = strip_header(text);
    let en = s.to_ascii_lowercase();
    COLUMNS
        .iter()
        .find(|(_, name, zh, aliases)| {
            zh.contains(&s) || *name == en || aliases.contains(&en.as_str())
        })
        .map(|c| c.0)
}

/// One data row: the item when the row could be read, with the problems it has.
#[derive(Debug, Clone)]
pub struct ParsedRow {
    /// Spreadsheet row number as the lab sees it.
    pub row: u32,
    /// `None` when a required cell is missing or unreadable (see `problems`).
    pub item: Option<Item>,
    pub problems: Vec<RowProblem>,
}

/// A parsed file.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub format: Format,
    pub header_row: u32,
    pub rows: Vec<ParsedRow>,
    /// Non-blank header cells that matched no column (ignored), in file order.
    pub unknown_columns: Vec<String>,
}

impl Parsed {
    /// Every row's problems, in row order.
    pub fn problems(&self) -> Vec<RowProblem> {
        self.rows
            .iter()
            .flat_map(|r| r.problems.iter().cloned())
            .collect()
    }

    /// The items, when every row could be read.
    pub fn items(&self) -> Option<Vec<Item>> {
        self.rows.iter().map(|r| r.item.clone()).collect()
    }

    /// The row of the `index`th item (as [`Parsed::items`] lists them).
    pub fn row_of(&self, index: usize) -> Option<u32> {
        self.rows.get(index).map(|r| r.row)
    }
}

struct Header {
    row: u32,
    /// Column per cell index; the header text per cell index.
    cols: Vec<Option<(Col, String)>>,
}

struct Rows {
    max_rows: usize,
    /// Non-blank rows above the header, while it is looked for.
    seen_before_header: usize,
    header: Option<Header>,
    unknown: Vec<String>,
    rows: Vec<ParsedRow>,
}

/// What one row's cells give, before they make an item.
#[derive(Default)]
struct Fields {
    text: [Option<String>; 7],
    microbiological: bool,
}

fn slot(col: Col) -> usize {
    match col {
        Col::Name => 0,
        Col::Value => 1,
        Col::Unit => 2,
        Col::Limit => 3,
        Col::Standard => 4,
        Col::Method => 5,
        Col::Verdict | Col::Microbiological => 6,
    }
}

fn cell_string(cell: Cell<'_>) -> Result<Option<String>, (&'static str, String)> {
    match cell {
        Cell::Empty => Ok(None),
        Cell::Text(s) => {
            let t = unwrap_formula_text(s.trim());
            Ok((!t.is_empty()).then(|| t.to_string()))
        }
        Cell::Int(i) => Ok(Some(i.to_string())),
        Cell::Number(f) => Ok(Some(render_number(f))),
        Cell::Bool(b) => Ok(Some(if b { "是" } else { "否" }.to_string())),
        Cell::Date => Err((
            "unexpected_date",
            "the spreadsheet turned this value into a date; format the cell as text and type it again"
                .to_string(),
        )),
        Cell::Error(e) => Err((
            "cell_error",
            format!("the cell shows the spreadsheet error {e}"),
        )),
    }
}

fn parse_yes_no(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "是" | "y" | "yes" | "true" | "1" | "√" => Some(true),
        "否" | "n" | "no" | "false" | "0" | "/" => Some(false),
        _ => None,
    }
}

impl Rows {
    fn feed<'c>(
        &mut self,
        row: u32,
        cells: impl Iterator<Item = (usize, Cell<'c>)>,
    ) -> Result<(), ImportError> {
        let Some(header) = &self.header else {
            return self.look_for_header(row, cells);
        };
        let mut fields = Fields::default();
        let mut problems = Vec::new();
        let mut any = false;
        for (i, cell) in cells {
            let Some(Some((col, text))) = header.cols.get(i) else {
                continue;
            };
            if cell.is_blank() {
                continue;
            }
            any = true;
            let mut problem = |code: &str, message: String| {
                problems.push(RowProblem {
                    row,
                    column: Some(text.clone()),
                    code: code.to_string(),
                    message,
                })
            };
            let value = match cell_string(cell) {
                Ok(v) => v,
                Err((code, message)) => {
                    problem(code, message);
                    continue;
                }
            };
            if *col == Col::Microbiological {
                match value.as_deref().map(parse_yes_no) {
                    Some(Some(b)) => fields.microbiological = b,
                    Some(None) => problem(
                        "invalid_yes_no",
                        format!(
                            "{value:?} is not 是 or 否",
                            value = value.unwrap_or_default()
                        ),
                    ),
                    None => {}
                }
            } else {
                fields.text[slot(*col)] = value;
            }
        }
        // Blank rows, and notes outside the table's columns.
        if !any {
            return Ok(());
        }
        if self.rows.len() >= self.max_rows {
            return Err(ImportError::TooManyRows(self.max_rows));
        }
        let header_text = |col: Col| {
            header
                .cols
                .iter()
                .flatten()
                .find(|(c, _)| *c == col)
                .map(|(_, t)| t.clone())
        };
        let [name, value, unit, limit, standard, method, verdict] = fields.text;
        let mut required = |col: Col, v: &Option<String>| {
            if v.is_none() && !problems.iter().any(|p| p.column == header_text(col)) {
                problems.push(RowProblem {
                    row,
                    column: header_text(col),
                    code: "required".to_string(),
                    message: format!("{} is required", name_of(col)),
                });
            }
        };
        required(Col::Name, &name);
        required(Col::Value, &value);
        required(Col::Verdict, &verdict);
        let parsed_verdict = verdict.as_deref().and_then(Verdict::parse);
        if let (Some(v), None) = (&verdict, parsed_verdict) {
            problems.push(RowProblem {
                row,
                column: header_text(Col::Verdict),
                code: "invalid_verdict".to_string(),
                message: format!("{v:?} is not 合格 or 不合格"),
            });
        }
        let item = match (name, value, parsed_verdict) {
            (Some(name), Some(value), Some(verdict)) if problems.is_empty() => Some(Item {
                name,
                value,
                unit,
                limit,
                standard,
                method,
                verdict,
                microbiological: fields.microbiological,
            }),
            _ => None,
        };
        self.rows.push(ParsedRow {
            row,
            item,
            problems,
        });
        Ok(())
    }

    fn look_for_header<'c>(
        &mut self,
        row: u32,
        cells: impl Iterator<Item = (usize, Cell<'c>)>,
    ) -> Result<(), ImportError> {
        let texts: Vec<(usize, String)> = cells
            .filter(|(i, c)| *i < MAX_COLUMNS && !c.is_blank())
            .filter_map(|(i, c)| Some((i, cell_string(c).ok()??)))
            .collect();
        if texts.is_empty() {
            return Ok(());
        }
        let known = texts
            .iter()
            .filter(|(_, t)| match_column(t).is_some())
            .count();
        if known < 2 {
            self.seen_before_header += 1;
            if self.seen_before_header >= MAX_HEADER_SEARCH {
                return Err(self.missing(&[]));
            }
            return Ok(());
        }
        let width = texts.iter().map(|(i, _)| i + 1).max().unwrap_or(0);
        let mut cols = vec![None; width];
        let mut found: Vec<Col> = Vec::new();
        for (i, text) in texts {
            match match_column(&text) {
                Some(col) if found.contains(&col) => {
                    return Err(ImportError::DuplicateColumn(text))
                }
                Some(col) => {
                    found.push(col);
                    cols[i] = Some((col, text));
                }
                None => self.unknown.push(text),
            }
        }
        if REQUIRED.iter().any(|c| !found.contains(c)) {
            return Err(self.missing(&found));
        }
        self.header = Some(Header { row, cols });
        Ok(())
    }

    fn missing(&self, found: &[Col]) -> ImportError {
        ImportError::MissingColumns(
            REQUIRED
                .iter()
                .filter(|c| !found.contains(c))
                .map(|c| name_of(*c).to_string())
                .collect(),
        )
    }
}

/// Parses a results file (see the module doc). More than `max_rows` item rows is
/// [`ImportError::TooManyRows`]; a file without the required columns is
/// [`ImportError::MissingColumns`]; no item rows is [`ImportError::NoRows`].
pub fn parse(bytes: &[u8], max_rows: usize) -> Result<Parsed, ImportError> {
    let mut rows = Rows {
        max_rows,
        seen_before_header: 0,
        header: None,
        unknown: Vec::new(),
        rows: Vec::new(),
    };
    let format = read_rows(bytes, &mut rows)?;
    let Some(header) = rows.header else {
        return Err(if rows.seen_before_header == 0 {
            ImportError::Empty
        } else {
            rows.missing(&[])
        });
    };
    if rows.rows.is_empty() {
        return Err(ImportError::NoRows);
    }
    Ok(Parsed {
        format,
        header_row: header.row,
        rows: rows.rows,
        unknown_columns: rows.unknown,
    })
}

// Header search and cell conversion are this file's; reading the file is shared.
impl RowSink for Rows {
    fn row<'c>(
        &mut self,
        row: u32,
        cells: impl Iterator<Item = (usize, Cell<'c>)>,
        _width: Option<usize>,
    ) -> Result<(), ImportError> {
        self.feed(row, cells)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::sampling::results::{check, Report};

    const CSV: &str = "检验报告 WT2026-0123\n\
        检验项目,检验结果,计量单位,标准指标,判定依据,检验方法,单项判定,微生物\n\
        毒死蜱,0.08,mg/kg,≤0.05,GB 2763-2021,GB 23200.113-2018,不合格,否\n\
        \n\
        菌落总数,<10,CFU/g,\"n=5,c=2,m=100,M=1000\",GB 29921-2021,GB 4789.2-2022,合格,是\n";

    #[test]
    fn csv_utf8_with_title_row_and_blank_line() {
        let p = parse(CSV.as_bytes(), 100).unwrap();
        assert_eq!(p.format, Format::Csv);
        assert_eq!(p.header_row, 2);
        let rows: Vec<u32> = p.rows.iter().map(|r| r.row).collect();
        assert_eq!(rows, [3, 5]);
        let items = p.items().unwrap();
        assert_eq!(items[0].name, "毒死蜱");
        assert_eq!(items[0].verdict, Verdict::Unqualified);
        assert_eq!(items[0].limit.as_deref(), Some("≤0.05"));
        assert!(!items[0].microbiological && items[1].microbiological);
        assert_eq!(items[1].limit.as_deref(), Some("n=5,c=2,m=100,M=1000"));
        let checked = check(&Report {
            report_no: "WT2026-0123".into(),
            items,
            overall: Verdict::Unqualified,
        })
        .unwrap();
        assert_eq!(checked.failed.len(), 1);
        assert_eq!(p.row_of(checked.failed[0].index), Some(3));
    }

    #[test]
    fn csv_with_bom_and_gbk() {
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(CSV.as_bytes());
        assert_eq!(parse(&bom, 100).unwrap().items().unwrap().len(), 2);
        let (gbk, _, unmappable) = encoding_rs::GBK.encode(CSV);
        assert!(!unmappable);
        assert!(std::str::from_utf8(&gbk).is_err());
        let p = parse(&gbk, 100).unwrap();
        assert_eq!(p.items().unwrap()[0].name, "毒死蜱");
    }

    #[test]
    fn row_numbered_problems() {
        let csv =
            "项目,结果,判定,微生物\n铅,0.1,合格,否\n,0.2,合格,\n镉,,合格,\n汞,0.01,可能,也许\n";
        let p = parse(csv.as_bytes(), 100).unwrap();
        assert!(p.items().is_none());
        let got: Vec<(u32, Option<String>, String)> = p
            .problems()
            .into_iter()
            .map(|r| (r.row, r.column, r.code))
            .collect();
        assert_eq!(
            got,
            [
                (3, Some("项目".into()), "required".into()),
                (4, Some("结果".into()), "required".into()),
                (5, Some("微生物".into()), "invalid_yes_no".into()),
                (5, Some("判定".into()), "invalid_verdict".into()),
            ]
        );
        assert!(p.rows[0].item.is_some());
    }

    #[test]
    fn file_level_refusals() {
        assert!(matches!(
            parse(b"name,unit\nx,y\n", 10),
            Err(ImportError::MissingColumns(m)) if m == ["value", "verdict"]
        ));
        assert!(matches!(
            parse("检验项目,检验结果,单项判定,项目\n".as_bytes(), 10),
            Err(ImportError::DuplicateColumn(_))
        ));
        assert!(matches!(
            parse("检验项目,检验结果,单项判定\n".as_bytes(), 10),
            Err(ImportError::NoRows)
        ));
        let many = format!("name,value,verdict\n{}", "铅,0.1,合格\n".repeat(11));
        assert!(matches!(
            parse(many.as_bytes(), 10),
            Err(ImportError::TooManyRows(10))
        ));
        assert!(matches!(
            parse(b"\xFF\xFEx\x00", 10),
            Err(ImportError::UnsupportedFormat(_))
        ));
        let notes = "备注\n".repeat(MAX_HEADER_SEARCH);
        assert!(matches!(
            parse(notes.as_bytes(), 10),
            Err(ImportError::MissingColumns(_))
        ));
    }

    fn xlsx(build: impl FnOnce(&mut rust_xlsxwriter::Worksheet)) -> Vec<u8> {
        let mut wb = rust_xlsxwriter::Workbook::new();
        build(wb.add_worksheet());
        wb.save_to_buffer().unwrap()
    }

    #[test]
    fn xlsx_items_with_numbers_and_booleans() {
        let bytes = xlsx(|ws| {
            for (c, h) in ["检验项目", "检验结果", "标准指标", "单项判定", "微生物"]
                .iter()
                .enumerate()
            {
                ws.write_string(0, c as u16, *h).unwrap();
            }
            ws.write_string(1, 0, "毒死蜱").unwrap();
            ws.write_number(1, 1, 0.03).unwrap();
            ws.write_string(1, 2, "≤0.05").unwrap();
            ws.write_string(1, 3, "合格").unwrap();
            ws.write_boolean(1, 4, false).unwrap();
            // Row 3 blank; row 4 a microbiological item.
            ws.write_string(3, 0, "沙门氏菌").unwrap();
            ws.write_string(3, 1, "未检出").unwrap();
            ws.write_string(3, 2, "不得检出/25g").unwrap();
            ws.write_string(3, 3, "合格").unwrap();
            ws.write_boolean(3, 4, true).unwrap();
            ws.write_string(5, 9, "a note beside the table").unwrap();
        });
        let p = parse(&bytes, 100).unwrap();
        assert_eq!(p.format, Format::Xlsx);
        let rows: Vec<u32> = p.rows.iter().map(|r| r.row).collect();
        assert_eq!(rows, [2, 4]);
        let items = p.items().unwrap();
        assert_eq!(items[0].value, "0.03");
        assert!(items[1].microbiological);
        assert!(p.problems().is_empty());
    }

    #[test]
    fn xlsx_zip_bombs_are_refused_before_reading() {
        use std::io::Write;
        // A worksheet part of one run longer than the XML token limit: refused by the
        // registry import's guard, before calamine opens it.
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("xl/workbook.xml", opts).unwrap();
        zip.write_all(b"<workbook/>").unwrap();
        zip.start_file("xl/worksheets/sheet1.xml", opts).unwrap();
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..2 {
            zip.write_all(&chunk).unwrap();
        }
        let bytes = zip.finish().unwrap().into_inner();
        assert!(bytes.len() < 100_000);
        assert!(matches!(parse(&bytes, 10), Err(ImportError::TooLarge(_))));
    }

    #[test]
    fn never_panics_on_garbage() {
        for bytes in [
            &b"PK\x03\x04xl/workbook.xml"[..],
            b"",
            b"\n\n\n",
            "项目,结果,判定\n\"unterminated".as_bytes(),
        ] {
            let _ = parse(bytes, 10);
        }
    }
}
