//! Photo bytes: type sniffing, EXIF extraction and bounded decoding into JPEG renditions.
//!
//! Photos are legal evidence, so the original upload is stored byte for byte by the caller and
//! never rewritten here. What this module makes are *derived* images for the UI: a 320 px
//! thumbnail and a 1600 px preview, both JPEG, oriented upright, and carrying no metadata at
//! all (no EXIF, so no GPS or device serials leak to whoever views a preview).
//!
//! Safety against hostile or broken uploads:
//! - the type is taken from the magic bytes ([`sniff`]), never from the file name or the
//!   client's `Content-Type`; only JPEG, PNG and WebP are accepted;
//! - the dimensions are read from the header and checked against [`Limits`] *before* any pixel
//!   buffer is allocated, and the same limits are passed on to the `image` decoders, so a
//!   decompression bomb (a tiny file that claims 100 000 × 100 000 pixels) is refused with
//!   [`MediaError::TooLarge`] quickly and without using memory;
//! - a truncated JPEG (an interrupted upload) is refused instead of being silently padded with
//!   grey, which the lenient JPEG decoder would otherwise do;
//! - nothing here panics on any input; EXIF problems are never errors ([`read_exif`] returns
//!   what it could read).
//!
//! Speed: one decode per upload. The preview is resized from the full image with a fixed-point
//! separable triangle (bilinear) filter, then the thumbnail is resized from the preview, and the
//! EXIF orientation is applied to the two small images rather than to the full-size one.

use std::io::Cursor;

use image::codecs::jpeg::{JpegDecoder, JpegEncoder};
use image::codecs::png::PngDecoder;
use image::codecs::webp::WebPDecoder;
use image::metadata::Orientation;
use image::{DynamicImage, ExtendedColorType, ImageBuffer, ImageDecoder, ImageError};

/// Longest side of the thumbnail, in pixels.
pub const THUMBNAIL_MAX: u32 = 320;
/// Longest side of the preview, in pixels.
pub const PREVIEW_MAX: u32 = 1600;
/// JPEG quality of both renditions.
pub const JPEG_QUALITY: u8 = 80;

/// An accepted image type, identified from the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Jpeg,
    Png,
    Webp,
}

impl MediaType {
    /// The MIME type to store and to serve the original with.
    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Jpeg => "image/jpeg",
            MediaType::Png => "image/png",
            MediaType::Webp => "image/webp",
        }
    }
}

/// Identifies the type from the first bytes of the file (12 are enough).
///
/// Magic bytes: JPEG `FF D8 FF`, PNG `89 50 4E 47 0D 0A 1A 0A`, WebP `"RIFF"`, 4 size bytes,
/// `"WEBP"`. Anything else, including HEIC, GIF, TIFF and PDF, is `None` (HTTP 415).
pub fn sniff(head: &[u8]) -> Option<MediaType> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(MediaType::Jpeg)
    } else if head.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some(MediaType::Png)
    } else if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some(MediaType::Webp)
    } else {
        None
    }
}

/// Decoding limits. An image over any of them is refused with [`MediaError::TooLarge`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum width in pixels, as stored (before EXIF orientation).
    pub max_width: u32,
    /// Maximum height in pixels, as stored (before EXIF orientation).
    pub max_height: u32,
    /// Maximum width × height.
    pub max_pixels: u64,
    /// Maximum size of the decoded pixel buffer, also passed to the decoders as their
    /// allocation limit.
    pub max_alloc_bytes: u64,
}

impl Default for Limits {
    /// 12000 × 12000, 100 megapixels, 512 MiB. Phone cameras produce 12–50 MP; 200 MP sensor
    /// modes exist but bin to 12–50 MP photos by default.
    fn default() -> Self {
        Limits {
            max_width: 12_000,
            max_height: 12_000,
            max_pixels: 100_000_000,
            max_alloc_bytes: 512 * 1024 * 1024,
        }
    }
}

/// What [`read_exif`] found. Every field is optional: screenshots, edited or privacy-stripped
/// photos often have none.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExifInfo {
    /// `DateTimeOriginal` (else `DateTimeDigitized`) as the camera wrote it, in the camera's
    /// local time, formatted `YYYY-MM-DD HH:MM:SS`. When `OffsetTimeOriginal` (else
    /// `OffsetTime`) is present it is appended, e.g. `2024-05-01 10:30:00+08:00`.
    pub captured_at: Option<String>,
    /// The same instant as Unix milliseconds (including `SubSecTimeOriginal` when present).
    /// When the EXIF has no offset, the local time is **assumed to be China Standard Time
    /// (UTC+8)**: phones set their clocks to the local zone and this system is used in
    /// mainland China only.
    pub captured_at_ms: Option<i64>,
    /// Longitude in degrees, WGS-84 (EXIF GPS is WGS-84), negative west of Greenwich.
    pub gps_lng: Option<f64>,
    /// Latitude in degrees, WGS-84, negative south of the equator.
    pub gps_lat: Option<f64>,
    /// EXIF orientation 1–8; other values are dropped.
    pub orientation: Option<u16>,
    /// `Make` and `Model`, e.g. `"HUAWEI ELS-AN00"` (the make is not repeated when the model
    /// already starts with it).
    pub camera: Option<String>,
}

/// Offset assumed when a photo's EXIF time has no `OffsetTime*` tag: China Standard Time.
const DEFAULT_OFFSET_MINUTES: i32 = 8 * 60;
/// Longest `camera` string kept; anything longer is junk or an attack on the review UI.
const MAX_CAMERA_CHARS: usize = 100;

/// Reads the EXIF of a JPEG, PNG or WebP. Never fails: missing, truncated or garbled EXIF
/// gives the fields that could be read (possibly none). Values that are present but
/// impossible (a latitude over 90°, a 13th month, orientation 9) are dropped.
pub fn read_exif(bytes: &[u8]) -> ExifInfo {
    if sniff(bytes).is_none() {
        return ExifInfo::default();
    }
    let mut reader = exif::Reader::new();
    reader.continue_on_error(true);
    let parsed = reader
        .read_from_container(&mut Cursor::new(bytes))
        .or_else(|e| e.distill_partial_result(|_ignored| {}));
    let Ok(exif) = parsed else {
        return ExifInfo::default();
    };

    let field = |tag: exif::Tag| exif.get_field(tag, exif::In::PRIMARY);
    let ascii = |tag: exif::Tag| -> Option<&[u8]> {
        match &field(tag)?.value {
            exif::Value::Ascii(v) => v.first().map(|s| trim_ascii(s)),
            _ => None,
        }
    };

    let mut info = ExifInfo::default();

    // Capture time.
    let time = ascii(exif::Tag::DateTimeOriginal)
        .map(|t| {
            (
                t,
                ascii(exif::Tag::OffsetTimeOriginal).or_else(|| ascii(exif::Tag::OffsetTime)),
                ascii(exif::Tag::SubSecTimeOriginal),
            )
        })
        .or_else(|| {
            ascii(exif::Tag::DateTimeDigitized).map(|t| {
                (
                    t,
                    ascii(exif::Tag::OffsetTimeDigitized).or_else(|| ascii(exif::Tag::OffsetTime)),
                    ascii(exif::Tag::SubSecTimeDigitized),
                )
            })
        });
    if let Some((text, offset, subsec)) = time {
        if let Some((shown, ms)) = parse_capture_time(text, offset, subsec) {
            info.captured_at = Some(shown);
            info.captured_at_ms = Some(ms);
        }
    }

    // GPS, only as a complete, plausible pair.
    let lat = gps_coordinate(
        field(exif::Tag::GPSLatitude).map(|f| &f.value),
        ascii(exif::Tag::GPSLatitudeRef),
        b'S',
        90.0,
    );
    let lng = gps_coordinate(
        field(exif::Tag::GPSLongitude).map(|f| &f.value),
        ascii(exif::Tag::GPSLongitudeRef),
        b'W',
        180.0,
    );
    if let (Some(lat), Some(lng)) = (lat, lng) {
        // Some phones write 0/0 when they had no fix ("null island").
        if !(lat == 0.0 && lng == 0.0) {
            info.gps_lat = Some(lat);
            info.gps_lng = Some(lng);
        }
    }

    info.orientation = field(exif::Tag::Orientation)
        .and_then(|f| f.value.get_uint(0))
        .filter(|o| (1..=8).contains(o))
        .map(|o| o as u16);

    info.camera = camera_name(ascii(exif::Tag::Make), ascii(exif::Tag::Model));
    info
}

/// Strips trailing NULs and surrounding spaces (EXIF ASCII is often padded with either).
fn trim_ascii(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|&b| b != 0 && b != b' ')
        .map_or(0, |i| i + 1);
    let start = s[..end].iter().position(|&b| b != b' ').unwrap_or(end);
    &s[start..end]
}

/// `"YYYY:MM:DD HH:MM:SS"` (+ optional `"+08:00"`, sub-seconds) → (display text, Unix ms).
fn parse_capture_time(
    text: &[u8],
    offset: Option<&[u8]>,
    subsec: Option<&[u8]>,
) -> Option<(String, i64)> {
    let mut dt = exif::DateTime::from_ascii(text).ok()?;
    if let Some(o) = offset {
        // An unparseable offset is ignored, not fatal: the local time is still good.
        let _ = dt.parse_offset(o);
    }
    if let Some(s) = subsec {
        let _ = dt.parse_subsec(s);
    }
    let date = chrono::NaiveDate::from_ymd_opt(dt.year.into(), dt.month.into(), dt.day.into())?;
    let local = date.and_hms_opt(dt.hour.into(), dt.minute.into(), dt.second.into())?;
    let offset_min = dt
        .offset
        .map(i32::from)
        .filter(|m| m.abs() <= 14 * 60)
        .unwrap_or(DEFAULT_OFFSET_MINUTES);
    let utc = local - chrono::Duration::minutes(offset_min.into());
    let sub_ms = i64::from(dt.nanosecond.unwrap_or(0) / 1_000_000);
    let ms = utc.and_utc().timestamp_millis() + sub_ms;

    let mut shown = local.format("%Y-%m-%d %H:%M:%S").to_string();
    if let Some(m) = dt.offset.filter(|m| m.abs() <= 14 * 60) {
        let sign = if m < 0 { '-' } else { '+' };
        let m = m.unsigned_abs();
        shown.push_str(&format!("{sign}{:02}:{:02}", m / 60, m % 60));
    }
    Some((shown, ms))
}

/// Degrees/minutes/seconds rationals + hemisphere reference → signed degrees, if plausible.
fn gps_coordinate(
    value: Option<&exif::Value>,
    reference: Option<&[u8]>,
    negative_ref: u8,
    max: f64,
) -> Option<f64> {
    // The standard says RATIONAL (type 5), but some phones (HMD Nokia, for one) write
    // SRATIONAL (type 10). Either is read; the sign comes from the reference, so a negative
    // part is implausible and drops the coordinate.
    let parts: Vec<f64> = match value? {
        exif::Value::Rational(parts) if parts.iter().all(|r| r.denom != 0) => {
            parts.iter().map(exif::Rational::to_f64).collect()
        }
        exif::Value::SRational(parts)
            if parts
                .iter()
                .all(|r| r.denom != 0 && r.num >= 0 && r.denom > 0) =>
        {
            parts.iter().map(exif::SRational::to_f64).collect()
        }
        _ => return None,
    };
    if parts.is_empty() {
        return None;
    }
    let part = |i: usize| parts.get(i).copied().unwrap_or(0.0);
    let deg = part(0) + part(1) / 60.0 + part(2) / 3600.0;
    if !deg.is_finite() || deg > max {
        return None;
    }
    // A missing reference is read as north/east, which is right everywhere this system runs.
    let negative = reference
        .and_then(|r| r.first())
        .is_some_and(|&c| c.eq_ignore_ascii_case(&negative_ref));
    Some(if negative { -deg } else { deg })
}

fn camera_name(make: Option<&[u8]>, model: Option<&[u8]>) -> Option<String> {
    let clean = |s: Option<&[u8]>| {
        s.map(|b| {
            String::from_utf8_lossy(b)
                .chars()
                .filter(|c| !c.is_control())
                .collect::<String>()
                .trim()
                .to_string()
        })
        .filter(|s| !s.is_empty())
    };
    let name = match (clean(make), clean(model)) {
        (Some(make), Some(model)) => {
            if model.to_lowercase().starts_with(&make.to_lowercase()) {
                model
            } else {
                format!("{make} {model}")
            }
        }
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => return None,
    };
    Some(name.chars().take(MAX_CAMERA_CHARS).collect())
}

/// Why an upload could not be turned into renditions.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Not a JPEG, PNG or WebP (HTTP 415).
    #[error("unsupported media type: only JPEG, PNG and WebP images are accepted")]
    Unsupported,
    /// Over [`Limits`]; the pixels were never decoded.
    #[error("image of {width} × {height} pixels is over the size limit")]
    TooLarge { width: u32, height: u32 },
    /// A broken, truncated or unsupported-variant image.
    #[error("the image could not be decoded: {0}")]
    Decode(String),
    /// Encoding a rendition failed (should not happen).
    #[error("a rendition could not be encoded: {0}")]
    Encode(String),
}

/// The derived images. Both are baseline JPEG with no metadata segments (no EXIF, no ICC).
pub struct Renditions {
    /// Longer side at most [`THUMBNAIL_MAX`], upright.
    pub thumbnail_jpeg: Vec<u8>,
    /// Longer side at most [`PREVIEW_MAX`], upright.
    pub preview_jpeg: Vec<u8>,
    /// Width of the *original* image as displayed, i.e. after EXIF orientation (a portrait
    /// phone photo stored as 4000 × 3000 with orientation 6 gives 3000 × 4000).
    pub width: u32,
    /// Height of the original image after EXIF orientation.
    pub height: u32,
}

impl std::fmt::Debug for Renditions {
    /// Sizes only: the JPEG bytes would flood logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renditions")
            .field(
                "thumbnail_jpeg",
                &format_args!("{} bytes", self.thumbnail_jpeg.len()),
            )
            .field(
                "preview_jpeg",
                &format_args!("{} bytes", self.preview_jpeg.len()),
            )
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

/// Decodes within `limits` and makes the thumbnail and the preview.
///
/// The dimensions are checked from the header before decoding, and the limits are also given
/// to the decoder. The EXIF orientation (1–8) is applied; the result is resized so that the
/// longer side is at most 320 and 1600 pixels (never upscaled) and encoded as JPEG quality 80
/// without metadata. Transparent PNG/WebP pixels are composited onto white.
pub fn renditions(bytes: &[u8], limits: &Limits) -> Result<Renditions, MediaError> {
    let kind = sniff(bytes).ok_or(MediaError::Unsupported)?;
    let orientation = read_exif(bytes).orientation.unwrap_or(1);
    let image = decode(bytes, kind, limits)?;
    let (w, h) = (image.width(), image.height());
    let pixels = Pixels::from_image(image);

    let (pw, ph) = fit(w, h, PREVIEW_MAX);
    let preview = pixels.resize(pw, ph);
    drop(pixels);
    // The thumbnail is made from the preview: the same size as from the original (both are
    // `fit` of the original), at a fraction of the cost.
    let (tw, th) = fit(w, h, THUMBNAIL_MAX);
    let thumbnail = preview.resize(tw, th);

    let (width, height) = if (5..=8).contains(&orientation) {
        (h, w)
    } else {
        (w, h)
    };
    Ok(Renditions {
        thumbnail_jpeg: thumbnail.oriented(orientation).encode_jpeg()?,
        preview_jpeg: preview.oriented(orientation).encode_jpeg()?,
        width,
        height,
    })
}

/// The size that fits `w × h` into `max × max`, keeping the aspect ratio, never upscaling.
fn fit(w: u32, h: u32, max: u32) -> (u32, u32) {
    let long = w.max(h);
    if long <= max {
        return (w, h);
    }
    let scale = |side: u32| -> u32 {
        let v = (u64::from(side) * u64::from(max) + u64::from(long) / 2) / u64::from(long);
        (v as u32).clamp(1, max)
    };
    (scale(w), scale(h))
}

fn decode(bytes: &[u8], kind: MediaType, limits: &Limits) -> Result<DynamicImage, MediaError> {
    let decode_err = |e: ImageError| MediaError::Decode(e.to_string());
    match kind {
        MediaType::Jpeg => {
            let decoder = JpegDecoder::new(Cursor::new(bytes)).map_err(decode_err)?;
            let (w, h) = decoder.dimensions();
            check_limits(w, h, decoder.total_bytes(), limits)?;
            // The JPEG decoder fills missing data with grey (or repeats the last colour)
            // instead of failing; a truncated, corrupt or padded upload must be refused, not
            // turned into a preview that is grey or black where the picture should be.
            jpeg_structure(bytes).map_err(|f| MediaError::Decode(f.to_string()))?;
            decode_checked(decoder, limits)
        }
        MediaType::Png => {
            // Only the allocation limit here (it bounds decompression of metadata chunks
            // read with the header); the dimensions are checked in `decode_checked`, where
            // they are known and can be reported.
            let mut header_limits = image::Limits::no_limits();
            header_limits.max_alloc = Some(limits.max_alloc_bytes);
            let decoder = PngDecoder::with_limits(Cursor::new(bytes), header_limits)
                .map_err(|e| limit_or_decode(e, None))?;
            decode_checked(decoder, limits)
        }
        MediaType::Webp => {
            let decoder = WebPDecoder::new(Cursor::new(bytes)).map_err(decode_err)?;
            decode_checked(decoder, limits)
        }
    }
}

fn image_limits(limits: &Limits) -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_width);
    l.max_image_height = Some(limits.max_height);
    l.max_alloc = Some(limits.max_alloc_bytes);
    l
}

fn check_limits(w: u32, h: u32, decoded_bytes: u64, limits: &Limits) -> Result<(), MediaError> {
    if w == 0 || h == 0 {
        return Err(MediaError::Decode(format!("empty image ({w} × {h})")));
    }
    if w > limits.max_width
        || h > limits.max_height
        || u64::from(w) * u64::from(h) > limits.max_pixels
        || decoded_bytes > limits.max_alloc_bytes
    {
        return Err(MediaError::TooLarge {
            width: w,
            height: h,
        });
    }
    Ok(())
}

fn limit_or_decode(e: ImageError, dims: Option<(u32, u32)>) -> MediaError {
    match (e, dims) {
        (ImageError::Limits(_), Some((width, height))) => MediaError::TooLarge { width, height },
        (ImageError::Limits(_), None) => MediaError::TooLarge {
            width: 0,
            height: 0,
        },
        (e, _) => MediaError::Decode(e.to_string()),
    }
}

/// Checks the header dimensions against the limits, hands the limits to the decoder, decodes.
fn decode_checked<D: ImageDecoder>(
    mut decoder: D,
    limits: &Limits,
) -> Result<DynamicImage, MediaError> {
    let (w, h) = decoder.dimensions();
    check_limits(w, h, decoder.total_bytes(), limits)?;
    decoder
        .set_limits(image_limits(limits))
        .map_err(|e| limit_or_decode(e, Some((w, h))))?;
    DynamicImage::from_decoder(decoder).map_err(|e| limit_or_decode(e, Some((w, h))))
}

/// Why a JPEG's structure cannot give a whole picture; the messages are shown to reviewers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum JpegFault {
    #[error("truncated JPEG: no end-of-image marker")]
    Truncated,
    #[error("corrupt JPEG data: unexpected marker FF {marker:02X} inside the image data at byte {offset}")]
    CorruptScan { offset: usize, marker: u8 },
    #[error("corrupt JPEG: broken frame header")]
    BadFrame,
    #[error("the JPEG holds {have} bytes of image data, too few to fill its declared {width} × {height} frame (at least {need} bytes)")]
    TooLittleData {
        width: u32,
        height: u32,
        have: u64,
        need: u64,
    },
}

/// The frame header (SOFn) facts needed to bound the image data from below.
#[derive(Debug, Clone, Copy)]
struct JpegFrame {
    width: u32,
    height: u32,
    /// 8 × 8 blocks over all components, with chroma subsampling.
    blocks: u64,
}

/// Parses a SOFn payload (after the length): precision, height, width, components.
fn parse_sof(p: &[u8]) -> Option<JpegFrame> {
    let height = u32::from(u16::from_be_bytes([*p.get(1)?, *p.get(2)?]));
    let width = u32::from(u16::from_be_bytes([*p.get(3)?, *p.get(4)?]));
    let n = usize::from(*p.get(5)?);
    let comps = p.get(6..6 + 3 * n)?;
    if n == 0 {
        return None;
    }
    let factors: Vec<(u32, u32)> = comps
        .chunks_exact(3)
        .map(|c| (u32::from(c[1] >> 4), u32::from(c[1] & 0x0F)))
        .collect();
    if factors.iter().any(|&(h, v)| h == 0 || v == 0) {
        return None;
    }
    let hmax = factors.iter().map(|f| f.0).max()?;
    let vmax = factors.iter().map(|f| f.1).max()?;
    let blocks = factors
        .iter()
        .map(|&(h, v)| {
            let cw = (u64::from(width) * u64::from(h)).div_ceil(u64::from(hmax));
            let ch = (u64::from(height) * u64::from(v)).div_ceil(u64::from(vmax));
            cw.div_ceil(8) * ch.div_ceil(8)
        })
        .sum();
    Some(JpegFrame {
        width,
        height,
        blocks,
    })
}

/// Walks the JPEG's markers from SOI to EOI and checks that the picture can be whole.
///
/// Walks the length-prefixed segments, so an `FF D9` inside the EXIF thumbnail does not count,
/// and scans the entropy-coded data after each SOS (progressive JPEGs have many) for the next
/// marker. Data after the EOI (Motion Photo videos, vendor trailers) is allowed. Refused:
/// - no EOI reached (a truncated upload);
/// - a marker inside the image data that cannot follow a scan (corrupt data: decoders stop
///   there and fill the rest of the frame with grey);
/// - less image data than any encoder could write for the declared frame: every 8 × 8 block
///   of every component costs at least one Huffman code (≥ 1 bit) in the scan carrying its DC
///   coefficient. A header patched from 640 × 480 to 11000 × 9000 fails this; the decoder
///   would otherwise fill the missing blocks and make a black or grey preview.
fn jpeg_structure(b: &[u8]) -> Result<(), JpegFault> {
    let len = b.len();
    let mut frame = None;
    let mut entropy_bytes = 0u64;
    let mut i = 2; // after SOI
    loop {
        // Tolerate stray bytes before a marker, as libjpeg does, then skip fill bytes.
        while i < len && b[i] != 0xFF {
            i += 1;
        }
        while i < len && b[i] == 0xFF {
            i += 1;
        }
        if i >= len {
            return Err(JpegFault::Truncated);
        }
        let marker = b[i];
        i += 1;
        match marker {
            0xD9 => break,
            // Standalone markers, no length.
            0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        if i + 2 > len {
            return Err(JpegFault::Truncated);
        }
        let seg_len = usize::from(u16::from_be_bytes([b[i], b[i + 1]]));
        if seg_len < 2 {
            return Err(JpegFault::Truncated);
        }
        // SOF0–SOF15, except DHT (C4), JPG (C8) and DAC (CC).
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let payload = b.get(i + 2..i + seg_len).ok_or(JpegFault::Truncated)?;
            frame = Some(parse_sof(payload).ok_or(JpegFault::BadFrame)?);
        }
        i += seg_len;
        if marker == 0xDA {
            // Entropy-coded data: runs until an FF that is not stuffing (FF 00), a restart
            // marker (FF D0–D7) or a fill byte.
            let start = i.min(len);
            loop {
                match b
                    .get(i..)
                    .and_then(|rest| rest.iter().position(|&x| x == 0xFF))
                {
                    None => return Err(JpegFault::Truncated),
                    Some(p) => {
                        let j = i + p;
                        match b.get(j + 1) {
                            None => return Err(JpegFault::Truncated),
                            Some(0x00 | 0xD0..=0xD7) => i = j + 2,
                            Some(0xFF) => i = j + 1,
                            // What may follow a scan: EOI, SOS, DHT, DQT, DNL, DRI, APPn, COM.
                            Some(0xD9 | 0xDA | 0xC4 | 0xDB | 0xDC | 0xDD | 0xE0..=0xEF | 0xFE) => {
                                entropy_bytes += (j - start) as u64;
                                i = j;
                                break;
                            }
                            Some(&m) => {
                                return Err(JpegFault::CorruptScan {
                                    offset: j,
                                    marker: m,
                                })
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(f) = frame {
        let need = f.blocks.div_ceil(8);
        if entropy_bytes < need {
            return Err(JpegFault::TooLittleData {
                width: f.width,
                height: f.height,
                have: entropy_bytes,
                need,
            });
        }
    }
    Ok(())
}

/// Opaque 8-bit pixels, grey (1 channel) or RGB (3), row-major, tightly packed.
struct Pixels {
    data: Vec<u8>,
    channels: usize,
    width: u32,
    height: u32,
}

impl Pixels {
    /// Converts any decoded image to opaque 8-bit grey or RGB; alpha is composited onto white.
    fn from_image(image: DynamicImage) -> Pixels {
        let (width, height) = (image.width(), image.height());
        let (data, channels) = match image {
            DynamicImage::ImageLuma8(buf) => (buf.into_raw(), 1),
            DynamicImage::ImageRgb8(buf) => (buf.into_raw(), 3),
            DynamicImage::ImageLuma16(_) => (image.to_luma8().into_raw(), 1),
            DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLumaA16(_) => {
                let la = image.to_luma_alpha8().into_raw();
                (flatten_on_white::<1>(&la), 1)
            }
            other if other.color().has_alpha() => {
                let rgba = other.to_rgba8().into_raw();
                (flatten_on_white::<3>(&rgba), 3)
            }
            other => (other.to_rgb8().into_raw(), 3),
        };
        Pixels {
            data,
            channels,
            width,
            height,
        }
    }

    /// Resizes to exactly `w × h` (a downscale) with a separable triangle filter.
    fn resize(&self, w: u32, h: u32) -> Pixels {
        if (w, h) == (self.width, self.height) {
            return Pixels {
                data: self.data.clone(),
                ..*self
            };
        }
        let c = self.channels;
        let row = self.width as usize * c;
        // Vertical first: it shrinks the row count on full-width rows, with a vectorisable
        // inner loop; the horizontal pass then only sees `h` rows.
        let tall = resize_vertical(&self.data, row, self.height as usize, h as usize);
        let data = match c {
            1 => resize_horizontal::<1>(&tall, self.width as usize, h as usize, w as usize),
            _ => resize_horizontal::<3>(&tall, self.width as usize, h as usize, w as usize),
        };
        Pixels {
            data,
            channels: c,
            width: w,
            height: h,
        }
    }

    /// Applies EXIF orientation 1–8 (anything else is left as is).
    fn oriented(self, orientation: u16) -> DynamicImage {
        let mut image = self.into_dynamic();
        if let Some(o) = u8::try_from(orientation)
            .ok()
            .and_then(Orientation::from_exif)
        {
            image.apply_orientation(o);
        }
        image
    }

    fn into_dynamic(self) -> DynamicImage {
        let (w, h, data) = (self.width, self.height, self.data);
        // The buffer length is w * h * channels by construction, so from_raw cannot fail;
        // fall back to an empty image rather than panic all the same.
        let image = if self.channels == 1 {
            ImageBuffer::from_raw(w, h, data).map(DynamicImage::ImageLuma8)
        } else {
            ImageBuffer::from_raw(w, h, data).map(DynamicImage::ImageRgb8)
        };
        image.unwrap_or_else(|| DynamicImage::new_rgb8(1, 1))
    }
}

trait EncodeJpeg {
    fn encode_jpeg(&self) -> Result<Vec<u8>, MediaError>;
}

impl EncodeJpeg for DynamicImage {
    /// Baseline JPEG with only the JFIF header: no EXIF, no ICC, no comments.
    fn encode_jpeg(&self) -> Result<Vec<u8>, MediaError> {
        let mut out = Vec::with_capacity((self.width() * self.height()) as usize / 4);
        let color = match self {
            DynamicImage::ImageLuma8(_) => ExtendedColorType::L8,
            _ => ExtendedColorType::Rgb8,
        };
        JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
            .encode(self.as_bytes(), self.width(), self.height(), color)
            .map_err(|e| MediaError::Encode(e.to_string()))?;
        Ok(out)
    }
}

/// `C` colour channels + 1 alpha → `C` channels over white.
fn flatten_on_white<const C: usize>(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() / (C + 1) * C);
    for px in src.chunks_exact(C + 1) {
        let a = u32::from(px[C]);
        for &v in &px[..C] {
            out.push(((u32::from(v) * a + 255 * (255 - a) + 127) / 255) as u8);
        }
    }
    out
}

/// Fixed-point precision of the filter weights.
const SHIFT: u32 = 14;
const ROUND: i32 = 1 << (SHIFT - 1);

/// Filter taps for resampling `src` samples to `dst`: for output `i`, the weights
/// `coeffs[i * n .. (i + 1) * n]` apply to source samples `starts[i] ..`, summing to 2^SHIFT.
struct Taps {
    starts: Vec<usize>,
    n: usize,
    coeffs: Vec<i32>,
}

/// Triangle (tent) filter scaled to the reduction ratio: every source pixel contributes, with
/// a weight falling off linearly with its distance from the output pixel's centre.
fn taps(src: usize, dst: usize) -> Taps {
    let scale = src as f64 / dst as f64;
    let support = scale.max(1.0);
    let window = |i: usize| {
        let center = (i as f64 + 0.5) * scale;
        let lo = ((center - support).floor().max(0.0)) as usize;
        let hi = ((center + support).ceil() as usize).min(src);
        (center, lo, hi.max(lo + 1))
    };
    let n = (0..dst)
        .map(|i| {
            let (_, lo, hi) = window(i);
            hi - lo
        })
        .max()
        .unwrap_or(1)
        .min(src);
    let mut starts = Vec::with_capacity(dst);
    let mut coeffs = vec![0i32; dst * n];
    let mut weights = Vec::with_capacity(n);
    for i in 0..dst {
        let (center, lo, hi) = window(i);
        weights.clear();
        weights
            .extend((lo..hi).map(|j| (1.0 - ((j as f64 + 0.5) - center).abs() / support).max(0.0)));
        let sum: f64 = weights.iter().sum();
        let start = lo.min(src - n);
        let out = &mut coeffs[i * n..(i + 1) * n];
        if sum <= 0.0 {
            // Cannot happen for a downscale; keep the nearest pixel just in case.
            out[lo.min(src - 1) - start] = 1 << SHIFT;
        } else {
            let mut total = 0;
            let mut biggest = lo - start;
            for (k, w) in weights.iter().enumerate() {
                let q = (w / sum * f64::from(1 << SHIFT)).round() as i32;
                out[lo - start + k] = q;
                total += q;
                if q > out[biggest] {
                    biggest = lo - start + k;
                }
            }
            // Make the weights sum exactly to 1.0 so flat areas stay flat.
            out[biggest] += (1 << SHIFT) - total;
        }
        starts.push(start);
    }
    Taps { starts, n, coeffs }
}

/// Resamples `src_h` rows of `row` bytes each to `dst_h` rows.
fn resize_vertical(src: &[u8], row: usize, src_h: usize, dst_h: usize) -> Vec<u8> {
    if src_h == dst_h {
        return src.to_vec();
    }
    let t = taps(src_h, dst_h);
    let mut out = vec![0u8; row * dst_h];
    let mut acc = vec![0i32; row];
    for (y, out_row) in out.chunks_exact_mut(row).enumerate() {
        acc.fill(ROUND);
        let weights = &t.coeffs[y * t.n..(y + 1) * t.n];
        for (k, &w) in weights.iter().enumerate() {
            if w == 0 {
                continue;
            }
            let start = (t.starts[y] + k) * row;
            for (a, &s) in acc.iter_mut().zip(&src[start..start + row]) {
                *a += w * i32::from(s);
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = (a >> SHIFT).clamp(0, 255) as u8;
        }
    }
    out
}

/// Resamples each of `h` rows from `src_w` to `dst_w` pixels of `C` channels.
fn resize_horizontal<const C: usize>(src: &[u8], src_w: usize, h: usize, dst_w: usize) -> Vec<u8> {
    if src_w == dst_w {
        return src.to_vec();
    }
    let t = taps(src_w, dst_w);
    let mut out = vec![0u8; dst_w * C * h];
    for (src_row, out_row) in src
        .chunks_exact(src_w * C)
        .zip(out.chunks_exact_mut(dst_w * C))
    {
        for ((out_px, weights), &start) in out_row
            .chunks_exact_mut(C)
            .zip(t.coeffs.chunks_exact(t.n))
            .zip(&t.starts)
        {
            let mut acc = [ROUND; C];
            let pixels = &src_row[start * C..(start + t.n) * C];
            for (px, &w) in pixels.chunks_exact(C).zip(weights) {
                for c in 0..C {
                    acc[c] += w * i32::from(px[c]);
                }
            }
            for c in 0..C {
                out_px[c] = (acc[c] >> SHIFT).clamp(0, 255) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageEncoder, Luma, Rgb, RgbImage, Rgba, RgbaImage};
    use proptest::prelude::*;
    use std::time::{Duration, Instant};

    // ---- building real files -------------------------------------------------------------

    /// A TIFF/EXIF value.
    enum V {
        Ascii(&'static str),
        Short(u16),
        Long(u32),
        Rational(Vec<(u32, u32)>),
        SRational(Vec<(i32, i32)>),
    }

    /// (type, count, little-endian bytes) of a value.
    fn encode_value(v: &V) -> (u16, u32, Vec<u8>) {
        match v {
            V::Ascii(s) => {
                let mut b = s.as_bytes().to_vec();
                b.push(0);
                (2, b.len() as u32, b)
            }
            V::Short(x) => (3, 1, x.to_le_bytes().to_vec()),
            V::Long(x) => (4, 1, x.to_le_bytes().to_vec()),
            V::Rational(parts) => {
                let b = parts
                    .iter()
                    .flat_map(|&(n, d)| n.to_le_bytes().into_iter().chain(d.to_le_bytes()))
                    .collect();
                (5, parts.len() as u32, b)
            }
            V::SRational(parts) => {
                let b = parts
                    .iter()
                    .flat_map(|&(n, d)| n.to_le_bytes().into_iter().chain(d.to_le_bytes()))
                    .collect();
                (10, parts.len() as u32, b)
            }
        }
    }

    fn ifd_len(entries: &[(u16, V)]) -> usize {
        let data: usize = entries
            .iter()
            .map(|(_, v)| encode_value(v).2.len())
            .filter(|&l| l > 4)
            .map(|l| l + l % 2)
            .sum();
        2 + 12 * entries.len() + 4 + data
    }

    /// Appends an IFD at `out.len()` (offsets are relative to the TIFF header at `out[0]`).
    fn write_ifd(out: &mut Vec<u8>, entries: &mut [(u16, V)]) {
        entries.sort_by_key(|(tag, _)| *tag);
        let base = out.len();
        let mut data_off = base + 2 + 12 * entries.len() + 4;
        let mut data = Vec::new();
        out.extend((entries.len() as u16).to_le_bytes());
        for (tag, v) in entries.iter() {
            let (ty, count, bytes) = encode_value(v);
            out.extend(tag.to_le_bytes());
            out.extend(ty.to_le_bytes());
            out.extend(count.to_le_bytes());
            if bytes.len() <= 4 {
                let mut inline = bytes.clone();
                inline.resize(4, 0);
                out.extend(inline);
            } else {
                out.extend((data_off as u32).to_le_bytes());
                data.extend(&bytes);
                if bytes.len() % 2 == 1 {
                    data.push(0);
                }
                data_off += bytes.len() + bytes.len() % 2;
            }
        }
        out.extend(0u32.to_le_bytes()); // no next IFD
        out.extend(data);
    }

    /// A little-endian TIFF structure: IFD0, then the Exif sub-IFD and the GPS IFD.
    fn tiff(mut ifd0: Vec<(u16, V)>, mut exif: Vec<(u16, V)>, mut gps: Vec<(u16, V)>) -> Vec<u8> {
        const EXIF_POINTER: u16 = 0x8769;
        const GPS_POINTER: u16 = 0x8825;
        let mut pointers = Vec::new();
        if !exif.is_empty() {
            pointers.push(EXIF_POINTER);
        }
        if !gps.is_empty() {
            pointers.push(GPS_POINTER);
        }
        for &p in &pointers {
            ifd0.push((p, V::Long(0)));
        }
        let exif_off = 8 + ifd_len(&ifd0);
        let gps_off = exif_off + if exif.is_empty() { 0 } else { ifd_len(&exif) };
        for (tag, v) in ifd0.iter_mut() {
            match *tag {
                EXIF_POINTER => *v = V::Long(exif_off as u32),
                GPS_POINTER => *v = V::Long(gps_off as u32),
                _ => {}
            }
        }
        let mut out = b"II*\0".to_vec();
        out.extend(8u32.to_le_bytes());
        write_ifd(&mut out, &mut ifd0);
        if !exif.is_empty() {
            assert_eq!(out.len(), exif_off);
            write_ifd(&mut out, &mut exif);
        }
        if !gps.is_empty() {
            assert_eq!(out.len(), gps_off);
            write_ifd(&mut out, &mut gps);
        }
        out
    }

    /// Inserts an APP1 "Exif" segment right after the SOI of `jpeg`.
    fn with_app1(jpeg: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        out.extend([0xFF, 0xE1]);
        out.extend(((payload.len() + 2) as u16).to_be_bytes());
        out.extend(payload);
        out.extend(&jpeg[2..]);
        out
    }

    fn with_exif(jpeg: &[u8], tiff: &[u8]) -> Vec<u8> {
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend(tiff);
        with_app1(jpeg, &payload)
    }

    /// Degrees → EXIF degrees/minutes/seconds rationals (seconds to 1/10000).
    fn dms(deg: f64) -> V {
        let d = deg.trunc();
        let m = ((deg - d) * 60.0).trunc();
        let s = ((deg - d) * 60.0 - m) * 60.0;
        V::Rational(vec![
            (d as u32, 1),
            (m as u32, 1),
            ((s * 10_000.0).round() as u32, 10_000),
        ])
    }

    const LNG: f64 = 117.2009;
    const LAT: f64 = 39.0842;
    /// 2024-05-01 10:30:00 +08:00.
    const CAPTURED_MS: i64 = 1_714_530_600_000;

    fn full_exif(orientation: u16) -> Vec<u8> {
        tiff(
            vec![
                (0x010F, V::Ascii("HUAWEI")),
                (0x0110, V::Ascii("HUAWEI ELS-AN00")),
                (0x0112, V::Short(orientation)),
            ],
            vec![
                (0x9003, V::Ascii("2024:05:01 10:30:00")),
                (0x9011, V::Ascii("+08:00")),
            ],
            vec![
                (0x0001, V::Ascii("N")),
                (0x0002, dms(LAT)),
                (0x0003, V::Ascii("E")),
                (0x0004, dms(LNG)),
            ],
        )
    }

    /// A photo-like RGB image with a red block in the stored top-left corner, to check
    /// orientation.
    fn test_image(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            if x < w / 4 && y < h / 4 {
                Rgb([230, 20, 20])
            } else {
                Rgb([
                    (x * 255 / w) as u8,
                    (y * 255 / h) as u8,
                    (((x / 7) ^ (y / 5)) % 200) as u8,
                ])
            }
        })
    }

    fn encode_jpeg(img: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(img)
            .expect("encode test JPEG");
        out
    }

    fn jpeg_with_exif(w: u32, h: u32, orientation: u16) -> Vec<u8> {
        with_exif(&encode_jpeg(&test_image(w, h)), &full_exif(orientation))
    }

    fn encode_png_rgba(img: &RgbaImage) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(img, img.width(), img.height(), ExtendedColorType::Rgba8)
            .expect("encode test PNG");
        out
    }

    fn encode_webp(img: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut out)
            .write_image(img, img.width(), img.height(), ExtendedColorType::Rgb8)
            .expect("encode test WebP");
        out
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    }

    /// A tiny, well-formed PNG whose header claims `w × h` RGB pixels.
    fn png_bomb(w: u32, h: u32) -> Vec<u8> {
        let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        let mut ihdr = Vec::new();
        ihdr.extend(w.to_be_bytes());
        ihdr.extend(h.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        png_chunk(&mut out, b"IHDR", &ihdr);
        // A zlib stream of a few zero bytes: far too little data, but the header is what counts.
        png_chunk(
            &mut out,
            b"IDAT",
            &[0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
        );
        png_chunk(&mut out, b"IEND", &[]);
        out
    }

    // ---- inspecting outputs --------------------------------------------------------------

    /// The APPn markers of a JPEG, in order, up to the first SOS.
    fn app_markers(jpeg: &[u8]) -> Vec<u8> {
        let mut markers = Vec::new();
        let mut i = 2;
        while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
            let m = jpeg[i + 1];
            if m == 0xDA {
                break;
            }
            if (0xE0..=0xEF).contains(&m) {
                markers.push(m);
            }
            i += 2 + usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        }
        markers
    }

    fn assert_clean_jpeg(jpeg: &[u8], w: u32, h: u32) -> RgbImage {
        assert_eq!(sniff(jpeg), Some(MediaType::Jpeg));
        assert!(jpeg.ends_with(&[0xFF, 0xD9]));
        // JFIF APP0 only: no APP1 (EXIF/XMP), no APP2 (ICC), nothing else.
        assert_eq!(app_markers(jpeg), vec![0xE0]);
        assert!(!jpeg.windows(6).any(|w| w == b"Exif\0\0"));
        assert_eq!(read_exif(jpeg), ExifInfo::default());
        let img = image::load_from_memory(jpeg).expect("rendition decodes");
        assert_eq!((img.width(), img.height()), (w, h));
        img.to_rgb8()
    }

    fn is_red(p: &Rgb<u8>) -> bool {
        p[0] > 180 && p[1] < 80 && p[2] < 80
    }

    // ---- sniff -----------------------------------------------------------------------------

    #[test]
    fn sniff_by_magic_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(MediaType::Jpeg));
        assert_eq!(sniff(&png_bomb(1, 1)), Some(MediaType::Png));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8L"), Some(MediaType::Webp));
        assert_eq!(
            sniff(&encode_webp(&test_image(8, 8))),
            Some(MediaType::Webp)
        );
        for other in [
            &b""[..],
            b"\xFF\xD8",
            b"GIF89a\x01\0\x01\0",
            b"RIFF\x10\0\0\0WAVEfmt ",
            b"RIFF\x10\0\0\0WEB",
            b"\0\0\0\x18ftypheic\0\0\0\0",
            b"%PDF-1.7",
            b"II*\0\x08\0\0\0",
            b"<svg xmlns=",
        ] {
            assert_eq!(sniff(other), None, "{other:?}");
        }
        assert_eq!(MediaType::Jpeg.mime(), "image/jpeg");
        assert_eq!(MediaType::Png.mime(), "image/png");
        assert_eq!(MediaType::Webp.mime(), "image/webp");
    }

    // ---- read_exif ------------------------------------------------------------------------

    #[test]
    fn read_exif_from_a_real_jpeg() {
        let info = read_exif(&jpeg_with_exif(64, 48, 6));
        assert_eq!(
            info.captured_at.as_deref(),
            Some("2024-05-01 10:30:00+08:00")
        );
        assert_eq!(info.captured_at_ms, Some(CAPTURED_MS));
        assert!((info.gps_lng.expect("lng") - LNG).abs() < 1e-7);
        assert!((info.gps_lat.expect("lat") - LAT).abs() < 1e-7);
        assert_eq!(info.orientation, Some(6));
        assert_eq!(info.camera.as_deref(), Some("HUAWEI ELS-AN00"));
    }

    #[test]
    fn read_exif_time_without_offset_is_china_time() {
        let t = tiff(
            vec![(0x010F, V::Ascii("Apple")), (0x0110, V::Ascii("iPhone 13"))],
            vec![
                (0x9003, V::Ascii("2024:05:01 10:30:00")),
                (0x9291, V::Ascii("250")),
            ],
            vec![],
        );
        let info = read_exif(&with_exif(&encode_jpeg(&test_image(16, 16)), &t));
        assert_eq!(info.captured_at.as_deref(), Some("2024-05-01 10:30:00"));
        assert_eq!(info.captured_at_ms, Some(CAPTURED_MS + 250));
        assert_eq!(info.camera.as_deref(), Some("Apple iPhone 13"));
        assert_eq!(
            (info.gps_lat, info.gps_lng, info.orientation),
            (None, None, None)
        );
    }

    #[test]
    fn read_exif_uses_the_given_offset() {
        let t = tiff(
            vec![],
            vec![
                (0x9003, V::Ascii("2024:05:01 02:30:00")),
                (0x9011, V::Ascii("+00:00")),
            ],
            vec![],
        );
        let info = read_exif(&with_exif(&encode_jpeg(&test_image(16, 16)), &t));
        assert_eq!(
            info.captured_at.as_deref(),
            Some("2024-05-01 02:30:00+00:00")
        );
        assert_eq!(info.captured_at_ms, Some(CAPTURED_MS));
    }

    #[test]
    fn read_exif_southern_western_hemispheres() {
        let t = tiff(
            vec![],
            vec![],
            vec![
                (0x0001, V::Ascii("S")),
                (0x0002, dms(33.8688)),
                (0x0003, V::Ascii("W")),
                (0x0004, dms(70.6693)),
            ],
        );
        let info = read_exif(&with_exif(&encode_jpeg(&test_image(16, 16)), &t));
        assert!((info.gps_lat.expect("lat") + 33.8688).abs() < 1e-7);
        assert!((info.gps_lng.expect("lng") + 70.6693).abs() < 1e-7);
    }

    /// Real files, with their attribution in tests/data/photos/README.md.
    const NOKIA_SRATIONAL_GPS: &[u8] =
        include_bytes!("../../tests/data/photos/HMD_Nokia_8.3_5G.jpg");
    const NIKON_RATIONAL_GPS: &[u8] = include_bytes!("../../tests/data/photos/DSCN0010.jpg");
    const CORRUPTED: &[u8] = include_bytes!("../../tests/data/photos/corrupted.jpg");

    #[test]
    fn read_exif_gps_as_srational_from_a_real_phone_photo() {
        let info = read_exif(NOKIA_SRATIONAL_GPS);
        let (lat, lng) = (info.gps_lat.expect("lat"), info.gps_lng.expect("lng"));
        // exiftool and Pillow: 60.14671 N, 24.90677 E.
        assert!((lat - 60.14671).abs() < 1e-5, "{lat}");
        assert!((lng - 24.90677).abs() < 1e-5, "{lng}");
        assert_eq!(info.camera.as_deref(), Some("HMD Global Nokia 8.3 5G"));
    }

    #[test]
    fn read_exif_gps_as_rational_from_a_real_camera_photo() {
        let info = read_exif(NIKON_RATIONAL_GPS);
        let (lat, lng) = (info.gps_lat.expect("lat"), info.gps_lng.expect("lng"));
        // 43° 28' 2.814" N, 11° 53' 6.456" E.
        assert!((lat - 43.467448).abs() < 1e-5, "{lat}");
        assert!((lng - 11.885127).abs() < 1e-5, "{lng}");
        assert_eq!(info.camera.as_deref(), Some("NIKON COOLPIX P6000"));
    }

    #[test]
    fn read_exif_srational_gps_with_a_negative_part_is_dropped() {
        let t = tiff(
            vec![],
            vec![],
            vec![
                (0x0001, V::Ascii("N")),
                (0x0002, V::SRational(vec![(-60, 1), (8, 1), (4814, 100)])),
                (0x0003, V::Ascii("E")),
                (0x0004, V::SRational(vec![(24, 1), (54, 1), (2438, 100)])),
            ],
        );
        let info = read_exif(&with_exif(&encode_jpeg(&test_image(16, 16)), &t));
        assert_eq!((info.gps_lat, info.gps_lng), (None, None));
    }

    #[test]
    fn read_exif_drops_impossible_values() {
        let t = tiff(
            vec![(0x0112, V::Short(9))],
            vec![(0x9003, V::Ascii("0000:00:00 00:00:00"))],
            vec![
                (0x0001, V::Ascii("N")),
                (0x0002, V::Rational(vec![(95, 1), (0, 1), (0, 1)])),
                (0x0003, V::Ascii("E")),
                (0x0004, V::Rational(vec![(117, 0), (0, 1), (0, 1)])),
            ],
        );
        let info = read_exif(&with_exif(&encode_jpeg(&test_image(16, 16)), &t));
        assert_eq!(info, ExifInfo::default());
        // The no-fix point 0/0 is not a location.
        let t = tiff(vec![], vec![], vec![(0x0002, dms(0.0)), (0x0004, dms(0.0))]);
        let info = read_exif(&with_exif(&encode_jpeg(&test_image(16, 16)), &t));
        assert_eq!((info.gps_lat, info.gps_lng), (None, None));
    }

    #[test]
    fn read_exif_never_fails() {
        let plain = encode_jpeg(&test_image(16, 16));
        assert_eq!(read_exif(&plain), ExifInfo::default());
        assert_eq!(read_exif(b"not an image"), ExifInfo::default());
        assert_eq!(read_exif(&[]), ExifInfo::default());
        // A broken TIFF inside the APP1 segment, and an EXIF segment cut short.
        let garbage = with_app1(&plain, b"Exif\0\0II*\0\xFF\xFF\xFF\x7F");
        assert_eq!(read_exif(&garbage), ExifInfo::default());
        let full = jpeg_with_exif(16, 16, 6);
        for cut in [4, 10, 20, 40, 80, 200] {
            let _ = read_exif(&full[..cut.min(full.len())]);
        }
    }

    // ---- renditions -----------------------------------------------------------------------

    #[test]
    fn landscape_jpeg_renditions() {
        let bytes = jpeg_with_exif(2000, 1000, 1);
        let r = renditions(&bytes, &Limits::default()).expect("renditions");
        assert_eq!((r.width, r.height), (2000, 1000));
        let preview = assert_clean_jpeg(&r.preview_jpeg, 1600, 800);
        assert_clean_jpeg(&r.thumbnail_jpeg, 320, 160);
        assert!(is_red(preview.get_pixel(20, 20)));
        assert!(!is_red(preview.get_pixel(1580, 20)));
    }

    #[test]
    fn orientation_6_and_8_make_portrait_renditions() {
        // Stored 2000 × 1000 with a red block at the stored top-left.
        for (orientation, red_corner) in [(6u16, "top-right"), (8, "bottom-left")] {
            let r = renditions(&jpeg_with_exif(2000, 1000, orientation), &Limits::default())
                .expect("renditions");
            assert_eq!((r.width, r.height), (1000, 2000));
            let p = assert_clean_jpeg(&r.preview_jpeg, 800, 1600);
            let t = assert_clean_jpeg(&r.thumbnail_jpeg, 160, 320);
            let corners = |img: &RgbImage| {
                let (w, h) = (img.width() - 1 - 5, img.height() - 1 - 5);
                [
                    ("top-left", is_red(img.get_pixel(5, 5))),
                    ("top-right", is_red(img.get_pixel(w, 5))),
                    ("bottom-left", is_red(img.get_pixel(5, h))),
                    ("bottom-right", is_red(img.get_pixel(w, h))),
                ]
            };
            for img in [&p, &t] {
                for (name, red) in corners(img) {
                    assert_eq!(red, name == red_corner, "orientation {orientation}, {name}");
                }
            }
        }
    }

    #[test]
    fn all_eight_orientations_give_the_right_size() {
        for o in 1..=8u16 {
            let r = renditions(&jpeg_with_exif(400, 100, o), &Limits::default()).expect("ok");
            let want = if o >= 5 { (100, 400) } else { (400, 100) };
            assert_eq!((r.width, r.height), want, "orientation {o}");
            assert_clean_jpeg(&r.preview_jpeg, want.0, want.1);
            assert_clean_jpeg(&r.thumbnail_jpeg, want.0 * 320 / 400, want.1 * 320 / 400);
        }
    }

    #[test]
    fn small_images_are_not_upscaled() {
        let r = renditions(&encode_jpeg(&test_image(200, 150)), &Limits::default()).expect("ok");
        assert_clean_jpeg(&r.preview_jpeg, 200, 150);
        assert_clean_jpeg(&r.thumbnail_jpeg, 200, 150);
        let r = renditions(&encode_jpeg(&test_image(1, 1)), &Limits::default()).expect("ok");
        assert_clean_jpeg(&r.thumbnail_jpeg, 1, 1);
        // Extreme aspect ratio: the short side never rounds to zero.
        let r = renditions(&encode_jpeg(&test_image(4000, 3)), &Limits::default()).expect("ok");
        assert_clean_jpeg(&r.preview_jpeg, 1600, 1);
        assert_clean_jpeg(&r.thumbnail_jpeg, 320, 1);
    }

    #[test]
    fn resize_keeps_flat_colour_flat() {
        let flat = RgbImage::from_pixel(997, 631, Rgb([37, 128, 250]));
        let p = Pixels::from_image(DynamicImage::ImageRgb8(flat));
        let (w, h) = fit(997, 631, 320);
        let small = p.resize(w, h);
        assert_eq!((small.width, small.height), (320, 203));
        assert!(small.data.chunks_exact(3).all(|px| px == [37, 128, 250]));
    }

    #[test]
    fn png_with_transparency_goes_on_white() {
        let img = RgbaImage::from_fn(900, 600, |x, _| {
            if x < 450 {
                Rgba([0, 0, 0, 0])
            } else {
                Rgba([10, 200, 10, 255])
            }
        });
        let r = renditions(&encode_png_rgba(&img), &Limits::default()).expect("png");
        assert_eq!((r.width, r.height), (900, 600));
        let t = assert_clean_jpeg(&r.thumbnail_jpeg, 320, 213);
        let left = t.get_pixel(20, 100);
        assert!(
            left.0.iter().all(|&c| c > 240),
            "transparent → white, got {left:?}"
        );
        let right = t.get_pixel(300, 100);
        assert!(right[1] > 180 && right[0] < 60, "{right:?}");
        assert_clean_jpeg(&r.preview_jpeg, 900, 600);
    }

    #[test]
    fn webp_and_grayscale_inputs() {
        let r =
            renditions(&encode_webp(&test_image(2400, 1800)), &Limits::default()).expect("webp");
        assert_eq!((r.width, r.height), (2400, 1800));
        assert_clean_jpeg(&r.preview_jpeg, 1600, 1200);
        assert_clean_jpeg(&r.thumbnail_jpeg, 320, 240);

        let grey = GrayImage::from_fn(640, 480, |x, y| Luma([((x + y) % 256) as u8]));
        let mut bytes = Vec::new();
        JpegEncoder::new_with_quality(&mut bytes, 85)
            .encode_image(&grey)
            .expect("grey jpeg");
        let r = renditions(&bytes, &Limits::default()).expect("grey");
        assert_clean_jpeg(&r.thumbnail_jpeg, 320, 240);
    }

    #[test]
    fn unsupported_types_are_refused() {
        for bytes in [
            &b"GIF89a\x01\0\x01\0\0\0\0;"[..],
            b"hello, world",
            b"",
            b"\0\0\0\x18ftypheic\0\0\0\0",
        ] {
            assert!(matches!(
                renditions(bytes, &Limits::default()),
                Err(MediaError::Unsupported)
            ));
        }
    }

    #[test]
    fn truncated_or_broken_files_are_decode_errors() {
        let jpeg = jpeg_with_exif(800, 600, 1);
        for cut in [3, 20, 300, jpeg.len() / 2, jpeg.len() - 2] {
            let r = renditions(&jpeg[..cut], &Limits::default());
            assert!(matches!(r, Err(MediaError::Decode(_))), "cut at {cut}");
        }
        // An EOI inside the EXIF segment (as in an embedded thumbnail) does not count.
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend([0xFF, 0xD8, 0xFF, 0xD9]);
        let fake_eoi = with_app1(&encode_jpeg(&test_image(300, 200)), &payload);
        assert!(renditions(&fake_eoi, &Limits::default()).is_ok());
        let cut = &fake_eoi[..fake_eoi.len() - 100];
        assert!(matches!(
            renditions(cut, &Limits::default()),
            Err(MediaError::Decode(_))
        ));
        // Data after the EOI (a Motion Photo's video, a vendor trailer) is fine.
        let mut trailer = jpeg.clone();
        trailer.extend(b"\0\0\0\x18ftypmp42 and then a video");
        assert!(renditions(&trailer, &Limits::default()).is_ok());

        let png = encode_png_rgba(&RgbaImage::from_pixel(300, 200, Rgba([1, 2, 3, 255])));
        for cut in [8, 30, png.len() / 2] {
            assert!(
                matches!(
                    renditions(&png[..cut], &Limits::default()),
                    Err(MediaError::Decode(_))
                ),
                "png cut at {cut}"
            );
        }
        let webp = encode_webp(&test_image(300, 200));
        assert!(matches!(
            renditions(&webp[..webp.len() / 2], &Limits::default()),
            Err(MediaError::Decode(_))
        ));
    }

    /// Patches the SOF0 header of `jpeg` to claim `w × h` (the last SOF0: an EXIF thumbnail
    /// before it has its own; `FF C0` cannot occur in the scan data).
    fn claim_size(jpeg: &[u8], w: u16, h: u16) -> Vec<u8> {
        let mut jpeg = jpeg.to_vec();
        let sof = jpeg
            .windows(2)
            .rposition(|w| w == [0xFF, 0xC0])
            .expect("SOF0");
        jpeg[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        jpeg
    }

    #[test]
    fn jpeg_whose_data_cannot_fill_its_frame_is_refused() {
        // 640 × 480 of data (about 9.5 KB) under a header claiming 11000 × 9000: within the
        // limits, and the lenient decoder would fill the rest with black.
        let small = RgbImage::from_fn(640, 480, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut data = Vec::new();
        JpegEncoder::new_with_quality(&mut data, 10)
            .encode_image(&small)
            .expect("encode");
        assert!((8_000..12_000).contains(&data.len()), "{}", data.len());
        for bytes in [data, NIKON_RATIONAL_GPS.to_vec()] {
            let r = renditions(&claim_size(&bytes, 11_000, 9_000), &Limits::default());
            let Err(MediaError::Decode(message)) = r else {
                panic!("expected a decode error, got {r:?}");
            };
            assert!(
                message.contains("too few to fill its declared 11000 × 9000 frame"),
                "{message}"
            );
        }
        // The same files as they were are fine, and so are flat images, which compress best.
        assert!(renditions(NIKON_RATIONAL_GPS, &Limits::default()).is_ok());
        for (w, h) in [(1, 1), (16, 16), (3000, 2000)] {
            let flat = encode_jpeg(&RgbImage::from_pixel(w, h, Rgb([255, 255, 255])));
            assert_eq!(jpeg_structure(&flat), Ok(()), "{w} × {h}");
            let grey = GrayImage::from_pixel(w, h, Luma([0]));
            let mut bytes = Vec::new();
            JpegEncoder::new_with_quality(&mut bytes, 10)
                .encode_image(&grey)
                .expect("grey");
            assert_eq!(jpeg_structure(&bytes), Ok(()), "grey {w} × {h}");
        }
    }

    #[test]
    fn corrupted_real_jpeg_is_refused_with_a_true_message() {
        // It does end with an end-of-image marker; its scan data holds a stray FF 9F.
        assert!(CORRUPTED.ends_with(&[0xFF, 0xD9]));
        let r = renditions(CORRUPTED, &Limits::default());
        let Err(MediaError::Decode(message)) = r else {
            panic!("expected a decode error, got {r:?}");
        };
        assert_eq!(
            message,
            "the image could not be decoded: corrupt JPEG data: unexpected marker FF 9F inside \
             the image data at byte 229375"
                .replace("the image could not be decoded: ", ""),
        );
        assert!(!message.contains("end-of-image"), "{message}");
    }

    #[test]
    fn png_decompression_bomb_is_refused_before_allocating() {
        let bomb = png_bomb(100_000, 100_000);
        assert!(bomb.len() < 100);
        let started = Instant::now();
        let r = renditions(&bomb, &Limits::default());
        assert!(
            matches!(
                r,
                Err(MediaError::TooLarge {
                    width: 100_000,
                    height: 100_000
                })
            ),
            "{r:?}"
        );
        // 10^10 pixels would take minutes and 30 GB; refusing takes microseconds.
        assert!(started.elapsed() < Duration::from_millis(500));
        // Within the side limits but over the pixel and allocation limits.
        let r = renditions(&png_bomb(11_000, 11_000), &Limits::default());
        assert!(matches!(r, Err(MediaError::TooLarge { .. })), "{r:?}");
    }

    #[test]
    fn jpeg_bomb_is_refused_before_allocating() {
        // A real small JPEG whose SOF0 header is patched to claim 60000 × 60000.
        let mut jpeg = encode_jpeg(&test_image(64, 64));
        let sof = jpeg
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("SOF0");
        jpeg[sof + 5..sof + 7].copy_from_slice(&60_000u16.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&60_000u16.to_be_bytes());
        let started = Instant::now();
        let r = renditions(&jpeg, &Limits::default());
        assert!(
            matches!(
                r,
                Err(MediaError::TooLarge {
                    width: 60_000,
                    height: 60_000
                })
            ),
            "{r:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    #[test]
    fn custom_limits_apply() {
        let bytes = encode_jpeg(&test_image(2000, 1000));
        let tight = |f: fn(&mut Limits)| {
            let mut l = Limits::default();
            f(&mut l);
            renditions(&bytes, &l)
        };
        for r in [
            tight(|l| l.max_width = 1999),
            tight(|l| l.max_height = 999),
            tight(|l| l.max_pixels = 1_999_999),
            tight(|l| l.max_alloc_bytes = 5_000_000),
        ] {
            assert!(
                matches!(
                    r,
                    Err(MediaError::TooLarge {
                        width: 2000,
                        height: 1000
                    })
                ),
                "{r:?}"
            );
        }
        assert!(tight(|l| l.max_pixels = 2_000_000).is_ok());
    }

    #[test]
    fn errors_read_well() {
        let e = MediaError::TooLarge {
            width: 100_000,
            height: 100_000,
        };
        assert_eq!(
            e.to_string(),
            "image of 100000 × 100000 pixels is over the size limit"
        );
        assert!(MediaError::Unsupported
            .to_string()
            .contains("JPEG, PNG and WebP"));
    }

    #[test]
    fn fit_never_upscales_and_keeps_aspect() {
        assert_eq!(fit(4000, 3000, 1600), (1600, 1200));
        assert_eq!(fit(3000, 4000, 320), (240, 320));
        assert_eq!(fit(1600, 1200, 1600), (1600, 1200));
        assert_eq!(fit(100, 50, 320), (100, 50));
        assert_eq!(fit(65_535, 1, 320), (320, 1));
    }

    // ---- never panics ---------------------------------------------------------------------

    fn magic() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(vec![]),
            Just(vec![0xFF, 0xD8, 0xFF]),
            Just(vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]),
            Just(b"RIFF\0\0\0\0WEBP".to_vec()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn random_bytes_never_panic(
            head in magic(),
            tail in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let mut bytes = head;
            bytes.extend(tail);
            let _ = sniff(&bytes);
            let _ = read_exif(&bytes);
            let _ = renditions(&bytes, &Limits::default());
        }

        #[test]
        fn corrupted_real_files_never_panic(
            which in 0usize..3,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = match which {
                0 => jpeg_with_exif(120, 90, 6),
                1 => encode_png_rgba(&RgbaImage::from_pixel(60, 40, Rgba([9, 8, 7, 128]))),
                _ => encode_webp(&test_image(60, 40)),
            };
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            let keep = bytes.len() / 2 + cut.index(bytes.len() / 2 + 1);
            bytes.truncate(keep);
            let _ = read_exif(&bytes);
            let limits = Limits { max_pixels: 4_000_000, ..Limits::default() };
            if let Ok(r) = renditions(&bytes, &limits) {
                prop_assert_eq!(sniff(&r.preview_jpeg), Some(MediaType::Jpeg));
                prop_assert_eq!(sniff(&r.thumbnail_jpeg), Some(MediaType::Jpeg));
            }
        }
    }
}
