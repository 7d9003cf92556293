//! JSON exports as one object `{"meta": ..., "items": [...]}`, the items written one by one.

use std::io::{BufWriter, Write};

use serde::Serialize;

use super::progress::{self, Progress};
use super::Result;

pub struct JsonWriter<W: Write> {
    out: BufWriter<W>,
    first: bool,
    progress: Option<Progress>,
}

/// The `meta` of an issue's export: the issue, the disclaimer and the licence.
#[derive(Debug, Serialize)]
pub struct IssueMeta<'a> {
    pub issue: &'a super::ExportIssue,
    pub disclaimer: &'static str,
    pub licence: &'static str,
}

impl<'a> IssueMeta<'a> {
    pub fn new(issue: &'a super::ExportIssue) -> IssueMeta<'a> {
        IssueMeta {
            issue,
            disclaimer: super::DISCLAIMER,
            licence: super::OPEN_LICENCE,
        }
    }
}

impl<W: Write> JsonWriter<W> {
    pub fn new(out: W, meta: &impl Serialize) -> Result<JsonWriter<W>> {
        let mut out = BufWriter::with_capacity(64 * 1024, out);
        out.write_all(b"{\"meta\":")?;
        serde_json::to_writer(&mut out, meta)?;
        out.write_all(b",\"items\":[\n")?;
        Ok(JsonWriter {
            out,
            first: true,
            progress: None,
        })
    }

    pub fn set_progress(&mut self, progress: Progress) {
        self.progress = Some(progress);
    }

    pub fn item(&mut self, item: &impl Serialize) -> Result<()> {
        if !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        serde_json::to_writer(&mut self.out, item)?;
        progress::tick(&mut self.progress);
        Ok(())
    }

    pub fn finish(mut self) -> Result<W> {
        progress::done(&mut self.progress);
        self.out.write_all(b"\n]}\n")?;
        self.out.flush()?;
        self.out
            .into_inner()
            .map_err(|e| super::ExportError::Io(e.into_error()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_and_items() {
        let mut w = JsonWriter::new(Vec::new(), &serde_json::json!({"n": 1})).unwrap();
        w.item(&"甲").unwrap();
        w.item(&2).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&w.finish().unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"meta": {"n": 1}, "items": ["甲", 2]}));
        let w = JsonWriter::new(Vec::new(), &()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&w.finish().unwrap()).unwrap();
        assert_eq!(v["items"], serde_json::json!([]));
    }
}
