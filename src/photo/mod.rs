//! Inspection photos: legal evidence uploaded from inspectors' phones.
//!
//! - [`media`]: content sniffing (JPEG, PNG, WebP only), EXIF extraction, and bounded decoding
//!   into EXIF-free JPEG renditions (320 px thumbnail, 1600 px preview). The original bytes are
//!   never modified; callers store them as they came.
//! - [`files`]: storage keys of originals and renditions, and the first-bytes type check of
//!   uploads.
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
