//! Is a file a PDF? Only the bytes decide (never a declared type or a file name). A lab
//! report is accepted when it
//!
//! 1. starts with the header `%PDF-d.d` (ISO 32000: at offset 0; its first five bytes are
//!    checked as the upload's first chunk arrives, [`MAGIC`]);
//! 2. ends with a trailer a reader can start from: in its last 1024 bytes, `startxref`, an
//!    offset, then `%%EOF` (anything after `%%EOF` in those bytes is tolerated, as readers do);
//! 3. and that offset lies inside the file and points at a cross-reference section: `xref`
//!    (a classic table) or `N G obj` (a cross-reference stream, PDF 1.5+).
//!
//! Pure. The caller reads the tail of the file and the bytes at the offset ([`startxref`] says
//! where), then [`check_xref_at`].

/// The first bytes of every PDF.
pub const MAGIC: &[u8] = b"%PDF-";

/// How many bytes at the end of the file the trailer is looked for in.
pub const TAIL_LEN: usize = 1024;

/// How many bytes at the `startxref` offset [`check_xref_at`] needs.
pub const XREF_PROBE_LEN: usize = 32;

/// Why a file is not accepted as a PDF.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPdf {
    #[error("the file does not start with a PDF header (%PDF-1.x or %PDF-2.x)")]
    Header,
    #[error("the file does not end with a PDF trailer (%%EOF in its last {TAIL_LEN} bytes)")]
    NoEof,
    #[error("the PDF trailer has no startxref offset before %%EOF")]
    NoStartxref,
    #[error("the PDF's startxref offset {0} lies outside the file")]
    OffsetOutside(u64),
    #[error("the PDF's startxref offset {0} does not point at a cross-reference section")]
    NoXref(u64),
}

/// The header: `%PDF-` then a version `d.d`.
pub fn check_header(head: &[u8]) -> Result<(), NotPdf> {
    match head {
        [b'%', b'P', b'D', b'F', b'-', major, b'.', minor, ..]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Ok(())
        }
        _ => Err(NotPdf::Header),
    }
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len())
        .rev()
        .find(|&i| &hay[i..i + needle.len()] == needle)
}

/// The offset named by the last `startxref` before the last `%%EOF` in `tail` (the file's
/// last bytes, at most [`TAIL_LEN`]) of a file of `len` bytes.
pub fn startxref(tail: &[u8], len: u64) -> Result<u64, NotPdf> {
    let tail = &tail[tail.len().saturating_sub(TAIL_LEN)..];
    let eof = rfind(tail, b"%%EOF").ok_or(NotPdf::NoEof)?;
    let before = &tail[..eof];
    let at = rfind(before, b"startxref").ok_or(NotPdf::NoStartxref)?;
    let rest = &before[at + b"startxref".len()..];
    let digits: Vec<u8> = rest
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .take_while(u8::is_ascii_digit)
        .collect();
    // Only whitespace may follow the number before %%EOF.
    let after = rest
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .skip(digits.len());
    if digits.is_empty() || digits.len() > 19 || !after.clone().all(u8::is_ascii_whitespace) {
        return Err(NotPdf::NoStartxref);
    }
    let offset: u64 = std::str::from_utf8(&digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or(NotPdf::NoStartxref)?;
    // Not inside the header, and before the trailer itself.
    if offset < MAGIC.len() as u64 || offset >= len {
        return Err(NotPdf::OffsetOutside(offset));
    }
    Ok(offset)
}

/// Whether `probe` (the bytes at the `startxref` offset, up to [`XREF_PROBE_LEN`]) starts a
/// cross-reference section: `xref`, or an indirect object header `N G obj` (an xref stream).
pub fn check_xref_at(offset: u64, probe: &[u8]) -> Result<(), NotPdf> {
    if probe.starts_with(b"xref") {
        return Ok(());
    }
    let mut rest = probe;
    for _ in 0..2 {
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let ws = rest[n..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        if n == 0 || ws == 0 {
            return Err(NotPdf::NoXref(offset));
        }
        rest = &rest[n + ws..];
    }
    if rest.starts_with(b"obj") {
        Ok(())
    } else {
        Err(NotPdf::NoXref(offset))
    }
}

/// The whole check on a file held in memory (tests, small files).
pub fn check(bytes: &[u8]) -> Result<(), NotPdf> {
    check_header(bytes)?;
    let offset = startxref(bytes, bytes.len() as u64)?;
    let at = offset as usize;
    check_xref_at(offset, &bytes[at..(at + XREF_PROBE_LEN).min(bytes.len())])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A small, valid PDF (one page with `text`), written the way PDF writers do: header, objects,
    /// a classic cross-reference table with the objects' true offsets, trailer.
    fn tiny(text: &str) -> Vec<u8> {
        let content = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R \
             /Resources << /Font << /F1 5 0 R >> >> >>"
                .to_string(),
            format!(
                "<< /Length {} >>\nstream\n{content}\nendstream",
                content.len()
            ),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
        ];
        let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
        );
        for o in offsets {
            out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    #[test]
    fn a_written_pdf_passes() {
        let pdf = tiny("report");
        assert_eq!(check(&pdf), Ok(()));
    }

    #[test]
    fn an_xref_stream_and_an_incremental_update_pass() {
        // PDF 1.5: the last startxref points at an xref stream object.
        let mut pdf = b"%PDF-1.5\n1 0 obj\n<< /Type /Catalog >>\nendobj\n".to_vec();
        let at = pdf.len();
        pdf.extend_from_slice(
            b"2 0 obj\n<< /Type /XRef /Size 3 /W [1 2 1] >>\nstream\n\0\0\0\0\nendstream\nendobj\n",
        );
        pdf.extend_from_slice(format!("startxref\n{at}\n%%EOF\r\n").as_bytes());
        assert_eq!(check(&pdf), Ok(()));
        // An incremental update appends a second trailer: the last one counts.
        let mut updated = tiny("v1");
        let at = updated.len();
        updated.extend_from_slice(b"xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 6 >>\n");
        updated.extend_from_slice(format!("startxref\n{at}\n%%EOF\n").as_bytes());
        assert_eq!(check(&updated), Ok(()));
    }

    #[test]
    fn what_is_not_a_pdf_is_named() {
        let pdf = tiny("x");
        assert_eq!(check(b"\xFF\xD8\xFF\xE0JFIF"), Err(NotPdf::Header));
        assert_eq!(check(b"%PDF-x.y"), Err(NotPdf::Header));
        // Truncated (the upload of a half-written file): no trailer.
        assert_eq!(check(&pdf[..pdf.len() / 2]), Err(NotPdf::NoEof));
        // %%EOF without startxref.
        assert_eq!(check(b"%PDF-1.4\nhello\n%%EOF\n"), Err(NotPdf::NoStartxref));
        // An offset past the end, and one that points at nothing like a cross-reference.
        assert_eq!(
            check(b"%PDF-1.4\nstartxref\n99999\n%%EOF\n"),
            Err(NotPdf::OffsetOutside(99999))
        );
        assert_eq!(
            check(b"%PDF-1.4\nhello world\nstartxref\n9\n%%EOF\n"),
            Err(NotPdf::NoXref(9))
        );
        // Junk between the offset and %%EOF.
        assert_eq!(
            check(b"%PDF-1.4\nxref\nstartxref\n9 junk\n%%EOF\n"),
            Err(NotPdf::NoStartxref)
        );
        // A JPEG with a PDF appended is still not a PDF: the header is at offset 0 or nowhere.
        let mut polyglot = vec![0xFF, 0xD8, 0xFF, 0xE0];
        polyglot.extend_from_slice(&pdf);
        assert_eq!(check(&polyglot), Err(NotPdf::Header));
    }

    proptest! {
        /// Any text makes a PDF that passes; cutting it anywhere before its trailer's end
        /// makes one that does not.
        #[test]
        fn written_pass_truncated_fail(text in "[a-zA-Z0-9 ]{0,300}", cut in 0.0f64..1.0) {
            let pdf = tiny(&text);
            prop_assert_eq!(check(&pdf), Ok(()));
            let eof = rfind(&pdf, b"%%EOF").unwrap();
            let n = (eof as f64 * cut) as usize + 4; // never a whole %%EOF
            prop_assert!(check(&pdf[..n.min(eof + 4)]).is_err());
        }

        /// Bytes that do not start with the header are never a PDF, whatever follows.
        #[test]
        fn no_header_no_pdf(first in any::<u8>(), rest in proptest::collection::vec(any::<u8>(), 0..2000)) {
            prop_assume!(first != b'%');
            let mut bytes = vec![first];
            bytes.extend(rest);
            bytes.extend_from_slice(&tiny("tail"));
            prop_assert_eq!(check(&bytes), Err(NotPdf::Header));
        }

        /// Random bytes after a header never panic the check.
        #[test]
        fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let mut bytes = b"%PDF-1.7\n".to_vec();
            bytes.extend(body);
            let _ = check(&bytes);
        }
    }
}
