//! GeoJSON (RFC 7946) of an issue's entries: one FeatureCollection, written feature by feature.
//! Coordinates are WGS-84 `[lng, lat]` as the RFC requires (never GCJ-02); an entry without a
//! valid point (missing, half, non-finite or out of range) is a Feature with `"geometry":
//! null`, which the RFC allows, rather than a guessed location.

use std::io::{BufWriter, Write};

use chrono::NaiveDate;
use serde::Serialize;

use super::progress::{self, Progress};
use super::rows::{wgs84_point, DatedNote, ListType, ResultCode};
use super::{ExportEntry, ExportIssue, Result};

pub struct GeoJsonWriter<W: Write> {
    out: BufWriter<W>,
    first: bool,
    progress: Option<Progress>,
}

#[derive(Serialize)]
struct Feature<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    geometry: Option<Point>,
    properties: Properties<'a>,
}

#[derive(Serialize)]
struct Point {
    #[serde(rename = "type")]
    kind: &'static str,
    coordinates: [f64; 2],
}

/// The entry's public fields (all of them but the point, which is the geometry).
#[derive(Serialize)]
struct Properties<'a> {
    list_type: ListType,
    position: u32,
    establishment_id: &'a str,
    sign_name: &'a str,
    licensed_name: &'a str,
    license_no: Option<&'a str>,
    address: &'a str,
    town: &'a str,
    category: &'a str,
    inspected_on: Option<NaiveDate>,
    result: Option<ResultCode>,
    reason: &'a str,
    measures: Option<&'a str>,
    rectification: Option<&'a DatedNote>,
    revocation: Option<&'a DatedNote>,
}

impl<W: Write> GeoJsonWriter<W> {
    /// Opens the collection; the issue goes in a foreign member `issue` (RFC 7946 §6.1).
    pub fn new(out: W, issue: &ExportIssue) -> Result<GeoJsonWriter<W>> {
        let mut out = BufWriter::with_capacity(64 * 1024, out);
        out.write_all(b"{\"type\":\"FeatureCollection\",\"issue\":")?;
        serde_json::to_writer(&mut out, issue)?;
        out.write_all(b",\"features\":[\n")?;
        Ok(GeoJsonWriter {
            out,
            first: true,
            progress: None,
        })
    }

    pub fn set_progress(&mut self, progress: Progress) {
        self.progress = Some(progress);
    }

    pub fn entry(&mut self, e: &ExportEntry) -> Result<()> {
        if !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        let feature = Feature {
            kind: "Feature",
            geometry: wgs84_point(e.lng, e.lat).map(|(x, y)| Point {
                kind: "Point",
                coordinates: [x, y],
            }),
            properties: Properties {
                list_type: e.list_type,
                position: e.position,
                establishment_id: &e.establishment_id,
                sign_name: &e.sign_name,
                licensed_name: &e.licensed_name,
                license_no: e.license_no.as_deref(),
                address: &e.address,
                town: &e.town,
                category: &e.category,
                inspected_on: e.inspected_on,
                result: e.result,
                reason: &e.reason,
                measures: e.measures.as_deref(),
                rectification: e.rectification.as_ref(),
                revocation: e.revocation.as_ref(),
            },
        };
        serde_json::to_writer(&mut self.out, &feature)?;
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
