//! Writers of the files people open in spreadsheets (CSV, XLSX). Whatever a row holds, a cell
//! must never run as a formula on the reader's machine: registry fields are typed by shops and
//! importers, and `=HYPERLINK(...)` or `@SUM(...)` in a 店招名称 would execute in Excel or WPS.

pub mod cell;
