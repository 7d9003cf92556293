//! Where uploaded files live in storage and what their first bytes say. Pure: the upload use
//! cases (`ops::uploads`), the processing worker and the download endpoints share these.
//!
//! An upload's target decides what it accepts ([`Accept`]): a photo (inspection photos, the
//! site/sample/seal photos of a sample) is JPEG, PNG or WebP; a lab report is a PDF (its
//! first bytes here, its trailer when complete: [`super::pdf`]). The declared type or file
//! name is never trusted: only the bytes.

use super::media;

/// What an upload's target accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// JPEG, PNG or WebP.
    Photo,
    /// PDF only.
    Pdf,
}

/// The MIME type stored for a PDF.
pub const PDF_MIME: &str = "application/pdf";

impl Accept {
    /// The MIME type to store, by the first bytes, when they are of an accepted type.
    pub fn sniff(self, head: &[u8]) -> Option<&'static str> {
        match self {
            Accept::Photo => sniff(head),
            Accept::Pdf => head.starts_with(super::pdf::MAGIC).then_some(PDF_MIME),
        }
    }

    /// The first bytes of an upload: accepted, undecided yet, or refused.
    pub fn sniff_prefix(self, head: &[u8]) -> Sniff {
        match self {
            Accept::Photo => sniff_prefix(head),
            Accept::Pdf => {
                let magic = super::pdf::MAGIC;
                if head.starts_with(magic) {
                    Sniff::Image(PDF_MIME)
                } else if head.len() < magic.len() && magic.starts_with(head) {
                    Sniff::Undecided
                } else {
                    Sniff::Refused
                }
            }
        }
    }

    /// Why a file with these first bytes is refused, as the record keeps it.
    pub fn refusal_reason(self, head: &[u8]) -> String {
        match self {
            Accept::Photo => refusal_reason(head),
            Accept::Pdf => format!(
                "the file is {} by its first bytes; a lab report must be a PDF (%PDF-)",
                describe_any(head)
            ),
        }
    }
}

/// A few words on any file by its first bytes.
fn describe_any(head: &[u8]) -> &'static str {
    match sniff(head) {
        Some("image/jpeg") => "JPEG",
        Some("image/png") => "PNG",
        Some("image/webp") => "WebP",
        _ => describe(head),
    }
}

/// Where the original with content `sha256` is stored (once per content).
pub fn blob_key(sha256: &str) -> String {
    format!("blobs/{}/{sha256}", &sha256[..2.min(sha256.len())])
}

/// Where a rendition (`thumbnail`, `preview`) of the content `sha256` is stored.
pub fn rendition_key(sha256: &str, variant: &str) -> String {
    format!(
        "renditions/{}/{sha256}-{variant}.jpg",
        &sha256[..2.min(sha256.len())]
    )
}

/// JPEG, PNG and WebP, by their first bytes: the MIME type to store.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    media::sniff(head).map(media::MediaType::mime)
}

/// Bytes that decide the file type (WebP needs 12).
pub const HEAD_LEN: usize = 12;

/// What the first bytes of a file say.
#[derive(Debug, PartialEq, Eq)]
pub enum Sniff {
    /// An accepted type (an image, or a PDF where that is what is accepted): its MIME type.
    Image(&'static str),
    /// Too few bytes yet; they agree with at least one accepted type.
    Undecided,
    Refused,
}

/// JPEG, PNG and WebP by their first bytes; decides as soon as no accepted type can match.
pub fn sniff_prefix(head: &[u8]) -> Sniff {
    if let Some(media) = sniff(head) {
        return Sniff::Image(media);
    }
    let agrees = |sig: &[u8], wildcard: std::ops::Range<usize>| {
        head.len() < sig.len()
            && head
                .iter()
                .zip(sig)
                .enumerate()
                .all(|(i, (a, b))| wildcard.contains(&i) || a == b)
    };
    if agrees(&[0xFF, 0xD8, 0xFF], 0..0)
        || agrees(b"\x89PNG\r\n\x1a\n", 0..0)
        || agrees(b"RIFF????WEBP", 4..8)
    {
        Sniff::Undecided
    } else {
        Sniff::Refused
    }
}

/// A few words on a refused file, for the photo record's processing error.
pub fn describe(head: &[u8]) -> &'static str {
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        match &head[8..12] {
            b"heic" | b"heix" | b"heim" | b"heis" | b"mif1" | b"msf1" | b"hevc" => "HEIC/HEIF",
            b"avif" | b"avis" => "AVIF",
            _ => "an ISO media file (e.g. video)",
        }
    } else if head.starts_with(b"GIF8") {
        "GIF"
    } else if head.starts_with(b"%PDF") {
        "PDF"
    } else {
        "not an image format the server accepts"
    }
}

/// Why a file of this type is refused, as the photo record keeps it.
pub fn refusal_reason(head: &[u8]) -> String {
    format!(
        "the file is {} by its first bytes; only JPEG, PNG and WebP photos are accepted \
         (convert HEIC to JPEG on the device)",
        describe(head)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let sha = "ab".repeat(32);
        assert_eq!(blob_key(&sha), format!("blobs/ab/{sha}"));
        assert_eq!(
            rendition_key(&sha, "preview"),
            format!("renditions/ab/{sha}-preview.jpg")
        );
    }

    #[test]
    fn first_bytes_decide_the_type() {
        assert_eq!(
            sniff_prefix(&[0xFF, 0xD8, 0xFF, 0xE1]),
            Sniff::Image("image/jpeg")
        );
        assert_eq!(
            sniff_prefix(b"\x89PNG\r\n\x1a\n"),
            Sniff::Image("image/png")
        );
        assert_eq!(
            sniff_prefix(b"RIFF\x10\0\0\0WEBPVP8 "),
            Sniff::Image("image/webp")
        );
        // Too short to tell, but each could still become an accepted type.
        for head in [
            &b""[..],
            &[0xFF, 0xD8],
            b"\x89PN",
            b"RIFF\x10\0",
            b"RIFF\x10\0\0\0WE",
        ] {
            assert_eq!(sniff_prefix(head), Sniff::Undecided, "{head:?}");
        }
        // HEIC (ISO-BMFF `ftyp`) is refused at its first byte already; so are GIF and a RIFF
        // that is not WebP (AVI, WAV).
        for head in [
            &b"\0\0\0\x18ftypheic"[..],
            b"\0",
            b"GIF89a",
            b"RIFF\x10\0\0\0AVI ",
            b"\xFF\xD9",
        ] {
            assert_eq!(sniff_prefix(head), Sniff::Refused, "{head:?}");
        }
        assert_eq!(describe(b"\0\0\0\x18ftypheic\0\0"), "HEIC/HEIF");
    }

    #[test]
    fn a_report_accepts_pdf_only_and_a_photo_no_pdf() {
        assert_eq!(
            Accept::Pdf.sniff_prefix(b"%PDF-1.7\n"),
            Sniff::Image(PDF_MIME)
        );
        assert_eq!(Accept::Pdf.sniff_prefix(b"%PD"), Sniff::Undecided);
        assert_eq!(Accept::Pdf.sniff_prefix(b""), Sniff::Undecided);
        assert_eq!(
            Accept::Pdf.sniff_prefix(&[0xFF, 0xD8, 0xFF, 0xE1]),
            Sniff::Refused
        );
        assert_eq!(Accept::Pdf.sniff_prefix(b"%PDX-"), Sniff::Refused);
        assert_eq!(Accept::Photo.sniff_prefix(b"%PDF-1.4"), Sniff::Refused);
        assert_eq!(Accept::Pdf.sniff(b"%PDF-1.4"), Some(PDF_MIME));
        assert_eq!(Accept::Photo.sniff(b"%PDF-1.4"), None);
        assert!(Accept::Pdf
            .refusal_reason(&[0xFF, 0xD8, 0xFF, 0xE0])
            .contains("JPEG"));
        assert!(Accept::Photo.refusal_reason(b"%PDF-1.4").contains("PDF"));
    }
}
