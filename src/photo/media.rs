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
//! - memory: the limit counts what the decoder really holds (its output plus full-size working
//!   buffers such as a lossless WebP's RGBA copy or a progressive JPEG's coefficients); the
//!   decoded buffer is then narrowed to 8 bits and flattened onto white in place and resized
//!   row by row, so processing peaks at the limit plus a few MiB (measured in
//!   `benches/photos.rs`, figures in BENCHMARKS.md);
//! - a truncated JPEG (an interrupted upload), one with corrupt scan data, or one whose data
//!   is too short to fill its declared frame is refused instead of being silently padded with
//!   grey or black, which the lenient JPEG decoder would otherwise do;
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
use image::{ColorType, DynamicImage, ExtendedColorType, ImageBuffer, ImageDecoder, ImageError};

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
    /// Maximum memory of decoding: the decoded pixel buffer plus the decoder's full-size
    /// working buffers. Also passed to the decoders as their allocation limit. Processing
    /// peaks at this plus a few MiB (the preview and row buffers).
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
    let pixels = decode(bytes, kind, limits)?;
    let (w, h) = (pixels.width, pixels.height);

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

/// Decodes into opaque 8-bit pixels, never holding more than [`decode_cost`] bytes of pixel
/// buffers (checked against the limits first): the decoder writes into one buffer, which is
/// then narrowed (16 → 8 bit) and flattened (alpha onto white) in place.
fn decode(bytes: &[u8], kind: MediaType, limits: &Limits) -> Result<Pixels, MediaError> {
    let decode_err = |e: ImageError| MediaError::Decode(e.to_string());
    match kind {
        MediaType::Jpeg => {
            let decoder = JpegDecoder::new(Cursor::new(bytes)).map_err(decode_err)?;
            // The JPEG decoder fills missing data with grey (or repeats the last colour)
            // instead of failing; a truncated, corrupt or padded upload must be refused, not
            // turned into a preview that is grey or black where the picture should be.
            let layout = jpeg_layout(bytes).map_err(|f| MediaError::Decode(f.to_string()))?;
            let (w, h) = decoder.dimensions();
            let cost = decode_cost(&Header::Jpeg {
                file_bytes: bytes.len() as u64,
                output_bytes: decoder.total_bytes(),
                progressive_blocks: layout
                    .frame
                    .filter(|f| f.progressive)
                    .map_or(0, |f| f.mcu_blocks),
            });
            check_limits(w, h, cost, limits)?;
            layout
                .check_fill()
                .map_err(|f| MediaError::Decode(f.to_string()))?;
            decode_checked(decoder, limits)
        }
        MediaType::Png => {
            // Only the allocation limit here (it bounds decompression of metadata chunks
            // read with the header); the dimensions are checked below, where they are known
            // and can be reported.
            let mut header_limits = image::Limits::no_limits();
            header_limits.max_alloc = Some(limits.max_alloc_bytes);
            let decoder = PngDecoder::with_limits(Cursor::new(bytes), header_limits)
                .map_err(|e| limit_or_decode(e, None))?;
            let (w, h) = decoder.dimensions();
            check_limits(
                w,
                h,
                decode_cost(&Header::Png(decoder.total_bytes())),
                limits,
            )?;
            decode_checked(decoder, limits)
        }
        MediaType::Webp => {
            let decoder = WebPDecoder::new(Cursor::new(bytes)).map_err(decode_err)?;
            let (w, h) = decoder.dimensions();
            let chunks = webp_chunks(bytes);
            if chunks.animated {
                return Err(MediaError::Decode(
                    "animated WebP is not accepted as a photo".into(),
                ));
            }
            let header = Header::Webp {
                width: w,
                height: h,
                alpha: decoder.color_type().has_alpha(),
                lossless: chunks.lossless,
            };
            check_limits(w, h, decode_cost(&header), limits)?;
            decode_checked(decoder, limits)
        }
    }
}

/// What the peak memory of decoding depends on, read from the headers.
enum Header {
    Jpeg {
        /// The decoder keeps its own copy of the file.
        file_bytes: u64,
        output_bytes: u64,
        /// 8 × 8 blocks (padded to whole MCUs) of a progressive JPEG, else 0.
        progressive_blocks: u64,
    },
    /// The output bytes: the PNG decoder works row by row into the output.
    Png(u64),
    Webp {
        width: u32,
        height: u32,
        alpha: bool,
        lossless: bool,
    },
}

/// Peak bytes a decoder allocates for one image, up to a small constant: its output buffer
/// plus the full-size working buffers it keeps beside it. This, not the output size alone,
/// is what [`Limits::max_alloc_bytes`] bounds.
fn decode_cost(header: &Header) -> u64 {
    match *header {
        Header::Jpeg {
            file_bytes,
            output_bytes,
            progressive_blocks,
        } => {
            // A progressive JPEG's coefficients are all held until the last scan: 64 i16
            // per block.
            file_bytes + output_bytes + progressive_blocks * 64 * 2
        }
        Header::Png(output_bytes) => output_bytes,
        Header::Webp {
            width,
            height,
            alpha,
            lossless,
        } => {
            let px = u64::from(width) * u64::from(height);
            let output = px * if alpha { 4 } else { 3 };
            if lossless {
                // The lossless decoder works in RGBA: without alpha it decodes into a
                // second, RGBA buffer and copies out. Its transform and prefix-code images
                // are subsampled at least 4 × 4 (a quarter byte per pixel each): allow one
                // byte per pixel for them.
                output + if alpha { 0 } else { px * 4 } + px
            } else {
                // YUV 4:2:0 planes in whole 16 × 16 macroblocks, and the alpha plane.
                let mb = u64::from(width.div_ceil(16)) * u64::from(height.div_ceil(16)) * 256;
                output + mb * 3 / 2 + if alpha { px } else { 0 }
            }
        }
    }
}

/// The facts of a WebP's chunk list that decoding memory depends on.
#[derive(Debug, Default)]
struct WebpChunks {
    lossless: bool,
    animated: bool,
}

/// Walks the RIFF chunks (no decoding). Unknown or broken lists give the defaults; the
/// decoder then refuses what it cannot read.
fn webp_chunks(b: &[u8]) -> WebpChunks {
    let mut out = WebpChunks::default();
    let mut i = 12;
    while let Some(head) = b.get(i..i + 8) {
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        match &head[..4] {
            b"VP8L" => out.lossless = true,
            b"ANIM" | b"ANMF" => out.animated = true,
            _ => {}
        }
        i = i
            .saturating_add(8)
            .saturating_add(size)
            .saturating_add(size % 2);
    }
    out
}

fn image_limits(limits: &Limits) -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_width);
    l.max_image_height = Some(limits.max_height);
    l.max_alloc = Some(limits.max_alloc_bytes);
    l
}

fn check_limits(w: u32, h: u32, decode_bytes: u64, limits: &Limits) -> Result<(), MediaError> {
    if w == 0 || h == 0 {
        return Err(MediaError::Decode(format!("empty image ({w} × {h})")));
    }
    if w > limits.max_width
        || h > limits.max_height
        || u64::from(w) * u64::from(h) > limits.max_pixels
        || decode_bytes > limits.max_alloc_bytes
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

/// Hands the limits to the decoder, decodes into one buffer and makes it opaque 8-bit in
/// place. The caller has checked the limits against the header.
fn decode_checked<D: ImageDecoder>(mut decoder: D, limits: &Limits) -> Result<Pixels, MediaError> {
    let (width, height) = decoder.dimensions();
    let too_large = MediaError::TooLarge { width, height };
    decoder
        .set_limits(image_limits(limits))
        .map_err(|e| limit_or_decode(e, Some((width, height))))?;
    let color = decoder.color_type();
    let len = usize::try_from(decoder.total_bytes()).map_err(|_| too_large)?;
    let mut buf = Vec::new();
    // A failed allocation is a refusal, not an abort of the whole server.
    buf.try_reserve_exact(len)
        .map_err(|_| MediaError::TooLarge { width, height })?;
    buf.resize(len, 0);
    decoder
        .read_image(&mut buf)
        .map_err(|e| limit_or_decode(e, Some((width, height))))?;
    let channels = opaque_8bit_in_place(&mut buf, color)?;
    Ok(Pixels {
        data: buf,
        channels,
        width,
        height,
    })
}

/// Turns decoded samples into opaque 8-bit grey (1 channel) or RGB (3) in the same buffer,
/// which only shrinks: 16-bit samples are narrowed, alpha is composited onto white.
fn opaque_8bit_in_place(buf: &mut Vec<u8>, color: ColorType) -> Result<usize, MediaError> {
    let (channels, alpha, wide) = match color {
        ColorType::L8 => (1, false, false),
        ColorType::La8 => (1, true, false),
        ColorType::Rgb8 => (3, false, false),
        ColorType::Rgba8 => (3, true, false),
        ColorType::L16 => (1, false, true),
        ColorType::La16 => (1, true, true),
        ColorType::Rgb16 => (3, false, true),
        ColorType::Rgba16 => (3, true, true),
        other => {
            return Err(MediaError::Decode(format!(
                "unsupported pixel format {other:?}"
            )))
        }
    };
    if wide {
        narrow_16_in_place(buf);
    }
    if alpha {
        match channels {
            1 => flatten_on_white_in_place::<1>(buf),
            _ => flatten_on_white_in_place::<3>(buf),
        }
    }
    Ok(channels)
}

/// Native-endian 16-bit samples → 8-bit, rounded, in place (sample `i` moves from bytes
/// `2i, 2i + 1` down to byte `i`, which has been read already).
fn narrow_16_in_place(buf: &mut Vec<u8>) {
    let n = buf.len() / 2;
    for i in 0..n {
        let v = u32::from(u16::from_ne_bytes([buf[2 * i], buf[2 * i + 1]]));
        buf[i] = ((v * 255 + 32_767) / 65_535) as u8;
    }
    buf.truncate(n);
}

/// `C` colour channels + 1 alpha → `C` channels over white, in place (pixel `p` moves from
/// `p × (C + 1)` down to `p × C`; it is read whole before it is written).
fn flatten_on_white_in_place<const C: usize>(buf: &mut Vec<u8>) {
    let n = buf.len() / (C + 1);
    for p in 0..n {
        let mut px = [0u8; 4];
        px[..=C].copy_from_slice(&buf[p * (C + 1)..(p + 1) * (C + 1)]);
        let a = u32::from(px[C]);
        for c in 0..C {
            buf[p * C + c] = ((u32::from(px[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    buf.truncate(n * C);
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

/// The frame header (SOFn) facts that decoding memory and the least image data depend on.
#[derive(Debug, Clone, Copy)]
struct JpegFrame {
    width: u32,
    height: u32,
    progressive: bool,
    /// 8 × 8 blocks over all components, with chroma subsampling.
    blocks: u64,
    /// The same, padded to whole MCUs, as a decoder allocates them.
    mcu_blocks: u64,
}

/// Parses a SOFn payload (after the length): precision, height, width, components.
fn parse_sof(marker: u8, p: &[u8]) -> Option<JpegFrame> {
    let height = u32::from(u16::from_be_bytes([*p.get(1)?, *p.get(2)?]));
    let width = u32::from(u16::from_be_bytes([*p.get(3)?, *p.get(4)?]));
    let n = usize::from(*p.get(5)?);
    let comps = p.get(6..6 + 3 * n)?;
    if n == 0 {
        return None;
    }
    let factors: Vec<(u64, u64)> = comps
        .chunks_exact(3)
        .map(|c| (u64::from(c[1] >> 4), u64::from(c[1] & 0x0F)))
        .collect();
    if factors.iter().any(|&(h, v)| h == 0 || v == 0) {
        return None;
    }
    let hmax = factors.iter().map(|f| f.0).max()?;
    let vmax = factors.iter().map(|f| f.1).max()?;
    let (w, h) = (u64::from(width), u64::from(height));
    let blocks = factors
        .iter()
        .map(|&(fh, fv)| (w * fh).div_ceil(hmax).div_ceil(8) * (h * fv).div_ceil(vmax).div_ceil(8))
        .sum();
    let mcus = w.div_ceil(8 * hmax) * h.div_ceil(8 * vmax);
    let mcu_blocks = factors.iter().map(|&(fh, fv)| fh * fv * mcus).sum();
    Some(JpegFrame {
        width,
        height,
        progressive: matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE),
        blocks,
        mcu_blocks,
    })
}

/// What the marker walk found: the frame and how many bytes of image (entropy-coded) data
/// its scans hold.
#[derive(Debug, Clone, Copy)]
struct JpegLayout {
    frame: Option<JpegFrame>,
    entropy_bytes: u64,
}

impl JpegLayout {
    /// Refuses less image data than any encoder could write for the declared frame: every
    /// 8 × 8 block of every component costs at least one Huffman code (≥ 1 bit) in the scan
    /// carrying its DC coefficient. A header patched from 640 × 480 to 11000 × 9000 fails
    /// this; the decoder would otherwise fill the missing blocks and make a black preview.
    fn check_fill(&self) -> Result<(), JpegFault> {
        let Some(f) = self.frame else {
            return Ok(());
        };
        let need = f.blocks.div_ceil(8);
        if self.entropy_bytes < need {
            return Err(JpegFault::TooLittleData {
                width: f.width,
                height: f.height,
                have: self.entropy_bytes,
                need,
            });
        }
        Ok(())
    }
}

/// Walks the JPEG's markers from SOI to EOI (no decoding).
///
/// Walks the length-prefixed segments, so an `FF D9` inside the EXIF thumbnail does not count,
/// and scans the entropy-coded data after each SOS (progressive JPEGs have many) for the next
/// marker. Data after the EOI (Motion Photo videos, vendor trailers) is allowed. Refused: no
/// EOI reached (a truncated upload), and a marker inside the image data that cannot follow a
/// scan (corrupt data: decoders stop there and fill the rest of the frame with grey).
fn jpeg_layout(b: &[u8]) -> Result<JpegLayout, JpegFault> {
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
            frame = Some(parse_sof(marker, payload).ok_or(JpegFault::BadFrame)?);
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
    Ok(JpegLayout {
        frame,
        entropy_bytes,
    })
}

/// Opaque 8-bit pixels, grey (1 channel) or RGB (3), row-major, tightly packed.
struct Pixels {
    data: Vec<u8>,
    channels: usize,
    width: u32,
    height: u32,
}

impl Pixels {
    /// Resizes to exactly `w × h` (a downscale) with a separable triangle filter, one output
    /// row at a time: beside the result it only holds one full-width row (as `i32` sums and
    /// as bytes), never a full-width intermediate image.
    fn resize(&self, w: u32, h: u32) -> Pixels {
        let c = self.channels;
        let (src_w, src_h) = (self.width as usize, self.height as usize);
        let (dst_w, dst_h) = (w as usize, h as usize);
        if (dst_w, dst_h) == (src_w, src_h) {
            return Pixels {
                data: self.data.clone(),
                ..*self
            };
        }
        let row = src_w * c;
        let vertical = (src_h != dst_h).then(|| taps(src_h, dst_h));
        let horizontal = (src_w != dst_w).then(|| taps(src_w, dst_w));
        let mut acc = vec![0i32; if vertical.is_some() { row } else { 0 }];
        let mut line = vec![0u8; if vertical.is_some() { row } else { 0 }];
        let mut data = vec![0u8; dst_w * c * dst_h];
        for (y, out_row) in data.chunks_exact_mut(dst_w * c).enumerate() {
            // Vertical first, on a full-width row (a vectorisable inner loop); the
            // horizontal pass then only sees `dst_h` rows.
            let src_row: &[u8] = match &vertical {
                None => &self.data[y * row..(y + 1) * row],
                Some(t) => {
                    acc.fill(ROUND);
                    let weights = &t.coeffs[y * t.n..(y + 1) * t.n];
                    for (k, &wt) in weights.iter().enumerate() {
                        if wt == 0 {
                            continue;
                        }
                        let start = (t.starts[y] + k) * row;
                        for (a, &s) in acc.iter_mut().zip(&self.data[start..start + row]) {
                            *a += wt * i32::from(s);
                        }
                    }
                    for (o, &a) in line.iter_mut().zip(&acc) {
                        *o = (a >> SHIFT).clamp(0, 255) as u8;
                    }
                    &line
                }
            };
            match (&horizontal, c) {
                (None, _) => out_row.copy_from_slice(src_row),
                (Some(t), 1) => resample_row::<1>(src_row, t, out_row),
                (Some(t), _) => resample_row::<3>(src_row, t, out_row),
            }
        }
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

/// Resamples one row of `C`-channel pixels with the taps of a horizontal resize.
fn resample_row<const C: usize>(src_row: &[u8], t: &Taps, out_row: &mut [u8]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::photo::bombs;
    use image::{GrayImage, ImageEncoder, Luma, Rgb, RgbImage, Rgba, RgbaImage};
    use proptest::prelude::*;

    /// Counts this thread's heap allocations, so a test can assert what processing allocated
    /// (never how long it took).
    mod peak {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        pub struct Counting;

        thread_local! {
            static LIVE: Cell<i64> = const { Cell::new(0) };
            static PEAK: Cell<i64> = const { Cell::new(0) };
        }

        fn add(delta: i64) {
            let _ = LIVE.try_with(|live| {
                let now = live.get() + delta;
                live.set(now);
                let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
            });
        }

        // SAFETY: every call is forwarded to the system allocator unchanged; the counters
        // are const-initialised thread-locals without destructors, which never allocate.
        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                let p = unsafe { System.alloc(layout) };
                if !p.is_null() {
                    add(layout.size() as i64);
                }
                p
            }
            unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
                let p = unsafe { System.alloc_zeroed(layout) };
                if !p.is_null() {
                    add(layout.size() as i64);
                }
                p
            }
            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                unsafe { System.dealloc(ptr, layout) };
                add(-(layout.size() as i64));
            }
            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
                let p = unsafe { System.realloc(ptr, layout, new_size) };
                if !p.is_null() {
                    add(new_size as i64 - layout.size() as i64);
                }
                p
            }
        }

        /// Runs `f` and returns its result with the most heap bytes it held at once on this
        /// thread (beyond what was live when it started).
        pub fn measure<T>(f: impl FnOnce() -> T) -> (T, u64) {
            let base = LIVE.with(Cell::get);
            PEAK.with(|p| p.set(base));
            let result = f();
            let peak = PEAK.with(Cell::get);
            (result, (peak - base).max(0) as u64)
        }
    }

    #[global_allocator]
    static COUNTING: peak::Counting = peak::Counting;

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

    use crate::photo::bombs::png_chunk;

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
        let p = Pixels {
            data: flat.into_raw(),
            channels: 3,
            width: 997,
            height: 631,
        };
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
        let whole = |b: &[u8]| jpeg_layout(b).and_then(|l| l.check_fill());
        assert!(renditions(NIKON_RATIONAL_GPS, &Limits::default()).is_ok());
        for (w, h) in [(1, 1), (16, 16), (3000, 2000)] {
            let flat = encode_jpeg(&RgbImage::from_pixel(w, h, Rgb([255, 255, 255])));
            assert_eq!(whole(&flat), Ok(()), "{w} × {h}");
            let grey = GrayImage::from_pixel(w, h, Luma([0]));
            let mut bytes = Vec::new();
            JpegEncoder::new_with_quality(&mut bytes, 10)
                .encode_image(&grey)
                .expect("grey");
            assert_eq!(whole(&bytes), Ok(()), "grey {w} × {h}");
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
        let (r, allocated) = peak::measure(|| renditions(&bomb, &Limits::default()));
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
        // 10^10 pixels would be 30 GB; refusing allocates next to nothing.
        assert!(allocated < 1 << 20, "{allocated} bytes");
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
        let (r, allocated) = peak::measure(|| renditions(&jpeg, &Limits::default()));
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
        // The file itself (copied once by the decoder) and headers, no pixels.
        assert!(allocated < 1 << 20, "{allocated} bytes");
    }

    /// What processing may allocate beyond the decode limit: the preview (at most 1600 ×
    /// 1600 RGB, 7.3 MiB), one source row, the thumbnail and the two encoded JPEGs.
    const PROCESSING_SLACK: u64 = 12 << 20;

    #[test]
    fn processing_peak_stays_within_the_decode_limit() {
        // A 48 MiB limit, and bomb-like files whose pixels come close to it.
        let limits = Limits {
            max_alloc_bytes: 48 << 20,
            ..Limits::default()
        };
        let cases = [
            (
                "RGBA PNG",
                bombs::png_rgba_zeros(3400, 3400, 8),
                3400 * 3400 * 4,
            ),
            (
                "16-bit RGBA PNG",
                bombs::png_rgba_zeros(2400, 2400, 16),
                2400 * 2400 * 8,
            ),
            (
                "lossless WebP, alpha",
                bombs::webp_lossless_flat(3000, 3000, true),
                3000 * 3000 * 4,
            ),
            // Without alpha the WebP decoder works in RGBA and copies out to RGB.
            (
                "lossless WebP",
                bombs::webp_lossless_flat(2350, 2350, false),
                2350 * 2350 * 7,
            ),
        ];
        for (name, bytes, pixel_bytes) in cases {
            assert!(bytes.len() < 2 << 20, "{name}: {} bytes", bytes.len());
            let (r, allocated) = peak::measure(|| renditions(&bytes, &limits));
            let r = r.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_clean_jpeg(&r.preview_jpeg, 1600, 1600);
            // It did decode every pixel, and held nothing big beside them.
            assert!(allocated >= pixel_bytes, "{name}: {allocated} bytes");
            assert!(
                allocated <= limits.max_alloc_bytes + PROCESSING_SLACK,
                "{name}: {allocated} bytes allocated, limit {}",
                limits.max_alloc_bytes
            );
        }
    }

    #[test]
    fn the_limit_counts_the_decoders_working_buffers() {
        // 3000 × 3000 RGB is 27 MB of output, but the lossless WebP decoder also needs a
        // 36 MB RGBA buffer: 63 MB, over a 48 MiB limit, refused before allocating.
        let limits = Limits {
            max_alloc_bytes: 48 << 20,
            ..Limits::default()
        };
        let bomb = bombs::webp_lossless_flat(3000, 3000, false);
        let (r, allocated) = peak::measure(|| renditions(&bomb, &limits));
        assert!(
            matches!(
                r,
                Err(MediaError::TooLarge {
                    width: 3000,
                    height: 3000
                })
            ),
            "{r:?}"
        );
        assert!(allocated < 1 << 20, "{allocated} bytes");
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
