//! Writers of the files people open in spreadsheets (CSV, XLSX). Whatever a row holds, a cell
//! must never run as a formula on the reader's machine: registry fields are typed by shops and
//! importers, and `=HYPERLINK(...)` or `@SUM(...)` in a 店招名称 would execute in Excel or WPS.
//!
//! Every writer streams: it takes rows one at a time (from a `sqlx` stream on the read side) and
//! holds at most a buffer's worth of output, never the rows. None touches the database; the
//! [`stream`] adapter carries a writer's bytes to an HTTP body with backpressure.

pub mod announcement;
pub mod cell;
pub mod csv;
pub mod format;
pub mod geojson;
pub mod json;
pub mod lives;
pub mod progress;
pub mod rows;
pub mod stream;
pub mod workbook;
pub mod xlsx;

pub use format::ExportFormat;
pub use progress::Progress;
pub use rows::{
    DatedNote, ExportEntry, ExportInspection, ExportIssue, FailedItem, InspectionType, ListType,
};

/// Shown with every published result (说明 sheet, JSON `meta`): like the FSA's, a result is the
/// state found on the day.
pub const DISCLAIMER: &str = "检查结果仅反映检查时的现场状况，不代表检查日之前或之后的状况。";

/// The open-licence line of every export (the bureau's choice; CC BY 4.0 until it says
/// otherwise).
pub const OPEN_LICENCE: &str =
    "本数据为政府公开数据，依知识共享署名 4.0 国际许可协议（CC BY 4.0）开放，可自由复制、转载和再利用，请注明来源。";

/// What can go wrong while writing an export. Input rows cannot make a writer fail except by
/// overflowing a format's hard limit ([`ExportError::TooManyRows`]); everything else is I/O,
/// including the reader going away ([`std::io::ErrorKind::BrokenPipe`] from [`stream`]).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("export i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("xlsx: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// An XLSX sheet holds at most 1,048,576 rows (header included).
    #[error("the {0} sheet is full (an XLSX sheet holds 1,048,575 rows under its header)")]
    TooManyRows(&'static str),
    /// Rows written out of the order a streamed format needs (LIVES: businesses, then
    /// inspections; XLSX: one sheet's rows after another's).
    #[error("rows out of order: {0}")]
    OutOfOrder(&'static str),
    /// An XLSX cell holds at most 32,767 characters.
    #[error("a text is longer than an XLSX cell holds (32,767 characters)")]
    CellTooLong,
}

impl ExportError {
    /// Whether the failure is the reader having gone away (a closed download), which is not
    /// worth an error log.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, ExportError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

pub type Result<T> = std::result::Result<T, ExportError>;

/// The column headers of an issue's entries, in CSV and XLSX (the first, 榜单, only in CSV
/// where both lists share one file).
pub const ENTRY_HEADERS: [&str; 19] = [
    "榜单",
    "序号",
    "主体编号",
    "牌匾名称",
    "营业执照名称",
    "许可证编号",
    "经营地址",
    "乡镇街道",
    "业态",
    "检查日期",
    "检查结果",
    "上榜理由",
    "处理措施",
    "整改后信息",
    "整改日期",
    "撤销说明",
    "撤销日期",
    "经度",
    "纬度",
];

/// The column headers of an establishment's inspection history.
pub const INSPECTION_HEADERS: [&str; 6] = [
    "主体编号",
    "检查日期",
    "检查结果",
    "检查类型",
    "不符合项编号",
    "不符合项内容",
];

/// One cell as the spreadsheet writers see it: text is neutralised by the writer, numbers and
/// dates are not text.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Text(std::borrow::Cow<'a, str>),
    Int(i64),
    Float(f64),
    Date(chrono::NaiveDate),
    Empty,
}

impl<'a> Cell<'a> {
    pub fn text(s: &'a str) -> Cell<'a> {
        Cell::Text(std::borrow::Cow::Borrowed(s))
    }

    fn opt_text(s: Option<&'a str>) -> Cell<'a> {
        s.map_or(Cell::Empty, Cell::text)
    }

    fn opt_date(d: Option<chrono::NaiveDate>) -> Cell<'a> {
        d.map_or(Cell::Empty, Cell::Date)
    }
}

/// An entry's cells in [`ENTRY_HEADERS`] order.
pub fn entry_cells(e: &ExportEntry) -> [Cell<'_>; 19] {
    let point = rows::wgs84_point(e.lng, e.lat);
    [
        Cell::text(e.list_type.label_zh()),
        Cell::Int(e.position.into()),
        Cell::text(&e.establishment_id),
        Cell::text(&e.sign_name),
        Cell::text(&e.licensed_name),
        Cell::opt_text(e.license_no.as_deref()),
        Cell::text(&e.address),
        Cell::text(&e.town),
        Cell::text(&e.category),
        Cell::opt_date(e.inspected_on),
        Cell::text(rows::result_label(e.result)),
        Cell::text(&e.reason),
        Cell::opt_text(e.measures.as_deref()),
        Cell::opt_text(e.rectification.as_ref().map(|n| n.text.as_str())),
        Cell::opt_date(e.rectification.as_ref().map(|n| n.on)),
        Cell::opt_text(e.revocation.as_ref().map(|n| n.text.as_str())),
        Cell::opt_date(e.revocation.as_ref().map(|n| n.on)),
        point.map_or(Cell::Empty, |p| Cell::Float(p.0)),
        point.map_or(Cell::Empty, |p| Cell::Float(p.1)),
    ]
}

/// An inspection's cells in [`INSPECTION_HEADERS`] order (failed items joined into one cell
/// each: codes with `;`, "code text" with `；`).
pub fn inspection_cells(i: &ExportInspection) -> [Cell<'_>; 6] {
    let codes: Vec<&str> = i.failed_items.iter().map(|f| f.code.as_str()).collect();
    let texts: Vec<String> = i
        .failed_items
        .iter()
        .map(|f| format!("{} {}", f.code, f.text))
        .collect();
    [
        Cell::text(&i.establishment_id),
        Cell::Date(i.date),
        Cell::text(i.result.label_zh()),
        Cell::text(i.kind.label_zh()),
        Cell::Text(codes.join(";").into()),
        Cell::Text(texts.join("；").into()),
    ]
}

/// `YYYY-MM-DD` without chrono's format machinery (it runs once per date cell).
pub(crate) fn write_date(
    out: &mut impl std::io::Write,
    d: chrono::NaiveDate,
) -> std::io::Result<()> {
    use chrono::Datelike;
    write!(out, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}
