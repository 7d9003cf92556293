//! CSV as Excel and WPS open it: UTF-8 with a BOM (without it they read GBK), RFC 4180 quoting
//! (a field with a quote, comma, CR or LF is quoted, quotes doubled), CRLF after every record,
//! every text cell through [`neutralise`]. Output is buffered (64 KiB) and written as it fills;
//! nothing is kept per row.

use std::io::{BufWriter, Write};

use super::cell::neutralise;
use super::progress::{self, Progress};
use super::{entry_cells, inspection_cells, Cell, ExportEntry, ExportInspection, Result};

const BOM: &[u8] = b"\xEF\xBB\xBF";
const BUFFER: usize = 64 * 1024;

pub struct CsvWriter<W: Write> {
    out: BufWriter<W>,
    progress: Option<Progress>,
}

impl<W: Write> CsvWriter<W> {
    /// A CSV for people: BOM, then the header record.
    pub fn new(out: W, headers: &[&str]) -> Result<CsvWriter<W>> {
        Self::with_bom(out, headers, true)
    }

    /// `bom: false` for machine feeds (LIVES), whose readers take the BOM for part of the
    /// first column's name.
    pub fn with_bom(out: W, headers: &[&str], bom: bool) -> Result<CsvWriter<W>> {
        let mut out = BufWriter::with_capacity(BUFFER, out);
        if bom {
            out.write_all(BOM)?;
        }
        write_record(&mut out, headers.iter().map(|h| Cell::text(h)))?;
        Ok(CsvWriter {
            out,
            progress: None,
        })
    }

    pub fn set_progress(&mut self, progress: Progress) {
        self.progress = Some(progress);
    }

    /// One record.
    pub fn row<'a>(&mut self, cells: impl IntoIterator<Item = Cell<'a>>) -> Result<()> {
        write_record(&mut self.out, cells)?;
        progress::tick(&mut self.progress);
        Ok(())
    }

    /// Flushes and hands back the writer.
    pub fn finish(mut self) -> Result<W> {
        progress::done(&mut self.progress);
        self.out.flush()?;
        self.out
            .into_inner()
            .map_err(|e| super::ExportError::Io(e.into_error()))
    }
}

/// An issue's entries, both lists in one file ([`super::ENTRY_HEADERS`]).
pub struct EntryCsv<W: Write>(pub CsvWriter<W>);

impl<W: Write> EntryCsv<W> {
    pub fn new(out: W) -> Result<EntryCsv<W>> {
        Ok(EntryCsv(CsvWriter::new(out, &super::ENTRY_HEADERS)?))
    }

    pub fn entry(&mut self, e: &ExportEntry) -> Result<()> {
        self.0.row(entry_cells(e))
    }

    pub fn finish(self) -> Result<W> {
        self.0.finish()
    }
}

/// An establishment's inspection history ([`super::INSPECTION_HEADERS`]).
pub struct InspectionCsv<W: Write>(pub CsvWriter<W>);

impl<W: Write> InspectionCsv<W> {
    pub fn new(out: W) -> Result<InspectionCsv<W>> {
        Ok(InspectionCsv(CsvWriter::new(
            out,
            &super::INSPECTION_HEADERS,
        )?))
    }

    pub fn inspection(&mut self, i: &ExportInspection) -> Result<()> {
        self.0.row(inspection_cells(i))
    }

    pub fn finish(self) -> Result<W> {
        self.0.finish()
    }
}

/// Writes one record and its CRLF.
pub(crate) fn write_record<'a>(
    out: &mut impl Write,
    cells: impl IntoIterator<Item = Cell<'a>>,
) -> std::io::Result<()> {
    for (i, c) in cells.into_iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        match c {
            Cell::Text(t) => write_text(out, &neutralise(&t))?,
            Cell::Int(n) => write!(out, "{n}")?,
            Cell::Float(x) => write!(out, "{x}")?,
            Cell::Date(d) => super::write_date(out, d)?,
            Cell::Empty => {}
        }
    }
    out.write_all(b"\r\n")
}

fn write_text(out: &mut impl Write, t: &str) -> std::io::Result<()> {
    if !t.bytes().any(|b| matches!(b, b'"' | b',' | b'\r' | b'\n')) {
        return out.write_all(t.as_bytes());
    }
    out.write_all(b"\"")?;
    let mut rest = t;
    while let Some(at) = rest.find('"') {
        out.write_all(&rest.as_bytes()[..=at])?;
        out.write_all(b"\"")?;
        rest = &rest[at + 1..];
    }
    out.write_all(rest.as_bytes())?;
    out.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_of(rows: &[Vec<Cell<'_>>]) -> String {
        let mut w = CsvWriter::new(Vec::new(), &["甲", "乙"]).unwrap();
        for r in rows {
            w.row(r.iter().cloned()).unwrap();
        }
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    #[test]
    fn bom_header_crlf_and_quoting() {
        let out = csv_of(&[
            vec![Cell::text("a,b"), Cell::text("say \"hi\"")],
            vec![Cell::text("line\r\nbreak"), Cell::Int(-3)],
            vec![Cell::Empty, Cell::Float(117.25)],
        ]);
        assert_eq!(
            out,
            "\u{feff}甲,乙\r\n\"a,b\",\"say \"\"hi\"\"\"\r\n\"line\r\nbreak\",-3\r\n,117.25\r\n"
        );
    }

    #[test]
    fn text_is_neutralised_numbers_are_not() {
        let out = csv_of(&[vec![Cell::text("=1+1"), Cell::Int(-1)]]);
        assert!(out.ends_with("'=1+1,-1\r\n"), "{out:?}");
        let out = csv_of(&[vec![Cell::text("=HYPERLINK(\"x\",\"y\")"), Cell::Empty]]);
        assert!(
            out.ends_with("\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\",\r\n"),
            "{out:?}"
        );
    }
}
