//! Bulk import of establishments from a spreadsheet (CSV or XLSX), and the blank template.
//!
//! Pure parsing: bytes in, [`RawEstablishment`]s out, with every cell-level problem tied to
//! the row number and header text the user sees in Excel/WPS. Validation of the values
//! (`RawEstablishment::validate`) and the upsert are the caller's job; [`Parsed::row_problem`]
//! turns a validation [`FieldError`] into a [`RowProblem`] pointing at the right column.
//!
//! Never panics on input: third-party XLSX decoding is additionally wrapped in `catch_unwind`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use calamine::{CellErrorType, DataRef, Reader, SheetType, SheetVisible, Xlsx};
use rust_xlsxwriter::{
    Color, DataValidation, DataValidationErrorStyle, DataValidationRule, Format as XlsxFormat,
    FormatAlign, FormatBorder, Note, Workbook, XlsxError,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Category, FieldError, RawEstablishment, RiskGrade};

/// The two accepted upload formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

/// Why a whole file is refused (as opposed to a [`RowProblem`] in one row).
/// `UnsupportedFormat` maps to 415, `TooLarge` to 413, `Template` is an internal error (500),
/// the rest to 422.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("unsupported file format: {0}; upload a CSV (UTF-8 or GB18030/GBK) or an XLSX file")]
    UnsupportedFormat(String),
    /// Canonical field names (e.g. `sign_name`); `uscc|license_no` when neither identifier
    /// column is present (one of them is enough).
    #[error("missing required column(s): {}", describe_missing(.0))]
    MissingColumns(Vec<String>),
    /// The header text as in the file of the second column mapping to an already-seen field.
    #[error(
        "column {0:?} appears more than once (two columns map to the same field); keep only one"
    )]
    DuplicateColumn(String),
    #[error("the file is empty: no header row found")]
    Empty,
    /// A header row but no data rows: nothing to import, most likely the wrong file.
    #[error("the file has a header row but no data rows")]
    NoRows,
    /// The limit that was exceeded.
    #[error("too many rows: at most {0} data rows can be imported at once; split the file")]
    TooManyRows(usize),
    #[error("the file could not be read: {0}")]
    Malformed(String),
    /// An XLSX decompresses to more than the import limits allow (a zip bomb, or a workbook
    /// far larger than any registry); what was exceeded.
    #[error("the XLSX workbook is too large when unpacked: {0}; split the file")]
    TooLarge(String),
    /// Building the template failed (a bug, not a user error).
    #[error("could not build the import template: {0}")]
    Template(String),
}

fn describe_missing(names: &[String]) -> String {
    let describe = |n: &str| match spec_by_name(n) {
        Some(s) => format!("{} ({})", s.name, s.zh),
        None => n.to_string(),
    };
    names
        .iter()
        .map(|n| match n.split_once('|') {
            Some((a, b)) => format!("{} or {}", describe(a), describe(b)),
            None => describe(n),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A problem in one cell/row. `row` is the 1-based spreadsheet row number as the user sees it
/// (header = row 1, first data row = 2, title rows above the header and blank rows count);
/// `column` is the header text as it appeared in the file, or `None` for row-level problems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RowProblem {
    pub row: u32,
    pub column: Option<String>,
    /// Stable machine-readable code: `not_a_number`, `bad_row_length`,
    /// `number_precision_lost`, `unexpected_date`, `cell_error`, or a validation code.
    pub code: String,
    pub message: String,
}

/// One non-blank data row.
#[derive(Debug, Clone)]
pub struct ParsedRow {
    /// Spreadsheet row number as the user sees it.
    pub row: u32,
    pub raw: RawEstablishment,
    /// Cell-level parse problems (e.g. lng not a number). The affected field is left `None`.
    pub problems: Vec<RowProblem>,
}

/// A parsed file.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub format: Format,
    pub rows: Vec<ParsedRow>,
    /// Canonical field name -> header text as in the file, to report `FieldError.field` as a
    /// column.
    pub columns: HashMap<&'static str, String>,
    /// Non-blank header cells that matched no field, in file order; their cells are ignored.
    /// The caller may warn about them (a typo in a header silently drops a column otherwise).
    pub unknown_columns: Vec<String>,
    /// Spreadsheet row number of the header (1 unless title rows stand above it).
    pub header_row: u32,
}

impl Parsed {
    /// Maps a validation `FieldError.field` (e.g. `uscc`, `location`, `crs`) to the header text
    /// the user sees. A known field whose column is absent from the file gets its standard
    /// Chinese header (so the user knows which column to add); unknown fields give `None`.
    pub fn column_for(&self, field: &str) -> Option<String> {
        if field == "location" {
            return match (self.columns.get("lng"), self.columns.get("lat")) {
                (Some(lng), Some(lat)) => Some(format!("{lng}/{lat}")),
                (Some(one), None) | (None, Some(one)) => Some(one.clone()),
                (None, None) => Some("经度/纬度".to_string()),
            };
        }
        let spec = spec_by_name(field)?;
        Some(
            self.columns
                .get(spec.name)
                .cloned()
                .unwrap_or_else(|| spec.zh.to_string()),
        )
    }

    /// A validation error of the data row `row` as a [`RowProblem`].
    pub fn row_problem(&self, row: u32, error: &FieldError) -> RowProblem {
        RowProblem {
            row,
            column: self.column_for(&error.field),
            code: error.code.clone(),
            message: error.message.clone(),
        }
    }
}

/// Standard Chinese header for a canonical field name (`sign_name` -> `牌匾名称`).
pub fn header_zh(field: &str) -> Option<&'static str> {
    spec_by_name(field).map(|s| s.zh)
}

// ---------------------------------------------------------------------------------------------
// Columns

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    SignName,
    LicensedName,
    Uscc,
    LicenseNo,
    Category,
    Address,
    Town,
    RiskGrade,
    Lng,
    Lat,
    Crs,
    ContactName,
    ContactPhone,
    QuantGrade,
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    /// Identifiers: Excel mangles them when typed as numbers, so they get extra checks.
    Code,
    Number,
}

struct Spec {
    field: Field,
    name: &'static str,
    zh: &'static str,
    /// Other Chinese headers seen in district/bureau spreadsheets.
    zh_aliases: &'static [&'static str],
    /// Other English headers, already normalised (lowercase, `_` for spaces and dashes).
    en_aliases: &'static [&'static str],
    required: bool,
    kind: Kind,
    width: f64,
    help: &'static str,
}

/// In template column order.
const SPECS: [Spec; 15] = [
    Spec {
        field: Field::SignName,
        name: "sign_name",
        zh: "牌匾名称",
        zh_aliases: &["店招名称", "门头名称", "招牌名称"],
        en_aliases: &["signname"],
        required: true,
        kind: Kind::Text,
        width: 24.0,
        help: "门头招牌上的名称",
    },
    Spec {
        field: Field::LicensedName,
        name: "licensed_name",
        zh: "营业执照名称",
        zh_aliases: &["经营者名称", "单位名称", "企业名称"],
        en_aliases: &["licensedname"],
        required: true,
        kind: Kind::Text,
        width: 30.0,
        help: "营业执照上登记的名称",
    },
    Spec {
        field: Field::Uscc,
        name: "uscc",
        zh: "统一社会信用代码",
        zh_aliases: &["社会信用代码", "信用代码"],
        en_aliases: &[],
        required: false,
        kind: Kind::Code,
        width: 22.0,
        help: "18位代码；与许可证编号至少填写一项",
    },
    Spec {
        field: Field::LicenseNo,
        name: "license_no",
        zh: "食品经营许可证编号",
        zh_aliases: &[
            "许可证编号",
            "食品经营许可证号",
            "许可证号",
            "许可证/备案编号",
            "备案编号",
        ],
        en_aliases: &["license", "licence_no"],
        required: false,
        kind: Kind::Code,
        width: 22.0,
        help: "如 JY1xxxxxxxxxxxxx；仅销售预包装食品可填备案编号；与统一社会信用代码至少填写一项",
    },
    Spec {
        field: Field::Category,
        name: "category",
        zh: "业态",
        zh_aliases: &["经营业态", "主体业态"],
        en_aliases: &[],
        required: true,
        kind: Kind::Text,
        width: 16.0,
        help: "从下拉列表选择，可选值见下方",
    },
    Spec {
        field: Field::Address,
        name: "address",
        zh: "经营地址",
        zh_aliases: &["经营场所", "地址"],
        en_aliases: &[],
        required: true,
        kind: Kind::Text,
        width: 36.0,
        help: "经营场所详细地址",
    },
    Spec {
        field: Field::Town,
        name: "town",
        zh: "街道乡镇",
        zh_aliases: &["所属街道", "街道", "乡镇街道", "街道（乡镇）", "街道(乡镇)"],
        en_aliases: &[],
        required: true,
        kind: Kind::Text,
        width: 14.0,
        help: "所属街道或乡镇",
    },
    Spec {
        field: Field::RiskGrade,
        name: "risk_grade",
        zh: "风险等级",
        zh_aliases: &["风险分级"],
        en_aliases: &[],
        required: true,
        kind: Kind::Text,
        width: 10.0,
        help: "A、B、C、D，A 风险最低，D 风险最高",
    },
    Spec {
        field: Field::Lng,
        name: "lng",
        zh: "经度",
        zh_aliases: &[],
        en_aliases: &["longitude", "lon"],
        required: false,
        kind: Kind::Number,
        width: 12.0,
        help: "小数形式，如 116.397128；与纬度、坐标系一起填写",
    },
    Spec {
        field: Field::Lat,
        name: "lat",
        zh: "纬度",
        zh_aliases: &[],
        en_aliases: &["latitude"],
        required: false,
        kind: Kind::Number,
        width: 12.0,
        help: "小数形式，如 39.916527；与经度、坐标系一起填写",
    },
    Spec {
        field: Field::Crs,
        name: "crs",
        zh: "坐标系",
        zh_aliases: &[],
        en_aliases: &["coordinate_system"],
        required: false,
        kind: Kind::Text,
        width: 10.0,
        help: "wgs84、gcj02 或 bd09；填写经纬度时必填",
    },
    Spec {
        field: Field::ContactName,
        name: "contact_name",
        zh: "联系人",
        zh_aliases: &["负责人"],
        en_aliases: &["contact"],
        required: false,
        kind: Kind::Text,
        width: 10.0,
        help: "",
    },
    Spec {
        field: Field::ContactPhone,
        name: "contact_phone",
        zh: "联系电话",
        zh_aliases: &["电话", "手机", "手机号码"],
        en_aliases: &["phone", "telephone"],
        required: false,
        kind: Kind::Code,
        width: 15.0,
        help: "手机或固定电话",
    },
    Spec {
        field: Field::QuantGrade,
        name: "quant_grade",
        zh: "量化等级",
        zh_aliases: &["量化分级"],
        en_aliases: &[],
        required: false,
        kind: Kind::Text,
        width: 10.0,
        help: "A、B 或 C（动态等级），可不填",
    },
    Spec {
        field: Field::Status,
        name: "status",
        zh: "状态",
        zh_aliases: &["经营状态"],
        en_aliases: &[],
        required: false,
        kind: Kind::Text,
        width: 10.0,
        help: "营业、停业或注销；不填视为营业",
    },
];

fn spec(field: Field) -> &'static Spec {
    // SPECS is in `Field` declaration order (checked by a test).
    &SPECS[field as usize]
}

fn spec_by_name(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == name)
}

/// Strips what people add around a header: whitespace (incl. full-width), a BOM that ended up
/// inside a cell, and required/optional markers (`*牌匾名称`, `牌匾名称*`, `牌匾名称（必填）`).
pub(crate) fn strip_header(s: &str) -> &str {
    const MARKERS: [&str; 6] = ["（必填）", "(必填)", "（选填）", "(选填)", "*", "＊"];
    fn trim(s: &str) -> &str {
        s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
    }
    let mut s = trim(s);
    loop {
        let before = s.len();
        for m in MARKERS {
            if let Some(r) = s.strip_suffix(m) {
                s = trim(r);
            }
            if let Some(r) = s.strip_prefix(m) {
                s = trim(r);
            }
        }
        if s.len() == before {
            return s;
        }
    }
}

fn match_header(text: &str) -> Option<Field> {
    let s = strip_header(text);
    if s.is_empty() {
        return None;
    }
    if let Some(spec) = SPECS
        .iter()
        .find(|spec| spec.zh == s || spec.zh_aliases.contains(&s))
    {
        return Some(spec.field);
    }
    if !s.is_ascii() {
        return None;
    }
    let en: String = s
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    SPECS
        .iter()
        .find(|spec| spec.name == en || spec.en_aliases.contains(&en.as_str()))
        .map(|spec| spec.field)
}

// ---------------------------------------------------------------------------------------------
// Format detection

pub(crate) enum Detected<'a> {
    Xlsx,
    Csv(Cow<'a, str>),
}

/// Sniffs the format from the bytes (file names and content types lie): XLSX is a ZIP holding
/// `xl/workbook.xml`; CSV is anything that decodes as UTF-8 (BOM optional) or, failing that,
/// as GB18030 without a single malformed sequence, and contains no NUL byte.
pub fn sniff(bytes: &[u8]) -> Result<Format, ImportError> {
    detect(bytes).map(|d| match d {
        Detected::Xlsx => Format::Xlsx,
        Detected::Csv(_) => Format::Csv,
    })
}

pub(crate) fn detect(bytes: &[u8]) -> Result<Detected<'_>, ImportError> {
    const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
    const OLE2: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";
    let unsupported = |m: &str| Err(ImportError::UnsupportedFormat(m.to_string()));

    if bytes.starts_with(b"PK\x03\x04") {
        if zip_has_entry(bytes, b"xl/workbook.xml") {
            return Ok(Detected::Xlsx);
        }
        if zip_has_entry(bytes, b"xl/workbook.bin") {
            return unsupported("binary Excel workbook (.xlsb); save it as .xlsx");
        }
        if zip_has_entry(bytes, b"content.xml") {
            return unsupported("OpenDocument spreadsheet (.ods); save it as .xlsx");
        }
        return unsupported("a ZIP archive that is not an XLSX workbook");
    }
    if bytes.starts_with(b"PK\x05\x06") || bytes.starts_with(b"PK\x07\x08") {
        return unsupported("a ZIP archive that is not an XLSX workbook");
    }
    if bytes.starts_with(OLE2) {
        return unsupported("legacy Excel .xls (or a password-protected workbook); save it as .xlsx without a password");
    }
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return unsupported(
            "UTF-16 text (Excel \"Unicode text\"); save it as \"CSV UTF-8\" instead",
        );
    }
    if bytes.contains(&0) {
        return unsupported("binary data");
    }
    let text = if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        match std::str::from_utf8(rest) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => {
                return unsupported("text with a UTF-8 byte-order mark that is not valid UTF-8")
            }
        }
    } else if let Ok(s) = std::str::from_utf8(bytes) {
        Cow::Borrowed(s)
    } else {
        // Excel/WPS in zh-CN save "CSV" in the ANSI code page (GBK), which GB18030 covers.
        match encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes) {
            Some(s) => s,
            None => return unsupported("neither UTF-8 nor GB18030 text, nor an XLSX workbook"),
        }
    };
    // A GB18030 BOM decodes to U+FEFF.
    let text = match text {
        Cow::Borrowed(s) => Cow::Borrowed(s.strip_prefix('\u{feff}').unwrap_or(s)),
        Cow::Owned(s) => match s.strip_prefix('\u{feff}') {
            Some(rest) => Cow::Owned(rest.to_string()),
            None => Cow::Owned(s),
        },
    };
    if text.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok(Detected::Csv(text))
}

/// Whether a ZIP archive has an entry named `name`, found through its central-directory
/// (`PK\1\2`, name at offset 46) or local (`PK\3\4`, name at offset 30) header. Scanning for the
/// name rather than walking the directory from the end also copes with ZIP64 and truncation.
fn zip_has_entry(bytes: &[u8], name: &[u8]) -> bool {
    let header_names = |pos: usize, offset: usize, sig: &[u8; 4], len_at: usize| -> bool {
        let Some(start) = pos.checked_sub(offset) else {
            return false;
        };
        let name_len = bytes
            .get(start + len_at..start + len_at + 2)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])));
        bytes.get(start..start + 4) == Some(&sig[..]) && name_len == Some(name.len())
    };
    bytes
        .windows(name.len())
        .enumerate()
        .filter(|(_, w)| *w == name)
        .any(|(pos, _)| {
            header_names(pos, 46, b"PK\x01\x02", 28) || header_names(pos, 30, b"PK\x03\x04", 26)
        })
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// One cell, whichever format it came from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cell<'c> {
    Empty,
    Text(&'c str),
    Int(i64),
    Number(f64),
    Bool(bool),
    Date,
    Error(&'static str),
}

impl Cell<'_> {
    pub(crate) fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(s) => s.trim().is_empty(),
            _ => false,
        }
    }
}

/// Parses the whole file: format sniffing, decoding, header matching and cell conversion.
///
/// Required columns: sign_name, licensed_name, category, address, town, risk_grade, and at least
/// one of uscc / license_no. The header is the first non-blank row that names at least two known
/// columns (so a title row like "XX区食品经营者名录" above it is tolerated); rows with nothing in
/// the known columns (blank rows, notes beside or under the table) are skipped, and so is a
/// second header row (English names under Chinese ones) directly below the header. More than
/// `max_rows` data rows is [`ImportError::TooManyRows`] (checked while reading, so a huge file
/// stops early). Only the first visible worksheet of an XLSX is read.
pub fn parse(bytes: &[u8], max_rows: usize) -> Result<Parsed, ImportError> {
    let mut builder = Builder::new(max_rows);
    let format = read_rows(bytes, &mut builder)?;
    builder.finish(format)
}

/// Detects the file's format and feeds it to the matching reader. calamine/zip/quick-xml are
/// outside our control: a panic on a crafted workbook becomes `Malformed`, never a crash of
/// the server or the CLI.
pub(crate) fn read_any<S>(
    bytes: &[u8],
    sink: &mut S,
    xlsx: fn(&[u8], &mut S) -> Result<(), ImportError>,
    csv: fn(&str, &mut S) -> Result<(), ImportError>,
) -> Result<Format, ImportError> {
    Ok(match detect(bytes)? {
        Detected::Xlsx => {
            catch_unwind(AssertUnwindSafe(|| xlsx(bytes, sink))).unwrap_or_else(|_| {
                Err(ImportError::Malformed(
                    "the XLSX workbook is corrupt".to_string(),
                ))
            })?;
            Format::Xlsx
        }
        Detected::Csv(text) => {
            csv(&text, sink)?;
            Format::Csv
        }
    })
}

// ---------------------------------------------------------------------------------------------
// XLSX bounds
//
// A 1 MiB upload can unpack to gigabytes. calamine holds the whole shared-strings table in
// memory, and quick-xml buffers a whole text node or tag, so before calamine opens anything every
// member is unpacked once into a counter (nothing kept) and the workbook is refused when it
// exceeds these limits. Declared sizes in the ZIP headers are not trusted; the bytes are counted.
// The limits are far above a 100,000-row registry (its sheet XML is ~60 MB, its shared strings
// ~40 MB in some 700,000 entries) and keep memory to the shared-strings limit plus a constant.

/// Unpacked bytes of all members together (bounds the CPU time of reading).
pub const MAX_XLSX_UNPACKED_BYTES: u64 = 512 * 1024 * 1024;
/// Unpacked bytes of the shared-strings table, which calamine keeps in memory.
pub const MAX_SHARED_STRINGS_BYTES: u64 = 128 * 1024 * 1024;
/// Entries (`<si>`) of the shared-strings table: each becomes a `String` of its own.
pub const MAX_SHARED_STRINGS: u64 = 2_000_000;
/// Longest run of an XML member between `<` and `>` (one tag or one text node), which the XML
/// reader buffers whole. An Excel cell holds at most 32,767 characters (≤ 128 KiB of UTF-8,
/// ≤ 640 KiB escaped).
pub const MAX_XML_TOKEN_BYTES: u64 = 1024 * 1024;
/// Members of the archive.
pub const MAX_XLSX_MEMBERS: usize = 10_000;

/// Counts what one member unpacks to and refuses, by failing the write, as soon as a limit is
/// passed, so a bomb is stopped after at most a limit's worth of decompression.
struct BoundedSink {
    xml: bool,
    shared_strings: bool,
    bytes: u64,
    total_before: u64,
    run: u64,
    si: u64,
    tag: TagScan,
    exceeded: Option<String>,
}

/// Just enough of XML to count `<si>` / `<x:si>` start tags.
#[derive(Clone, Copy, PartialEq)]
enum TagScan {
    Outside,
    /// In an element name, at its start (after `<` or a namespace prefix's `:`) or not.
    Name {
        at_start: bool,
    },
    S,
    Si,
}

impl BoundedSink {
    fn scan(&mut self, data: &[u8]) -> Result<(), String> {
        for &b in data {
            if b == b'<' || b == b'>' {
                self.run = 0;
            } else {
                self.run += 1;
                if self.run > MAX_XML_TOKEN_BYTES {
                    return Err(format!(
                        "a tag or text of more than {MAX_XML_TOKEN_BYTES} bytes"
                    ));
                }
            }
            let delimiter = matches!(b, b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n');
            self.tag = match (self.tag, b) {
                (_, b'<') => TagScan::Name { at_start: true },
                (TagScan::Name { at_start: true }, b's') => TagScan::S,
                (TagScan::S, b'i') => TagScan::Si,
                (TagScan::Si, _) if delimiter => {
                    self.si += 1;
                    TagScan::Outside
                }
                (TagScan::Name { .. } | TagScan::S | TagScan::Si, b':') => {
                    TagScan::Name { at_start: true }
                }
                (TagScan::Name { .. } | TagScan::S | TagScan::Si, _) if delimiter => {
                    TagScan::Outside
                }
                (TagScan::Name { .. } | TagScan::S | TagScan::Si, _) => {
                    TagScan::Name { at_start: false }
                }
                (TagScan::Outside, _) => TagScan::Outside,
            };
        }
        if self.si > MAX_SHARED_STRINGS {
            return Err(format!("more than {MAX_SHARED_STRINGS} shared strings"));
        }
        Ok(())
    }
}

impl std::io::Write for BoundedSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.bytes += data.len() as u64;
        let over = if self.total_before + self.bytes > MAX_XLSX_UNPACKED_BYTES {
            Err(format!("more than {MAX_XLSX_UNPACKED_BYTES} bytes in all"))
        } else if self.shared_strings && self.bytes > MAX_SHARED_STRINGS_BYTES {
            Err(format!(
                "a shared-strings table of more than {MAX_SHARED_STRINGS_BYTES} bytes"
            ))
        } else if self.xml {
            self.scan(data)
        } else {
            Ok(())
        };
        match over {
            Ok(()) => Ok(data.len()),
            Err(m) => {
                self.exceeded = Some(m);
                Err(std::io::Error::other("import limit exceeded"))
            }
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Unpacks every member into a [`BoundedSink`]: `TooLarge` past a limit, `Malformed` when the
/// archive cannot be unpacked.
pub(crate) fn check_xlsx_bounds(bytes: &[u8]) -> Result<(), ImportError> {
    let malformed = |e: &dyn std::fmt::Display| ImportError::Malformed(format!("XLSX: {e}"));
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| malformed(&e))?;
    if archive.len() > MAX_XLSX_MEMBERS {
        return Err(ImportError::TooLarge(format!(
            "more than {MAX_XLSX_MEMBERS} parts"
        )));
    }
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).map_err(|e| malformed(&e))?;
        let name = member.name().to_ascii_lowercase();
        let mut sink = BoundedSink {
            xml: name.ends_with(".xml") || name.ends_with(".rels"),
            shared_strings: name.contains("sharedstrings"),
            bytes: 0,
            total_before: total,
            run: 0,
            si: 0,
            tag: TagScan::Outside,
            exceeded: None,
        };
        if let Err(e) = std::io::copy(&mut member, &mut sink) {
            return Err(match sink.exceeded {
                Some(m) => ImportError::TooLarge(m),
                None => malformed(&e),
            });
        }
        total += sink.bytes;
    }
    Ok(())
}

/// Where [`read_rows`] sends a file's rows, in order.
pub(crate) trait RowSink {
    /// One row: its number as the user sees it (from 1; blank CSV lines count) and its cells
    /// with their columns (from 0). `width` is a CSV record's length; None for an XLSX row,
    /// whose cells past the header may be notes people keep beside the table.
    fn row<'c>(
        &mut self,
        row: u32,
        cells: impl Iterator<Item = (usize, Cell<'c>)>,
        width: Option<usize>,
    ) -> Result<(), ImportError>;
}

/// Reads a CSV or XLSX file (format detected, and a crashing workbook contained, by
/// [`read_any`]) row by row into `sink`: every CSV record, or every row of the first visible
/// worksheet that has a non-empty cell.
pub(crate) fn read_rows<S: RowSink>(bytes: &[u8], sink: &mut S) -> Result<Format, ImportError> {
    read_any(bytes, sink, read_xlsx::<S>, read_csv::<S>)
}

fn read_xlsx<S: RowSink>(bytes: &[u8], sink: &mut S) -> Result<(), ImportError> {
    check_xlsx_bounds(bytes)?;
    let malformed = |e: calamine::XlsxError| ImportError::Malformed(format!("XLSX: {e}"));
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(malformed)?;
    let sheets = workbook.sheets_metadata();
    let is_ws = |s: &&calamine::Sheet| s.typ == SheetType::WorkSheet;
    let Some(sheet) = sheets
        .iter()
        .filter(is_ws)
        .find(|s| s.visible == SheetVisible::Visible)
        .or_else(|| sheets.iter().find(is_ws))
        .map(|s| s.name.clone())
    else {
        return Err(ImportError::Empty);
    };
    let mut reader = workbook.worksheet_cells_reader(&sheet).map_err(malformed)?;

    // Cells of the current row (0-based `current`), reused across rows. Cells stream in row
    // order.
    let mut cells: Vec<(u32, DataRef<'_>)> = Vec::new();
    let mut current: Option<u32> = None;
    fn feed<S: RowSink>(
        sink: &mut S,
        row0: u32,
        cells: &[(u32, DataRef<'_>)],
    ) -> Result<(), ImportError> {
        sink.row(
            row0.saturating_add(1),
            cells.iter().map(|(c, v)| (*c as usize, xlsx_cell(v))),
            None,
        )
    }
    while let Some(cell) = reader.next_cell().map_err(malformed)? {
        let (row, col) = cell.get_position();
        let value = cell.get_value();
        if matches!(value, DataRef::Empty) {
            continue;
        }
        if current != Some(row) {
            if let Some(r) = current {
                feed(sink, r, &cells)?;
            }
            cells.clear();
            current = Some(row);
        }
        cells.push((col, value.clone()));
    }
    if let Some(r) = current {
        feed(sink, r, &cells)?;
    }
    Ok(())
}

pub(crate) fn xlsx_cell<'c>(value: &'c DataRef<'_>) -> Cell<'c> {
    match value {
        DataRef::Empty => Cell::Empty,
        DataRef::String(s) => Cell::Text(s),
        DataRef::SharedString(s) => Cell::Text(s),
        DataRef::Int(i) => Cell::Int(*i),
        DataRef::Float(f) => Cell::Number(*f),
        DataRef::Bool(b) => Cell::Bool(*b),
        DataRef::DateTime(_) | DataRef::DateTimeIso(_) | DataRef::DurationIso(_) => Cell::Date,
        DataRef::Error(e) => Cell::Error(match e {
            CellErrorType::Div0 => "#DIV/0!",
            CellErrorType::NA => "#N/A",
            CellErrorType::Name => "#NAME?",
            CellErrorType::Null => "#NULL!",
            CellErrorType::Num => "#NUM!",
            CellErrorType::Ref => "#REF!",
            CellErrorType::Value => "#VALUE!",
            CellErrorType::GettingData => "#GETTING_DATA",
        }),
    }
}

fn read_csv<S: RowSink>(text: &str, sink: &mut S) -> Result<(), ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(csv_delimiter(text))
        .from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    let mut row: u32 = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(ImportError::Malformed(format!("CSV: {e}"))),
        }
        // The csv crate silently skips empty lines, but Excel shows them as rows: count them so
        // that reported row numbers match what the user sees.
        let at = record
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(usize::MAX);
        row = row
            .saturating_add(1)
            .saturating_add(blank_lines_at(text.as_bytes(), at));
        sink.row(
            row,
            record.iter().enumerate().map(|(i, s)| (i, Cell::Text(s))),
            Some(record.len()),
        )?;
    }
    Ok(())
}

/// Empty lines starting at `pos`, where the csv crate reports a record to start: just after the
/// previous record's terminator (or between its `\r` and `\n`), before the empty lines it skips.
pub(crate) fn blank_lines_at(bytes: &[u8], pos: usize) -> u32 {
    let mut i = pos;
    if i > 0 && bytes.get(i - 1) == Some(&b'\r') && bytes.get(i) == Some(&b'\n') {
        i += 1;
    }
    let mut n = 0u32;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            b'\r' | b'\n' => i += 1,
            _ => break,
        }
        n = n.saturating_add(1);
    }
    n
}

/// Comma, unless the start of the file has more tabs than commas (a tab-separated export).
pub(crate) fn csv_delimiter(text: &str) -> u8 {
    let head = &text.as_bytes()[..text.len().min(4096)];
    let count = |d: u8| head.iter().filter(|&&b| b == d).count();
    if count(b'\t') > count(b',') {
        b'\t'
    } else {
        b','
    }
}

/// Excel's column limit. Header cells beyond it are ignored, so a crafted cell reference cannot
/// make us allocate per-column tables of billions of entries.
pub(crate) const MAX_COLUMNS: usize = 16_384;

/// How many non-blank rows may precede the header (title, notes) before we give up looking.
pub(crate) const MAX_HEADER_SEARCH: usize = 10;

struct Header {
    row: u32,
    /// Field per column index (absolute column index in the sheet).
    by_col: Vec<Option<Field>>,
    /// Header text per column index, as in the file (trimmed).
    texts: Vec<String>,
    /// 1 + index of the last non-blank header cell: CSV rows shorter than this are broken.
    width: usize,
}

struct Builder {
    max_rows: usize,
    /// Non-blank rows seen before the header was recognised: (row, [(col, text)]).
    candidates: Vec<(u32, Vec<(usize, String)>)>,
    header: Option<Header>,
    columns: HashMap<&'static str, String>,
    unknown_columns: Vec<String>,
    rows: Vec<ParsedRow>,
    /// Whether a non-blank row below the header has been seen.
    data_seen: bool,
}

impl RowSink for Builder {
    fn row<'c>(
        &mut self,
        row: u32,
        cells: impl Iterator<Item = (usize, Cell<'c>)>,
        width: Option<usize>,
    ) -> Result<(), ImportError> {
        self.feed_row(row, cells, width)
    }
}

impl Builder {
    fn new(max_rows: usize) -> Self {
        Builder {
            max_rows,
            candidates: Vec::new(),
            header: None,
            columns: HashMap::new(),
            unknown_columns: Vec::new(),
            rows: Vec::new(),
            data_seen: false,
        }
    }

    /// `len` is the CSV record length (XLSX rows have no length: cells past the header are
    /// notes people keep beside the table, and are ignored).
    fn feed_row<'c>(
        &mut self,
        row: u32,
        cells: impl Iterator<Item = (usize, Cell<'c>)>,
        len: Option<usize>,
    ) -> Result<(), ImportError> {
        let Some(header) = &self.header else {
            return self.seek_header(row, cells);
        };

        let mut raw = RawEstablishment::default();
        let mut problems = Vec::new();
        let mut non_blank = false;
        let mut beyond_header = false;
        // Some templates put a second header row (English names under Chinese ones): a first
        // data row that only repeats header names for its own columns is skipped.
        let check_echo = !self.data_seen;
        let (mut echoes, mut non_echoes) = (0usize, 0usize);
        for (col, cell) in cells {
            if cell.is_blank() {
                continue;
            }
            match header.by_col.get(col) {
                Some(Some(field)) => {
                    non_blank = true;
                    if check_echo {
                        match cell {
                            Cell::Text(t) if match_header(t) == Some(*field) => echoes += 1,
                            _ => non_echoes += 1,
                        }
                    }
                    let column = &header.texts[col];
                    assign(*field, cell, row, column, &mut raw, &mut problems);
                }
                Some(None) => {}
                None => beyond_header = true,
            }
        }
        // Nothing in the known columns: a blank row, or a note beside/under the table.
        if !non_blank {
            return Ok(());
        }
        self.data_seen = true;
        if check_echo && echoes >= 2 && non_echoes == 0 {
            return Ok(());
        }
        if self.rows.len() >= self.max_rows {
            return Err(ImportError::TooManyRows(self.max_rows));
        }
        if let Some(len) = len {
            if len < header.width || beyond_header {
                problems.push(RowProblem {
                    row,
                    column: None,
                    code: "bad_row_length".to_string(),
                    message: format!(
                        "this row has {len} cells but the header row has {}; a separator is missing or extra, so values may be in the wrong columns",
                        header.width
                    ),
                });
            }
        }
        self.rows.push(ParsedRow { row, raw, problems });
        Ok(())
    }

    fn seek_header<'c>(
        &mut self,
        row: u32,
        cells: impl Iterator<Item = (usize, Cell<'c>)>,
    ) -> Result<(), ImportError> {
        let texts: Vec<(usize, String)> = cells
            .filter(|(i, c)| *i < MAX_COLUMNS && !c.is_blank())
            .map(|(i, c)| (i, header_text(c)))
            .collect();
        if texts.is_empty() {
            return Ok(());
        }
        let recognised = texts
            .iter()
            .filter(|(_, t)| match_header(t).is_some())
            .count();
        if recognised >= 2 {
            self.candidates.clear();
            return self.set_header(row, texts);
        }
        self.candidates.push((row, texts));
        if self.candidates.len() >= MAX_HEADER_SEARCH {
            // Report against the first row, where the user expects the header.
            let (row, texts) = self.candidates.swap_remove(0);
            return self.set_header(row, texts);
        }
        Ok(())
    }

    fn set_header(&mut self, row: u32, texts: Vec<(usize, String)>) -> Result<(), ImportError> {
        let width = texts.iter().map(|(i, _)| i + 1).max().unwrap_or(0);
        let mut by_col = vec![None; width];
        let mut col_texts = vec![String::new(); width];
        for (col, text) in texts {
            match match_header(&text) {
                Some(field) => {
                    if self.columns.contains_key(spec(field).name) {
                        return Err(ImportError::DuplicateColumn(text));
                    }
                    self.columns.insert(spec(field).name, text.clone());
                    by_col[col] = Some(field);
                }
                None => self.unknown_columns.push(text.clone()),
            }
            col_texts[col] = text;
        }
        let mut missing: Vec<String> = SPECS
            .iter()
            .filter(|s| s.required && !self.columns.contains_key(s.name))
            .map(|s| s.name.to_string())
            .collect();
        if !self.columns.contains_key("uscc") && !self.columns.contains_key("license_no") {
            missing.push("uscc|license_no".to_string());
        }
        if !missing.is_empty() {
            return Err(ImportError::MissingColumns(missing));
        }
        self.header = Some(Header {
            row,
            by_col,
            texts: col_texts,
            width,
        });
        Ok(())
    }

    fn finish(mut self, format: Format) -> Result<Parsed, ImportError> {
        if self.header.is_none() {
            if self.candidates.is_empty() {
                return Err(ImportError::Empty);
            }
            let (row, texts) = self.candidates.swap_remove(0);
            self.set_header(row, texts)?;
        }
        Ok(Parsed {
            format,
            rows: self.rows,
            columns: self.columns,
            unknown_columns: self.unknown_columns,
            header_row: self.header.map_or(1, |h| h.row),
        })
    }
}

fn header_text(cell: Cell<'_>) -> String {
    match cell {
        Cell::Text(s) => s.trim().to_string(),
        Cell::Int(i) => i.to_string(),
        Cell::Number(f) => render_number(f),
        Cell::Bool(b) => if b { "TRUE" } else { "FALSE" }.to_string(),
        Cell::Date => "(date)".to_string(),
        Cell::Error(e) => e.to_string(),
        Cell::Empty => String::new(),
    }
}

/// Integers without ".0" (a phone typed as a number is a float in XLSX), others as Rust's
/// shortest round-trip decimal (never scientific notation).
pub(crate) fn render_number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// `="0123"` is the usual trick to stop Excel from reformatting a CSV value.
pub(crate) fn unwrap_formula_text(s: &str) -> &str {
    s.strip_prefix("=\"")
        .and_then(|r| r.strip_suffix('"'))
        .map_or(s, str::trim)
}

/// Excel keeps only 15 significant digits of a number: an 18-digit code typed as a number has
/// already lost its tail, so it is refused rather than stored wrong.
const EXCEL_EXACT_LIMIT: f64 = 1.0e15;

fn assign(
    field: Field,
    cell: Cell<'_>,
    row: u32,
    column: &str,
    raw: &mut RawEstablishment,
    problems: &mut Vec<RowProblem>,
) {
    let mut problem = |code: &str, message: String| {
        problems.push(RowProblem {
            row,
            column: Some(column.to_string()),
            code: code.to_string(),
            message,
        })
    };
    let kind = spec(field).kind;

    if kind == Kind::Number {
        let value = match cell {
            Cell::Empty => None,
            Cell::Int(i) => Some(i as f64),
            Cell::Number(f) => Some(f),
            Cell::Text(s) => {
                let t = unwrap_formula_text(s.trim());
                if t.is_empty() {
                    None
                } else {
                    match t.parse::<f64>() {
                        Ok(f) if f.is_finite() => Some(f),
                        _ => {
                            problem("not_a_number", format!("{t:?} is not a number"));
                            None
                        }
                    }
                }
            }
            Cell::Bool(_) | Cell::Date => {
                problem(
                    "not_a_number",
                    "expected a decimal number such as 116.397128".to_string(),
                );
                None
            }
            Cell::Error(e) => {
                problem(
                    "cell_error",
                    format!("the cell shows the spreadsheet error {e}"),
                );
                None
            }
        };
        match field {
            Field::Lng => raw.lng = value,
            _ => raw.lat = value,
        }
        return;
    }

    let value = match cell {
        Cell::Empty => None,
        Cell::Text(s) => {
            let mut t = unwrap_formula_text(s.trim());
            if kind == Kind::Code {
                // A leading apostrophe is how people force text in Excel; in CSV it survives.
                t = t.strip_prefix('\'').unwrap_or(t).trim();
            }
            (!t.is_empty()).then(|| t.to_string())
        }
        Cell::Int(i) => Some(i.to_string()),
        Cell::Number(f) => {
            if kind == Kind::Code && f.abs() >= EXCEL_EXACT_LIMIT {
                problem(
                    "number_precision_lost",
                    format!(
                        "{} was entered as a number and Excel has rounded it; format the column as text and type the code again",
                        render_number(f)
                    ),
                );
                None
            } else {
                Some(render_number(f))
            }
        }
        Cell::Bool(b) => Some(if b { "TRUE" } else { "FALSE" }.to_string()),
        Cell::Date => {
            problem(
                "unexpected_date",
                "the spreadsheet turned this value into a date; format the cell as text and type it again".to_string(),
            );
            None
        }
        Cell::Error(e) => {
            problem(
                "cell_error",
                format!("the cell shows the spreadsheet error {e}"),
            );
            None
        }
    };
    let slot = match field {
        Field::SignName => &mut raw.sign_name,
        Field::LicensedName => &mut raw.licensed_name,
        Field::Uscc => &mut raw.uscc,
        Field::LicenseNo => &mut raw.license_no,
        Field::Category => &mut raw.category,
        Field::Address => &mut raw.address,
        Field::Town => &mut raw.town,
        Field::RiskGrade => &mut raw.risk_grade,
        Field::Crs => &mut raw.crs,
        Field::ContactName => &mut raw.contact_name,
        Field::ContactPhone => &mut raw.contact_phone,
        Field::QuantGrade => &mut raw.quant_grade,
        Field::Status => &mut raw.status,
        Field::Lng | Field::Lat => return,
    };
    *slot = value;
}

// ---------------------------------------------------------------------------------------------
// Template

/// Data validation covers this many rows below the header (Excel's row count; costs nothing).
const TEMPLATE_ROWS: u32 = 1_048_575;

/// The import template: sheet "establishments" with the Chinese headers in row 1 (bold, required
/// ones in red, each with a note giving the English name and what to enter), frozen header,
/// text-formatted code columns (so Excel does not round 18-digit codes or drop leading zeros of
/// phone numbers), drop-downs for 业态/风险等级/坐标系/量化等级/状态, and a sheet "说明".
pub fn template_xlsx() -> Result<Vec<u8>, ImportError> {
    build_template().map_err(|e| ImportError::Template(e.to_string()))
}

fn requirement_zh(s: &Spec) -> &'static str {
    match (s.required, s.field) {
        (true, _) => "必填",
        (false, Field::Uscc | Field::LicenseNo) => "二选一",
        _ => "选填",
    }
}

fn build_template() -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let header = XlsxFormat::new()
        .set_bold()
        .set_background_color(Color::RGB(0xDDEBF7))
        .set_border(FormatBorder::Thin)
        .set_align(FormatAlign::Center)
        .set_align(FormatAlign::VerticalCenter);
    let required = header.clone().set_font_color(Color::RGB(0xC00000));
    let text = XlsxFormat::new().set_num_format("@");

    let category_labels: Vec<&str> = Category::ALL.iter().map(|c| c.label_zh()).collect();
    let risk_grades: Vec<&str> = RiskGrade::ALL.iter().map(|g| g.as_str()).collect();

    let sheet = workbook.add_worksheet();
    sheet.set_name("establishments")?;
    sheet.set_row_height(0, 22)?;
    for (i, s) in SPECS.iter().enumerate() {
        let col = i as u16;
        let format = if s.required { &required } else { &header };
        sheet.write_string_with_format(0, col, s.zh, format)?;
        sheet.set_column_width(col, s.width)?;
        if s.kind == Kind::Code {
            sheet.set_column_format(col, &text)?;
        }
        let requirement = requirement_zh(s);
        let note = Note::new(format!("{}（{requirement}）\n{}", s.name, s.help))
            .add_author_prefix(false)
            .set_width(240)
            .set_height(80);
        sheet.insert_note(0, col, &note)?;

        let list: Option<Vec<&str>> = match s.field {
            Field::Category => Some(category_labels.clone()),
            Field::RiskGrade => Some(risk_grades.clone()),
            Field::Crs => Some(vec!["wgs84", "gcj02", "bd09"]),
            Field::QuantGrade => Some(vec!["A", "B", "C"]),
            Field::Status => Some(vec!["营业", "停业", "注销"]),
            _ => None,
        };
        let validation = match (list, s.field) {
            (Some(list), _) => Some(
                DataValidation::new()
                    .allow_list_strings(&list)?
                    .set_error_title("取值无效")?
                    .set_error_message(format!("请从下拉列表中选择{}", s.zh))?,
            ),
            (None, Field::Lng) => Some(
                DataValidation::new()
                    .allow_decimal_number(DataValidationRule::Between(-180.0, 180.0))
                    .set_error_message("经度应为 -180 到 180 之间的小数")?,
            ),
            (None, Field::Lat) => Some(
                DataValidation::new()
                    .allow_decimal_number(DataValidationRule::Between(-90.0, 90.0))
                    .set_error_message("纬度应为 -90 到 90 之间的小数")?,
            ),
            _ => None,
        };
        if let Some(v) = validation {
            // A warning, not a stop: the parser also accepts English codes and "A级".
            let v = v.set_error_style(DataValidationErrorStyle::Warning);
            sheet.add_data_validation(1, col, TEMPLATE_ROWS, col, &v)?;
        }
    }
    sheet.set_freeze_panes(1, 0)?;

    let help = workbook.add_worksheet();
    help.set_name("说明")?;
    let bold = XlsxFormat::new().set_bold();
    let wrap = XlsxFormat::new().set_text_wrap();
    help.set_column_width(0, 20)?;
    help.set_column_width(1, 18)?;
    help.set_column_width(2, 10)?;
    help.set_column_width(3, 70)?;
    let mut r = 0u32;
    for line in [
        "填写说明",
        "1. 在“establishments”工作表中填写，第一行为表头，请勿修改或删除；从第二行起每行一个经营主体。",
        "2. 红色表头为必填列；统一社会信用代码与食品经营许可证编号至少填写一项。",
        "3. 已登记的经营主体会被更新，未登记的会新增。任何一行有错误时，整个文件都不会导入，请按提示修改后重新上传。",
        "4. 经度、纬度须同时填写，并注明坐标系。表头也可使用英文字段名；也可上传 CSV 文件（UTF-8 或 GBK 编码）。",
    ] {
        help.write_string_with_format(r, 0, line, if r == 0 { &bold } else { &wrap })?;
        r += 1;
    }
    r += 1;
    for (c, h) in ["列名", "英文字段名", "是否必填", "说明"]
        .iter()
        .enumerate()
    {
        help.write_string_with_format(r, c as u16, *h, &header)?;
    }
    r += 1;
    for s in &SPECS {
        help.write_string(r, 0, s.zh)?;
        help.write_string(r, 1, s.name)?;
        help.write_string(r, 2, requirement_zh(s))?;
        help.write_string_with_format(r, 3, s.help, &wrap)?;
        r += 1;
    }

    let mut table = |title: &str, rows: &[(&str, &str)]| -> Result<(), XlsxError> {
        r += 1;
        help.write_string_with_format(r, 0, title, &bold)?;
        r += 1;
        for (a, b) in rows {
            help.write_string(r, 0, *a)?;
            help.write_string(r, 1, *b)?;
            r += 1;
        }
        Ok(())
    };
    let categories: Vec<(&str, &str)> = Category::ALL
        .iter()
        .map(|c| (c.label_zh(), c.code()))
        .collect();
    table("业态可选值（中文或英文代码均可）", &categories)?;
    table(
        "风险等级",
        &[
            ("A", "低风险"),
            ("B", "中低风险"),
            ("C", "中高风险"),
            ("D", "高风险"),
        ],
    )?;
    table(
        "坐标系",
        &[
            ("wgs84", "GPS 原始坐标（国际标准）"),
            ("gcj02", "高德地图、腾讯地图坐标"),
            ("bd09", "百度地图坐标"),
        ],
    )?;
    table(
        "量化等级（可不填）",
        &[("A", "优秀"), ("B", "良好"), ("C", "一般")],
    )?;
    table(
        "状态（不填视为营业）",
        &[("营业", "open"), ("停业", "suspended"), ("注销", "closed")],
    )?;

    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_xlsxwriter::Workbook;

    const ZH_HEADER: &str = "牌匾名称,营业执照名称,统一社会信用代码,食品经营许可证编号,业态,经营地址,街道乡镇,风险等级,经度,纬度,坐标系,联系人,联系电话";
    const ZH_ROW: &str = "老王面馆,北京市老王餐饮有限公司,91110108MA01ABCD1X,JY11101080000001,小型餐馆,北京市海淀区中关村大街1号,中关村街道,B,116.3,39.98,gcj02,王师傅,13800138000";

    fn csv(lines: &[&str]) -> String {
        lines.join("\r\n")
    }

    #[test]
    fn specs_are_in_field_order() {
        for (i, s) in SPECS.iter().enumerate() {
            assert_eq!(s.field as usize, i, "{}", s.name);
        }
    }

    fn check_first_row(p: &Parsed) {
        assert_eq!(p.rows.len(), 1);
        let r = &p.rows[0];
        assert_eq!(r.row, 2);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.raw.sign_name.as_deref(), Some("老王面馆"));
        assert_eq!(r.raw.uscc.as_deref(), Some("91110108MA01ABCD1X"));
        assert_eq!(r.raw.license_no.as_deref(), Some("JY11101080000001"));
        assert_eq!(r.raw.category.as_deref(), Some("小型餐馆"));
        assert_eq!(r.raw.town.as_deref(), Some("中关村街道"));
        assert_eq!(r.raw.risk_grade.as_deref(), Some("B"));
        assert_eq!(r.raw.lng, Some(116.3));
        assert_eq!(r.raw.lat, Some(39.98));
        assert_eq!(r.raw.crs.as_deref(), Some("gcj02"));
        assert_eq!(r.raw.contact_phone.as_deref(), Some("13800138000"));
        assert_eq!(r.raw.quant_grade, None);
    }

    #[test]
    fn utf8_without_bom() {
        let data = csv(&[ZH_HEADER, ZH_ROW]);
        assert_eq!(sniff(data.as_bytes()).unwrap(), Format::Csv);
        let p = parse(data.as_bytes(), 100).unwrap();
        assert_eq!(p.format, Format::Csv);
        check_first_row(&p);
        assert_eq!(p.columns["uscc"], "统一社会信用代码");
        assert_eq!(p.header_row, 1);
        assert!(p.unknown_columns.is_empty());
        assert!(p.rows[0].raw.validate().is_ok());
    }

    #[test]
    fn utf8_with_bom() {
        let mut data = b"\xEF\xBB\xBF".to_vec();
        data.extend_from_slice(csv(&[ZH_HEADER, ZH_ROW, ""]).as_bytes());
        assert_eq!(sniff(&data).unwrap(), Format::Csv);
        let p = parse(&data, 100).unwrap();
        check_first_row(&p);
        assert_eq!(p.columns["sign_name"], "牌匾名称");
    }

    #[test]
    fn gb18030_csv() {
        let text = csv(&[ZH_HEADER, ZH_ROW]);
        let (bytes, _, unmappable) = encoding_rs::GB18030.encode(&text);
        assert!(!unmappable);
        assert!(std::str::from_utf8(&bytes).is_err());
        assert_eq!(sniff(&bytes).unwrap(), Format::Csv);
        let p = parse(&bytes, 100).unwrap();
        check_first_row(&p);
    }

    #[test]
    fn english_headers_any_case() {
        let data = csv(&[
            "Sign_Name,LICENSED_NAME,uscc,License No,category,address,town,risk_grade,lng,lat,crs,contact_name,contact_phone,quant_grade,status",
            "Noodles,Noodle Co,91110108MA01ABCD1X,,small_restaurant,1 Road,Town,a,116.3,39.98,wgs84,,,A,open",
        ]);
        let p = parse(data.as_bytes(), 100).unwrap();
        assert_eq!(p.columns.len(), 15);
        let raw = &p.rows[0].raw;
        assert_eq!(raw.sign_name.as_deref(), Some("Noodles"));
        assert_eq!(raw.license_no, None);
        assert_eq!(raw.quant_grade.as_deref(), Some("A"));
        assert_eq!(raw.status.as_deref(), Some("open"));
        assert!(raw.validate().is_ok(), "{:?}", raw.validate().err());
    }

    #[test]
    fn marked_and_mixed_headers_and_unknown_columns() {
        let data = csv(&[
            " *牌匾名称 ,营业执照名称（必填）,USCC*,业态(必填),address ,街道乡镇＊,风险等级,备注,",
            "店,公司,91110108MA01ABCD1X,快餐店,路1号,街道,A,随便写,",
        ]);
        let p = parse(data.as_bytes(), 100).unwrap();
        assert_eq!(p.columns["sign_name"], "*牌匾名称");
        assert_eq!(p.columns["licensed_name"], "营业执照名称（必填）");
        assert_eq!(p.columns["uscc"], "USCC*");
        assert_eq!(p.unknown_columns, vec!["备注".to_string()]);
        let r = &p.rows[0];
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.raw.category.as_deref(), Some("快餐店"));
        assert_eq!(r.raw.address.as_deref(), Some("路1号"));
    }

    #[test]
    fn missing_required_columns_reports_canonical_names() {
        let data = "牌匾名称,营业执照名称,业态,经营地址\nA,B,快餐店,路\n";
        match parse(data.as_bytes(), 100) {
            Err(ImportError::MissingColumns(cols)) => {
                assert_eq!(cols, vec!["town", "risk_grade", "uscc|license_no"]);
                let msg = ImportError::MissingColumns(cols).to_string();
                assert!(msg.contains("town (街道乡镇)"), "{msg}");
                assert!(
                    msg.contains("uscc (统一社会信用代码) or license_no"),
                    "{msg}"
                );
            }
            other => panic!("{other:?}"),
        }
        // A file with no recognisable header at all.
        match parse("a,b,c\n1,2,3\n".as_bytes(), 100) {
            Err(ImportError::MissingColumns(cols)) => assert_eq!(cols.len(), 7),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duplicate_column() {
        let data = format!("{ZH_HEADER},手机\n");
        match parse(data.as_bytes(), 100) {
            Err(ImportError::DuplicateColumn(c)) => assert_eq!(c, "手机"),
            other => panic!("{other:?}"),
        }
        let data = format!("{ZH_HEADER},uscc\n");
        assert!(matches!(
            parse(data.as_bytes(), 100),
            Err(ImportError::DuplicateColumn(c)) if c == "uscc"
        ));
    }

    #[test]
    fn blank_rows_skipped_and_row_numbers_match_excel() {
        let data = [
            ZH_HEADER,
            ZH_ROW,
            "",
            ",,,, ,,,,,,,,",
            "\"多行\n店名\",公司,91110108MA01ABCD1X,,快餐店,路,街,A,,,,,",
            "",
            "",
            "店3,公司,91110108MA01ABCD1X,,快餐店,路,街,A,,,,,",
        ]
        .join("\n");
        let p = parse(data.as_bytes(), 100).unwrap();
        let rows: Vec<u32> = p.rows.iter().map(|r| r.row).collect();
        assert_eq!(rows, vec![2, 5, 8]);
        assert_eq!(p.rows[1].raw.sign_name.as_deref(), Some("多行\n店名"));
    }

    #[test]
    fn title_row_above_header() {
        let data = format!("海淀区食品经营者名录,,,\n\n{ZH_HEADER}\n{ZH_ROW}\n");
        let p = parse(data.as_bytes(), 100).unwrap();
        assert_eq!(p.header_row, 3);
        assert_eq!(p.rows[0].row, 4);
    }

    #[test]
    fn cell_problems() {
        let data = csv(&[
            ZH_HEADER,
            "店,公司,91110108MA01ABCD1X,,快餐店,路,街,A,东经116度,39.9,gcj02,,",
            "店,公司,91110108MA01ABCD1X,,快餐店,路,街,A,116.3,39.9",
            "店,公司,91110108MA01ABCD1X,,快餐店,路,街,A,116.3,39.9,gcj02,,,多余",
            "店,公司,91110108MA01ABCD1X,,快餐店,路,街,A,116.3,39.9,gcj02,,,,",
            "店,公司,=\"91110108MA01ABCD1X\",,快餐店,路,街,A,NaN,inf,gcj02,,'13800138000",
        ]);
        let p = parse(data.as_bytes(), 100).unwrap();
        let r = &p.rows[0];
        assert_eq!(r.raw.lng, None);
        assert_eq!(r.raw.lat, Some(39.9));
        assert_eq!(r.problems.len(), 1);
        assert_eq!(r.problems[0].code, "not_a_number");
        assert_eq!(r.problems[0].column.as_deref(), Some("经度"));
        assert_eq!(r.problems[0].row, 2);

        assert_eq!(p.rows[1].problems[0].code, "bad_row_length");
        assert_eq!(p.rows[1].problems[0].column, None);
        assert_eq!(p.rows[1].raw.lng, Some(116.3));
        assert_eq!(p.rows[2].problems[0].code, "bad_row_length");
        // Trailing empty cells are harmless.
        assert!(p.rows[3].problems.is_empty(), "{:?}", p.rows[3].problems);

        let r = &p.rows[4];
        assert_eq!(r.raw.uscc.as_deref(), Some("91110108MA01ABCD1X"));
        assert_eq!(r.raw.contact_phone.as_deref(), Some("13800138000"));
        let codes: Vec<&str> = r.problems.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(codes, vec!["not_a_number", "not_a_number"]);
    }

    #[test]
    fn tab_separated() {
        let data = csv(&[&ZH_HEADER.replace(',', "\t"), &ZH_ROW.replace(',', "\t")]);
        check_first_row(&parse(data.as_bytes(), 100).unwrap());
    }

    #[test]
    fn too_many_rows() {
        let mut lines = vec![ZH_HEADER];
        lines.extend(std::iter::repeat_n(ZH_ROW, 4));
        let data = csv(&lines);
        assert_eq!(parse(data.as_bytes(), 4).unwrap().rows.len(), 4);
        assert!(matches!(
            parse(data.as_bytes(), 3),
            Err(ImportError::TooManyRows(3))
        ));
    }

    #[test]
    fn empty_inputs() {
        assert!(matches!(sniff(b""), Err(ImportError::Empty)));
        assert!(matches!(
            parse(b"\xEF\xBB\xBF", 10),
            Err(ImportError::Empty)
        ));
        assert!(matches!(
            parse(b" \r\n,,,\r\n\n", 10),
            Err(ImportError::Empty)
        ));
        let p = parse(ZH_HEADER.as_bytes(), 10).unwrap();
        assert!(p.rows.is_empty());
    }

    #[test]
    fn unsupported_formats() {
        let png =
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
        assert!(matches!(sniff(png), Err(ImportError::UnsupportedFormat(_))));
        assert!(matches!(
            parse(png, 10),
            Err(ImportError::UnsupportedFormat(_))
        ));
        let xls = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0\0\0";
        assert!(matches!(sniff(xls), Err(ImportError::UnsupportedFormat(_))));
        let utf16 = b"\xFF\xFEa\0b\0";
        assert!(matches!(
            sniff(utf16),
            Err(ImportError::UnsupportedFormat(_))
        ));
        // Invalid in both UTF-8 and GB18030.
        assert!(matches!(
            sniff(b"abc\x80\xFF"),
            Err(ImportError::UnsupportedFormat(_))
        ));
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A minimal stored (uncompressed) ZIP with the given entries.
    fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in entries {
            let offset = out.len() as u32;
            let mut local = Vec::new();
            local.extend_from_slice(b"PK\x03\x04");
            local.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            local.extend_from_slice(&crc32(data).to_le_bytes());
            local.extend_from_slice(&(data.len() as u32).to_le_bytes());
            local.extend_from_slice(&(data.len() as u32).to_le_bytes());
            local.extend_from_slice(&(name.len() as u16).to_le_bytes());
            local.extend_from_slice(&0u16.to_le_bytes());
            local.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&local);
            out.extend_from_slice(data);
            central.extend_from_slice(b"PK\x01\x02");
            central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&crc32(data).to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn zip_that_is_not_xlsx() {
        let z = zip(&[("readme.txt", b"hello"), ("xl/workbook.xml.bak", b"x")]);
        assert!(matches!(sniff(&z), Err(ImportError::UnsupportedFormat(_))));
        assert!(matches!(
            parse(&z, 10),
            Err(ImportError::UnsupportedFormat(_))
        ));
        // Named like a workbook but not one: sniffed as XLSX, refused by the reader.
        let z = zip(&[("xl/workbook.xml", b"<nonsense")]);
        assert_eq!(sniff(&z).unwrap(), Format::Xlsx);
        assert!(matches!(parse(&z, 10), Err(ImportError::Malformed(_))));
    }

    /// A hand-written workbook, for cells rust_xlsxwriter cannot produce (error values,
    /// corrupt references). `sheet_data` is the inside of `<sheetData>`.
    fn raw_xlsx(sheet_data: &str, shared: &[&str]) -> Vec<u8> {
        let workbook = r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
        let rels = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#;
        let sheet = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{sheet_data}</sheetData></worksheet>"#
        );
        let sst: String = shared
            .iter()
            .map(|t| format!("<si><t>{t}</t></si>"))
            .collect();
        let sst = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{n}" uniqueCount="{n}">{sst}</sst>"#,
            n = shared.len()
        );
        zip(&[
            ("xl/workbook.xml", workbook.as_bytes()),
            ("xl/_rels/workbook.xml.rels", rels.as_bytes()),
            ("xl/worksheets/sheet1.xml", sheet.as_bytes()),
            ("xl/sharedStrings.xml", sst.as_bytes()),
        ])
    }

    fn inline_row(row: u32, values: &[&str]) -> String {
        let cells: String = values
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(c, v)| {
                format!(
                    r#"<c r="{}{row}" t="inlineStr"><is><t>{v}</t></is></c>"#,
                    (b'A' + c as u8) as char
                )
            })
            .collect();
        format!(r#"<row r="{row}">{cells}</row>"#)
    }

    #[test]
    fn hand_written_xlsx_error_cell_and_header_in_shared_strings() {
        let headers: Vec<&str> = ZH_HEADER.split(',').collect();
        let header_cells: String = (0..headers.len())
            .map(|c| {
                format!(
                    r#"<c r="{}3" t="s"><v>{c}</v></c>"#,
                    (b'A' + c as u8) as char
                )
            })
            .collect();
        let mut values: Vec<&str> = ZH_ROW.split(',').collect();
        values[11] = "";
        let data = format!(
            r#"<row r="1"><c r="A1" t="inlineStr"><is><t>标题</t></is></c></row><row r="3">{header_cells}</row>{}"#,
            inline_row(5, &values).replace("</row>", r#"<c r="L5" t="e"><v>#DIV/0!</v></c></row>"#)
        );
        let bytes = raw_xlsx(&data, &headers);
        let p = parse(&bytes, 10).unwrap();
        assert_eq!(p.header_row, 3);
        assert_eq!(p.rows.len(), 1);
        let r = &p.rows[0];
        assert_eq!(r.row, 5);
        assert_eq!(r.raw.sign_name.as_deref(), Some("老王面馆"));
        assert_eq!(r.raw.lng, Some(116.3));
        assert_eq!(r.raw.contact_name, None);
        assert_eq!(r.problems.len(), 1);
        assert_eq!(r.problems[0].code, "cell_error");
        assert_eq!(r.problems[0].column.as_deref(), Some("联系人"));
        assert!(r.problems[0].message.contains("#DIV/0!"));
    }

    /// One row [`read_rows`] handed its sink: (row, [(column, text)], width).
    type RecordedRow = (u32, Vec<(usize, String)>, Option<usize>);

    #[derive(Default)]
    struct Recorded(Vec<RecordedRow>);

    impl RowSink for Recorded {
        fn row<'c>(
            &mut self,
            row: u32,
            cells: impl Iterator<Item = (usize, Cell<'c>)>,
            width: Option<usize>,
        ) -> Result<(), ImportError> {
            let cells = cells
                .map(|(i, c)| match c {
                    Cell::Text(t) => (i, t.to_string()),
                    other => (i, format!("{other:?}")),
                })
                .collect();
            self.0.push((row, cells, width));
            Ok(())
        }
    }

    #[test]
    fn read_rows_numbers_rows_as_shown_and_skips_empty_xlsx_rows() {
        let text = |v: &[(usize, &str)]| -> Vec<(usize, String)> {
            v.iter().map(|(i, t)| (*i, t.to_string())).collect()
        };
        // CSV: every record with its length; blank lines count as rows.
        let mut r = Recorded::default();
        assert_eq!(read_rows(b"a,b\r\n\r\n\nc\n", &mut r).unwrap(), Format::Csv);
        assert_eq!(
            r.0,
            vec![
                (1, text(&[(0, "a"), (1, "b")]), Some(2)),
                (4, text(&[(0, "c")]), Some(1)),
            ]
        );
        // XLSX: the rows that have a non-empty cell, by their sheet row, without a width; a
        // styled empty cell is no cell.
        let data = format!(
            r#"{}<row r="2"><c r="B2" s="1"/></row>{}"#,
            inline_row(1, &["x", "", "y"]),
            inline_row(3, &["", "z"])
        );
        let mut r = Recorded::default();
        assert_eq!(
            read_rows(&raw_xlsx(&data, &[]), &mut r).unwrap(),
            Format::Xlsx
        );
        assert_eq!(
            r.0,
            vec![
                (1, text(&[(0, "x"), (2, "y")]), None),
                (3, text(&[(1, "z")]), None),
            ]
        );
    }

    #[test]
    fn hand_written_xlsx_hostile_cells() {
        // A header cell at an absurd column must not allocate per-column tables for it.
        let headers: Vec<&str> = ZH_HEADER.split(',').collect();
        let data = format!(
            r#"{}<row r="2"><c r="ZZZZZ2" t="inlineStr"><is><t>x</t></is></c></row>"#,
            inline_row(1, &headers).replace(
                "</row>",
                r#"<c r="ZZZZZ1" t="inlineStr"><is><t>备注</t></is></c></row>"#
            )
        );
        let p = parse(&raw_xlsx(&data, &[]), 10).unwrap();
        assert!(p.unknown_columns.is_empty());
        assert!(p.rows.is_empty());

        // A shared-string index past the table makes calamine panic; we report it instead.
        let data = format!(
            r#"{}<row r="2"><c r="A2" t="s"><v>99</v></c></row>"#,
            inline_row(1, &headers)
        );
        assert!(matches!(
            parse(&raw_xlsx(&data, &["a"]), 10),
            Err(ImportError::Malformed(_))
        ));
    }

    #[test]
    fn second_header_row_is_skipped() {
        let en = "sign_name,licensed_name,uscc,license_no,category,address,town,risk_grade,lng,lat,crs,contact_name,contact_phone";
        let data = csv(&[ZH_HEADER, en, ZH_ROW]);
        let p = parse(data.as_bytes(), 10).unwrap();
        assert_eq!(p.rows.len(), 1);
        assert_eq!(p.rows[0].row, 3);
        // Only directly below the header.
        let data = csv(&[ZH_HEADER, ZH_ROW, en]);
        assert_eq!(parse(data.as_bytes(), 10).unwrap().rows.len(), 2);
    }

    #[test]
    fn crlf_and_leading_blank_lines_keep_row_numbers() {
        let multi = "\"多行\r\n店名\",公司,91110108MA01ABCD1X,,快餐店,路,街,A,,,,,";
        let data = ["", "", ZH_HEADER, ZH_ROW, "", multi, "", ZH_ROW, ""].join("\r\n");
        let p = parse(data.as_bytes(), 10).unwrap();
        assert_eq!(p.header_row, 3);
        let rows: Vec<u32> = p.rows.iter().map(|r| r.row).collect();
        assert_eq!(rows, vec![4, 6, 8]);
    }

    fn xlsx_fixture() -> Vec<u8> {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        let headers = ZH_HEADER.split(',').collect::<Vec<_>>();
        for (c, h) in headers.iter().enumerate() {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        // Row 2: phone as a number, lng/lat as numbers.
        let row2 = ZH_ROW.split(',').collect::<Vec<_>>();
        for (c, v) in row2.iter().enumerate() {
            match c {
                8 => ws.write_number(1, 8, 116.397128).unwrap(),
                9 => ws.write_number(1, 9, 39.916527).unwrap(),
                12 => ws.write_number(1, 12, 13800138000.0).unwrap(),
                _ => ws.write_string(1, c as u16, *v).unwrap(),
            };
        }
        // Row 3 blank; row 4: lng as text, lat as garbage, USCC typed as a number, a note
        // beyond the header, risk grade as a number.
        for (c, v) in row2.iter().enumerate() {
            match c {
                2 => ws.write_number(3, 2, 911101080000000000.0).unwrap(),
                7 => ws.write_number(3, 7, 1.0).unwrap(),
                8 => ws.write_string(3, 8, " 116.5 ").unwrap(),
                9 => ws.write_string(3, 9, "北纬39").unwrap(),
                _ => ws.write_string(3, c as u16, *v).unwrap(),
            };
        }
        ws.write_string(3, 20, "备注在表外").unwrap();
        let dt = rust_xlsxwriter::ExcelDateTime::from_ymd(2024, 1, 2).unwrap();
        let date_fmt = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        ws.write_datetime_with_format(4, 6, &dt, &date_fmt).unwrap();
        ws.write_string(4, 0, "只有牌匾").unwrap();
        wb.add_worksheet()
            .write_string(0, 0, "second sheet")
            .unwrap();
        wb.save_to_buffer().unwrap()
    }

    #[test]
    fn xlsx_roundtrip() {
        let bytes = xlsx_fixture();
        assert_eq!(sniff(&bytes).unwrap(), Format::Xlsx);
        let p = parse(&bytes, 100).unwrap();
        assert_eq!(p.format, Format::Xlsx);
        assert_eq!(p.rows.len(), 3);
        let r = &p.rows[0];
        assert_eq!(r.row, 2);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.raw.contact_phone.as_deref(), Some("13800138000"));
        assert_eq!(r.raw.lng, Some(116.397128));
        assert_eq!(r.raw.lat, Some(39.916527));
        assert_eq!(r.raw.uscc.as_deref(), Some("91110108MA01ABCD1X"));
        assert!(r.raw.validate().is_ok(), "{:?}", r.raw.validate().err());

        let r = &p.rows[1];
        assert_eq!(r.row, 4);
        assert_eq!(r.raw.lng, Some(116.5));
        assert_eq!(r.raw.lat, None);
        assert_eq!(r.raw.uscc, None);
        assert_eq!(r.raw.risk_grade.as_deref(), Some("1"));
        let got: Vec<(&str, Option<&str>)> = r
            .problems
            .iter()
            .map(|p| (p.code.as_str(), p.column.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("number_precision_lost", Some("统一社会信用代码")),
                ("not_a_number", Some("纬度")),
            ]
        );
        let r = &p.rows[2];
        assert_eq!(r.row, 5);
        assert_eq!(r.raw.town, None);
        assert_eq!(r.problems[0].code, "unexpected_date");
        assert_eq!(r.problems[0].column.as_deref(), Some("街道乡镇"));
    }

    #[test]
    fn template_parses_back() {
        let bytes = template_xlsx().unwrap();
        assert_eq!(sniff(&bytes).unwrap(), Format::Xlsx);
        let p = parse(&bytes, 10).unwrap();
        assert!(p.rows.is_empty());
        assert_eq!(p.columns.len(), SPECS.len());
        assert!(p.unknown_columns.is_empty());
        for s in &SPECS {
            assert_eq!(p.columns[s.name], s.zh);
        }
        let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(&bytes)).unwrap();
        assert_eq!(wb.sheet_names(), vec!["establishments", "说明"]);
        let help = wb.worksheet_range("说明").unwrap();
        let text: String = help.cells().map(|(_, _, v)| v.to_string()).collect();
        for c in Category::ALL {
            assert!(text.contains(c.label_zh()));
        }
        assert!(text.contains("gcj02"));
    }

    #[test]
    fn column_for_and_row_problem() {
        let data = csv(&[ZH_HEADER]);
        let p = parse(data.as_bytes(), 10).unwrap();
        assert_eq!(p.column_for("uscc").as_deref(), Some("统一社会信用代码"));
        assert_eq!(p.column_for("location").as_deref(), Some("经度/纬度"));
        assert_eq!(p.column_for("quant_grade").as_deref(), Some("量化等级"));
        assert_eq!(p.column_for("nonsense"), None);
        let e = FieldError::new("crs", "unknown_crs", "bad");
        let rp = p.row_problem(9, &e);
        assert_eq!(rp.row, 9);
        assert_eq!(rp.column.as_deref(), Some("坐标系"));
        assert_eq!(rp.code, "unknown_crs");

        let p = parse(
            b"sign_name,licensed_name,uscc,category,address,town,risk_grade,Longitude\n",
            1,
        )
        .unwrap();
        assert_eq!(p.column_for("location").as_deref(), Some("Longitude"));
    }

    #[test]
    fn ten_thousand_rows_xlsx() {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        for (c, h) in ZH_HEADER.split(',').enumerate() {
            ws.write_string(0, c as u16, h).unwrap();
        }
        let row: Vec<&str> = ZH_ROW.split(',').collect();
        for r in 1..=10_000u32 {
            for (c, v) in row.iter().enumerate() {
                match c {
                    8 => ws.write_number(r, 8, 116.0 + f64::from(r) / 1e5).unwrap(),
                    9 => ws.write_number(r, 9, 39.9).unwrap(),
                    12 => ws
                        .write_number(r, 12, 13800000000.0 + f64::from(r))
                        .unwrap(),
                    _ => ws.write_string(r, c as u16, *v).unwrap(),
                };
            }
        }
        let bytes = wb.save_to_buffer().unwrap();
        let start = std::time::Instant::now();
        let p = parse(&bytes, 100_000).unwrap();
        eprintln!(
            "10k rows XLSX ({} bytes) parsed in {:?}",
            bytes.len(),
            start.elapsed()
        );
        assert_eq!(p.rows.len(), 10_000);
        let last = p.rows.last().unwrap();
        assert_eq!(last.row, 10_001);
        assert_eq!(last.raw.contact_phone.as_deref(), Some("13800010000"));
        assert!(p.rows.iter().all(|r| r.problems.is_empty()));
    }

    fn csv_ish() -> impl Strategy<Value = String> {
        let body = proptest::collection::vec(
            prop_oneof![
                Just(",".to_string()),
                Just("\"".to_string()),
                Just("\n".to_string()),
                Just("\r\n".to_string()),
                Just("\t".to_string()),
                Just("=\"".to_string()),
                Just("'".to_string()),
                Just("牌匾名称".to_string()),
                Just("统一社会信用代码".to_string()),
                Just("经度".to_string()),
                Just("*".to_string()),
                "[ -~]{0,8}",
                "[0-9.eE+-]{0,10}",
                "\\PC{0,4}",
            ],
            0..60,
        )
        .prop_map(|parts| parts.concat());
        (any::<bool>(), body).prop_map(|(with_header, body)| {
            if with_header {
                format!("{ZH_HEADER}\n{body}")
            } else {
                body
            }
        })
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = sniff(&bytes);
            let _ = parse(&bytes, 50);
            let mut zipped = b"PK\x03\x04".to_vec();
            zipped.extend_from_slice(&bytes);
            let _ = parse(&zipped, 50);
        }

        #[test]
        fn csv_ish_text_never_panics(text in csv_ish(), gb in any::<bool>()) {
            let bytes = if gb {
                encoding_rs::GB18030.encode(&text).0.into_owned()
            } else {
                text.into_bytes()
            };
            let _ = sniff(&bytes);
            if let Ok(p) = parse(&bytes, 50) {
                for r in &p.rows {
                    prop_assert!(r.row > p.header_row);
                }
            }
        }

        #[test]
        fn damaged_xlsx_never_panics(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let mut bytes = xlsx_fixture();
            for (i, b) in flips {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len()));
            }
            let _ = sniff(&bytes);
            let _ = parse(&bytes, 50);
        }
    }
}
