#![allow(dead_code)] // each test binary uses some of the builders
//! Builds XLSX zip bombs in memory: a small upload whose members unpack to a GiB. Nothing is
//! checked in; the deflate stream of one chunk, flushed so that it stands alone, is repeated.

use flate2::{Compress, Compression, FlushCompress};

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#;
const ROOT_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
const WORKBOOK: &str = r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
const WORKBOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;
const SHEET_START: &str = r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#;
const SHEET_END: &str = "</sheetData></worksheet>";
const SMALL_SHEET: &str = r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row></sheetData></worksheet>"#;

pub const GIB: u64 = 1 << 30;

/// A member: name, deflated bytes, unpacked length and CRC-32 (0 for the bombs: a reader that
/// gets to the end of a GiB has already failed the test).
struct Member {
    name: &'static str,
    deflated: Vec<u8>,
    len: u64,
    crc: u32,
}

fn deflate_all(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Finish)
        .unwrap();
    out
}

/// Raw deflate of `head`, then `chunk` repeated `times`, then `tail`.
fn deflate_repeated(head: &[u8], chunk: &[u8], times: u64, tail: &[u8]) -> Vec<u8> {
    let full = |c: &mut Compress, data: &[u8]| {
        let mut out = Vec::with_capacity(data.len() / 4 + 1024);
        c.compress_vec(data, &mut out, FlushCompress::Full).unwrap();
        out
    };
    let mut c = Compress::new(Compression::best(), false);
    let mut out = full(&mut c, head);
    // After a full flush the history is empty, so one chunk compresses the same every time.
    let _ = full(&mut c, chunk);
    let block = full(&mut c, chunk);
    for _ in 0..times {
        out.extend_from_slice(&block);
    }
    let mut end = Vec::with_capacity(tail.len() + 64);
    c.compress_vec(tail, &mut end, FlushCompress::Finish)
        .unwrap();
    out.extend_from_slice(&end);
    out
}

fn small(name: &'static str, text: &str) -> Member {
    Member {
        name,
        deflated: deflate_all(text.as_bytes()),
        len: text.len() as u64,
        crc: {
            let mut c = flate2::Crc::new();
            c.update(text.as_bytes());
            c.sum()
        },
    }
}

fn archive(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for m in members {
        let offset = out.len() as u32;
        let (csize, usize_) = (m.deflated.len() as u32, m.len as u32);
        let fixed = |h: &mut Vec<u8>| {
            h.extend_from_slice(&[20, 0, 0, 0, 8, 0, 0, 0, 0, 0]); // version, flags, deflate, time, date
            h.extend_from_slice(&m.crc.to_le_bytes());
            h.extend_from_slice(&csize.to_le_bytes());
            h.extend_from_slice(&usize_.to_le_bytes());
            h.extend_from_slice(&(m.name.len() as u16).to_le_bytes());
        };
        out.extend_from_slice(b"PK\x03\x04");
        fixed(&mut out);
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(m.name.as_bytes());
        out.extend_from_slice(&m.deflated);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&[20, 0]);
        fixed(&mut central);
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(m.name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn workbook(sheet: Member, shared: Option<Member>) -> Vec<u8> {
    let mut members = vec![
        small("[Content_Types].xml", CONTENT_TYPES),
        small("_rels/.rels", ROOT_RELS),
        small("xl/workbook.xml", WORKBOOK),
        small("xl/_rels/workbook.xml.rels", WORKBOOK_RELS),
    ];
    members.extend(shared);
    members.push(sheet);
    archive(&members)
}

const MIB: usize = 1 << 20;

/// `sheet1.xml` holding one inline-string cell whose text is `bytes` long (about 1 MiB
/// compressed per GiB).
pub fn huge_cell_text(bytes: u64) -> Vec<u8> {
    let head = format!(r#"{SHEET_START}<row r="1"><c r="A1" t="inlineStr"><is><t>"#);
    let tail = format!("</t></is></c></row>{SHEET_END}");
    let times = bytes / MIB as u64;
    let deflated = deflate_repeated(head.as_bytes(), &vec![b'A'; MIB], times, tail.as_bytes());
    let len = head.len() as u64 + times * MIB as u64 + tail.len() as u64;
    workbook(
        Member {
            name: "xl/worksheets/sheet1.xml",
            deflated,
            len,
            crc: 0,
        },
        None,
    )
}

/// A shared-strings table of about `bytes`, made of entries of `entry_text` each.
pub fn huge_shared_strings(bytes: u64, entry_text_len: usize) -> Vec<u8> {
    let entry = format!("<si><t>{}</t></si>", "字".repeat(entry_text_len / 3));
    let per_chunk = (MIB / entry.len()).max(1);
    let chunk = entry.repeat(per_chunk);
    let times = bytes / chunk.len() as u64;
    let head = r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">"#;
    let tail = "</sst>";
    let deflated = deflate_repeated(head.as_bytes(), chunk.as_bytes(), times, tail.as_bytes());
    let len = head.len() as u64 + times * chunk.len() as u64 + tail.len() as u64;
    workbook(
        small("xl/worksheets/sheet1.xml", SMALL_SHEET),
        Some(Member {
            name: "xl/sharedStrings.xml",
            deflated,
            len,
            crc: 0,
        }),
    )
}
