//! Inspection photos: legal evidence uploaded from inspectors' phones.
//!
//! - [`media`]: content sniffing (JPEG, PNG, WebP only), EXIF extraction, and bounded decoding
//!   into EXIF-free JPEG renditions (320 px thumbnail, 1600 px preview). The original bytes are
//!   never modified; callers store them as they came.
//! - [`files`]: storage keys of originals and renditions, and the first-bytes type check of
//!   uploads.
//! - [`pdf`]: the structure check of a lab report PDF (header, `startxref`, `%%EOF`).
//! - [`geofence`]: review flags (not blocking) for photos taken far from the establishment or
//!   outside the inspection's time window.
//!
//! Pure code: no database, no HTTP. Decoding is CPU-bound, so async callers should run
//! [`media::renditions`] on a blocking thread (`tokio::task::spawn_blocking`).

#[cfg(test)]
pub(crate) mod bombs;
pub mod files;
pub mod geofence;
pub mod media;
pub mod pdf;

/// Where a photo record's file is, stored in `photos.processing_status`:
/// `awaiting_upload` → `uploaded` (bytes received and verified) → `processed` (EXIF read,
/// renditions made) or `failed` (the file cannot be decoded; see `processing_error`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingStatus {
    AwaitingUpload,
    Uploaded,
    Processed,
    Failed,
}

impl ProcessingStatus {
    pub const ALL: [ProcessingStatus; 4] = [
        ProcessingStatus::AwaitingUpload,
        ProcessingStatus::Uploaded,
        ProcessingStatus::Processed,
        ProcessingStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProcessingStatus::AwaitingUpload => "awaiting_upload",
            ProcessingStatus::Uploaded => "uploaded",
            ProcessingStatus::Processed => "processed",
            ProcessingStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<ProcessingStatus> {
        ProcessingStatus::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl TryFrom<String> for ProcessingStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ProcessingStatus::parse(&s).ok_or_else(|| format!("unknown processing_status {s:?}"))
    }
}

#[cfg(test)]
mod status_tests {
    use super::ProcessingStatus;

    #[test]
    fn stored_names_round_trip_and_match_serde() {
        for s in ProcessingStatus::ALL {
            assert_eq!(ProcessingStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(ProcessingStatus::parse("done"), None);
    }
}
