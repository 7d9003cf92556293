//! A sample's attachments: the site photo (现场照片), the photo of the sample (样品照片) and of
//! the sealed sample (封样照片), declared by the sample's samplers, and the lab report (检验报告,
//! PDF), declared by the sample's lab. Pure: the declaration as a typed value, its check, who
//! declares which kind and what each kind accepts. The bytes follow through the tus uploads
//! (`ops::uploads`), as for inspection photos.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::establishment::FieldError;
use crate::photo::files::Accept;

coded_enum! {
    /// What an attachment shows.
    Kind {
        /// 现场照片: the sampling site (samplers).
        Site = "site", "现场照片";
        /// 样品照片: the sample (samplers).
        Sample = "sample", "样品照片";
        /// 封样照片: the sealed sample (samplers).
        Seal = "seal", "封样照片";
        /// 检验报告: the lab report, PDF (the sample's lab).
        Report = "report", "检验报告";
    }
}

impl Kind {
    /// What its file must be.
    pub fn accept(self) -> Accept {
        match self {
            Kind::Report => Accept::Pdf,
            _ => Accept::Photo,
        }
    }

    /// Who declares and uploads it.
    pub fn declarer(self) -> Declarer {
        match self {
            Kind::Report => Declarer::Lab,
            _ => Declarer::Sampler,
        }
    }
}

/// Who may declare an attachment of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declarer {
    /// One of the sample's samplers.
    Sampler,
    /// A lab account of the sample's lab.
    Lab,
}

/// A declaration: the record an upload then gives its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAttachment {
    /// Chosen by the client (UUID); the same declaration again is answered as the first time.
    pub id: String,
    pub kind: Kind,
    /// SHA-256 of the file, 64 hex digits; the upload must hash to it.
    pub sha256: String,
    /// The file's size in bytes (1 to `max_photo_bytes`); the upload's `Upload-Length`.
    pub byte_size: i64,
    /// When the photo was taken or the report issued, Unix ms.
    pub taken_at: i64,
}

/// Earliest accepted `taken_at`: 2000-01-01.
pub const MIN_TAKEN_AT_MS: i64 = 946_684_800_000;

/// The declaration's own checks (not who declares it). `max_bytes` is the upload limit;
/// `now_ms` bounds `taken_at` (a day of clock skew is allowed).
pub fn check(n: &NewAttachment, max_bytes: i64, now_ms: i64) -> Result<(), Vec<FieldError>> {
    let mut problems = Vec::new();
    if uuid::Uuid::parse_str(&n.id).is_err() {
        problems.push(FieldError::new(
            "id",
            "invalid_id",
            "id must be a UUID chosen by the client",
        ));
    }
    if n.sha256.len() != 64 || !n.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        problems.push(FieldError::new(
            "sha256",
            "invalid_sha256",
            "sha256 must be 64 hexadecimal digits",
        ));
    }
    if n.byte_size < 1 || n.byte_size > max_bytes {
        problems.push(FieldError::new(
            "byte_size",
            "invalid_byte_size",
            format!("byte_size must be between 1 and {max_bytes} (the upload limit)"),
        ));
    }
    if n.taken_at < MIN_TAKEN_AT_MS || n.taken_at > now_ms + 24 * 3600 * 1000 {
        problems.push(FieldError::new(
            "taken_at",
            "invalid_taken_at",
            "taken_at must be a Unix time in ms between 2000 and now",
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The declaration as stored (sha256 in lower case): what a replay is compared with.
pub fn normalized(n: &NewAttachment) -> NewAttachment {
    NewAttachment {
        sha256: n.sha256.to_ascii_lowercase(),
        ..n.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok() -> NewAttachment {
        NewAttachment {
            id: "6f0c7a52-3f7e-4d55-9a43-0b8d6a2c1e10".into(),
            kind: Kind::Seal,
            sha256: "AB".repeat(32),
            byte_size: 1000,
            taken_at: 1_772_416_800_000,
        }
    }

    #[test]
    fn kinds_declarers_and_files() {
        assert_eq!(Kind::Report.accept(), Accept::Pdf);
        assert_eq!(Kind::Report.declarer(), Declarer::Lab);
        for k in [Kind::Site, Kind::Sample, Kind::Seal] {
            assert_eq!(
                (k.accept(), k.declarer()),
                (Accept::Photo, Declarer::Sampler)
            );
        }
        assert_eq!(Kind::parse("封样照片"), Some(Kind::Seal));
        assert_eq!(Kind::parse("report"), Some(Kind::Report));
    }

    #[test]
    fn each_field_is_checked_by_name() {
        let now = 1_772_500_000_000;
        assert_eq!(check(&ok(), 1 << 20, now), Ok(()));
        let bad = NewAttachment {
            id: "x".into(),
            sha256: "zz".into(),
            byte_size: 0,
            taken_at: 5,
            ..ok()
        };
        let fields: Vec<String> = check(&bad, 1 << 20, now)
            .unwrap_err()
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(fields, ["id", "sha256", "byte_size", "taken_at"]);
        let big = NewAttachment {
            byte_size: (1 << 20) + 1,
            ..ok()
        };
        assert_eq!(
            check(&big, 1 << 20, now).unwrap_err()[0].code,
            "invalid_byte_size"
        );
        assert_eq!(normalized(&ok()).sha256, "ab".repeat(32));
    }

    proptest! {
        /// A size is accepted exactly when it is within the upload limit.
        #[test]
        fn sizes(size in -10i64..3000, max in 1i64..2000) {
            let n = NewAttachment { byte_size: size, ..ok() };
            prop_assert_eq!(check(&n, max, 1_772_500_000_000).is_ok(), (1..=max).contains(&size));
        }
    }
}
