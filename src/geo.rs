//! Coordinate systems used by phones and map SDKs in mainland China, and conversion to WGS-84.
//!
//! Chinese map SDKs do not report WGS-84. AMap and Tencent use GCJ-02, and Baidu uses BD-09.
//! GCJ-02 is shifted about 500–600 m from WGS-84 in Tianjin. If points from different systems
//! are compared without conversion, every honest inspection gets flagged. So every point keeps
//! the system it came in ([`Crs`]), the raw value as given, and a normalised WGS-84 point, which
//! is used for distances and public GeoJSON.
//!
//! Pure arithmetic, no I/O.

use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

use geo::{Distance, Haversine};
use geo_types::Point;

/// The coordinate reference system a point was given in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Crs {
    /// WGS-84: raw GPS, iOS native location, Huawei Location Kit, WeChat `wx.getLocation`,
    /// photo EXIF.
    Wgs84,
    /// GCJ-02 ("Mars coordinates"): AMap (高德), Tencent, and the Baidu location SDK by default.
    Gcj02,
    /// BD-09: the Baidu map SDK. It is GCJ-02 with a further shift added.
    Bd09,
}

impl Crs {
    /// The canonical lower-case name, the same string as the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            Crs::Wgs84 => "wgs84",
            Crs::Gcj02 => "gcj02",
            Crs::Bd09 => "bd09",
        }
    }
}

impl fmt::Display for Crs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Crs {
    type Err = GeoError;

    /// Accepts the canonical names in any case, and also the hyphenated forms that people type
    /// and that SDK docs use (`WGS-84`, `GCJ-02`, `BD-09`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "wgs84" | "wgs-84" => Ok(Crs::Wgs84),
            "gcj02" | "gcj-02" => Ok(Crs::Gcj02),
            "bd09" | "bd-09" => Ok(Crs::Bd09),
            _ => Err(GeoError::UnknownCrs(s.to_string())),
        }
    }
}

/// Why a coordinate or a coordinate-system name is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeoError {
    #[error("coordinates must be finite numbers (got NaN or infinity)")]
    NotFinite,
    #[error("longitude {0} is outside -180..=180 degrees")]
    LngOutOfRange(f64),
    #[error("latitude {0} is outside -90..=90 degrees")]
    LatOutOfRange(f64),
    #[error("unknown coordinate system {0:?}; expected wgs84, gcj02 or bd09")]
    UnknownCrs(String),
}

/// A point as it was given (`raw`, in `crs`) together with the same point in WGS-84.
///
/// We keep the raw value so that an upstream conversion bug can be fixed later and audits show
/// what the device actually reported. All distance checks use `wgs84`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    raw: Point<f64>,
    crs: Crs,
    wgs84: Point<f64>,
}

impl Location {
    /// Validates the raw coordinates and computes the WGS-84 point.
    ///
    /// Refuses NaN or infinity, `|lng| > 180` and `|lat| > 90`. Swapped lng/lat usually shows
    /// up as a latitude out of range, because Chinese longitudes are above 72.
    pub fn new(lng: f64, lat: f64, crs: Crs) -> Result<Location, GeoError> {
        if !lng.is_finite() || !lat.is_finite() {
            return Err(GeoError::NotFinite);
        }
        if !(-180.0..=180.0).contains(&lng) {
            return Err(GeoError::LngOutOfRange(lng));
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(GeoError::LatOutOfRange(lat));
        }
        let (wlng, wlat) = to_wgs84(lng, lat, crs);
        Ok(Location {
            raw: Point::new(lng, lat),
            crs,
            wgs84: Point::new(wlng, wlat),
        })
    }

    /// The point exactly as given, in [`Location::crs`].
    pub fn raw(&self) -> Point<f64> {
        self.raw
    }

    pub fn crs(&self) -> Crs {
        self.crs
    }

    /// The normalised WGS-84 point, used for distances and public output.
    pub fn wgs84(&self) -> Point<f64> {
        self.wgs84
    }
}

// Parameters of the public GCJ-02 algorithm: the Krasovsky 1940 ellipsoid.
const GCJ_A: f64 = 6_378_245.0;
// Written as published, so that it can be compared with other implementations. Extra digits
// beyond f64 precision round to the same value.
#[allow(clippy::excessive_precision)]
const GCJ_EE: f64 = 0.006_693_421_622_965_943_23;
/// BD-09 uses this constant ("x_pi").
const X_PI: f64 = PI * 3000.0 / 180.0;
/// The mean earth radius the `geo` crate uses for [`Haversine`] (IUGG, metres). `bbox_around` uses
/// the same sphere so that its box matches `distance_m` exactly.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// True outside the rough bounding box where GCJ-02 is applied. The standard algorithm leaves
/// such points unshifted, and so do we. The box is coarse on purpose. It includes parts of
/// neighbouring countries, but that is what the published SDKs do.
pub fn out_of_china(lng: f64, lat: f64) -> bool {
    !((72.004..=137.8347).contains(&lng) && (0.8293..=55.8271).contains(&lat))
}

fn transform_lat(x: f64, y: f64) -> f64 {
    let mut ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    ret += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    ret += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    ret += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    ret
}

fn transform_lng(x: f64, y: f64) -> f64 {
    let mut ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    ret += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    ret += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    ret += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    ret
}

/// The GCJ-02 shift (dlng, dlat) in degrees at a WGS-84 point. The bounding box is not checked.
fn gcj02_delta(lng: f64, lat: f64) -> (f64, f64) {
    let dlat = transform_lat(lng - 105.0, lat - 35.0);
    let dlng = transform_lng(lng - 105.0, lat - 35.0);
    let radlat = lat / 180.0 * PI;
    let magic = 1.0 - GCJ_EE * radlat.sin() * radlat.sin();
    let sqrt_magic = magic.sqrt();
    let dlat = (dlat * 180.0) / ((GCJ_A * (1.0 - GCJ_EE)) / (magic * sqrt_magic) * PI);
    let dlng = (dlng * 180.0) / (GCJ_A / sqrt_magic * radlat.cos() * PI);
    (dlng, dlat)
}

/// WGS-84 → GCJ-02, using the standard public algorithm. Points outside China are returned
/// unchanged.
pub fn wgs84_to_gcj02(lng: f64, lat: f64) -> (f64, f64) {
    if out_of_china(lng, lat) {
        return (lng, lat);
    }
    let (dlng, dlat) = gcj02_delta(lng, lat);
    (lng + dlng, lat + dlat)
}

/// Stop iterating when a step moves less than this. 1e-9° is about 0.1 mm.
const INVERSE_TOLERANCE_DEG: f64 = 1e-9;
/// Upper bound on iterations. The shift changes by only a few millimetres per metre of movement,
/// so each step cuts the error about a hundredfold and convergence takes 3–5 steps. The bound
/// only guards against pathological input.
const INVERSE_MAX_ITER: usize = 30;

/// GCJ-02 → WGS-84, using the exact inverse. Points outside China are returned unchanged.
///
/// GCJ-02 has no closed-form inverse. The common one-step shortcut `g − shift(g)` uses the
/// shift at the wrong point. That puts it off by 1–3 m in Tianjin and by up to about 5 m
/// elsewhere in China, which is enough to spoil a tight check-in radius. Here we solve
/// `w + shift(w) = g` by fixed-point iteration, `w ← g − shift(w)`, until a step is under
/// 1e-9°. The shift varies slowly, so the map is a strong contraction: the result is below a
/// millimetre from the true preimage.
///
/// Close to the edge of the bounding box (open sea and foreign territory) the forward
/// transform is itself discontinuous. There, a forward-shifted point can land outside the box,
/// and it then comes back unchanged.
pub fn gcj02_to_wgs84(lng: f64, lat: f64) -> (f64, f64) {
    if out_of_china(lng, lat) {
        return (lng, lat);
    }
    let (mut w_lng, mut w_lat) = (lng, lat);
    for _ in 0..INVERSE_MAX_ITER {
        let (dlng, dlat) = gcj02_delta(w_lng, w_lat);
        let (n_lng, n_lat) = (lng - dlng, lat - dlat);
        let step = (n_lng - w_lng).abs().max((n_lat - w_lat).abs());
        w_lng = n_lng;
        w_lat = n_lat;
        if step < INVERSE_TOLERANCE_DEG {
            break;
        }
    }
    (w_lng, w_lat)
}

/// GCJ-02 → BD-09, using the standard public formula. BD-09 is defined as a further shift of
/// GCJ-02, so this direction is exact by definition.
pub fn gcj02_to_bd09(lng: f64, lat: f64) -> (f64, f64) {
    let z = (lng * lng + lat * lat).sqrt() + 0.00002 * (lat * X_PI).sin();
    let theta = lat.atan2(lng) + 0.000003 * (lng * X_PI).cos();
    (z * theta.cos() + 0.0065, z * theta.sin() + 0.006)
}

/// BD-09 → GCJ-02: the standard public formula, refined so that it exactly inverts
/// [`gcj02_to_bd09`].
///
/// The standard reverse formula evaluates the small sin/cos perturbation at the BD-09 point
/// instead of the GCJ-02 point. That costs up to about 0.2 m on the round trip. One or two
/// fixed-point corrections against the forward formula remove the error. Like the
/// forward formula, this shift applies everywhere, not only inside China.
pub fn bd09_to_gcj02(lng: f64, lat: f64) -> (f64, f64) {
    let x = lng - 0.0065;
    let y = lat - 0.006;
    let z = (x * x + y * y).sqrt() - 0.00002 * (y * X_PI).sin();
    let theta = y.atan2(x) - 0.000003 * (x * X_PI).cos();
    let (mut g_lng, mut g_lat) = (z * theta.cos(), z * theta.sin());
    for _ in 0..INVERSE_MAX_ITER {
        let (b_lng, b_lat) = gcj02_to_bd09(g_lng, g_lat);
        let (e_lng, e_lat) = (b_lng - lng, b_lat - lat);
        g_lng -= e_lng;
        g_lat -= e_lat;
        if e_lng.abs().max(e_lat.abs()) < INVERSE_TOLERANCE_DEG {
            break;
        }
    }
    (g_lng, g_lat)
}

/// Any supported system → WGS-84. BD-09 is converted to GCJ-02 first, then to WGS-84.
pub fn to_wgs84(lng: f64, lat: f64, crs: Crs) -> (f64, f64) {
    match crs {
        Crs::Wgs84 => (lng, lat),
        Crs::Gcj02 => gcj02_to_wgs84(lng, lat),
        Crs::Bd09 => {
            let (g_lng, g_lat) = bd09_to_gcj02(lng, lat);
            gcj02_to_wgs84(g_lng, g_lat)
        }
    }
}

/// Great-circle (haversine) distance in metres between two WGS-84 points (x = lng, y = lat).
/// Over the few hundred metres of a check-in radius, its error against the ellipsoid is far
/// below GPS noise.
pub fn distance_m(a: Point<f64>, b: Point<f64>) -> f64 {
    Haversine::distance(a, b)
}

/// A lng/lat box around a WGS-84 point that contains every point within `radius_m` metres, as
/// measured by [`distance_m`]. Use it as a cheap SQL prefilter (`lng BETWEEN … AND lat BETWEEN
/// …`) before the exact distance check. Returns `(min_lng, min_lat, max_lng, max_lat)`.
///
/// The box is conservative: it is never smaller than the circle, and a small margin absorbs
/// floating-point rounding. A degree of longitude shrinks with `cos(lat)`, so the longitude
/// half-width is the exact tangent-meridian width of the spherical cap, `asin(sin d / cos φ)`.
/// The box falls back to the whole longitude range, -180..=180, in two cases:
/// - the circle reaches a pole, where every longitude is within reach;
/// - the circle crosses the ±180° meridian, because a wrapped box cannot be written as one
///   `BETWEEN`.
///
/// Latitudes are clamped to -90..=90. A negative radius counts as 0. A NaN or infinite radius,
/// or a non-finite centre, gives the whole world, because a prefilter must not drop rows.
pub fn bbox_around(center: Point<f64>, radius_m: f64) -> (f64, f64, f64, f64) {
    const WORLD: (f64, f64, f64, f64) = (-180.0, -90.0, 180.0, 90.0);
    let (lng, lat) = (center.x(), center.y());
    if !lng.is_finite() || !lat.is_finite() || radius_m.is_nan() || radius_m.is_infinite() {
        return WORLD;
    }
    let radius_m = radius_m.max(0.0);
    // Angular radius with a relative margin plus an absolute margin (about 1 mm) for rounding.
    let d = radius_m / EARTH_RADIUS_M * (1.0 + 1e-9) + 1e-10;
    if d >= PI {
        return WORLD;
    }
    let lat_c = lat.clamp(-90.0, 90.0);
    let phi = lat_c.to_radians();
    let d_deg = d.to_degrees();
    let min_lat = (lat_c - d_deg).max(-90.0);
    let max_lat = (lat_c + d_deg).min(90.0);

    // The cap contains a pole when d ≥ 90° − |φ|. Then every longitude is within reach.
    let reaches_pole = d >= PI / 2.0 - phi.abs();
    let half_lng = if reaches_pole {
        None
    } else {
        let s = d.sin() / phi.cos();
        if s >= 1.0 {
            None
        } else {
            Some(s.asin().to_degrees())
        }
    };
    match half_lng {
        Some(h) if lng - h >= -180.0 && lng + h <= 180.0 => (lng - h, min_lat, lng + h, max_lat),
        _ => (-180.0, min_lat, 180.0, max_lat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VECTORS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/gcj02-vectors.json"
    ));

    struct Vector {
        place: String,
        wgs84: (f64, f64),
        gcj02: (f64, f64),
    }

    fn vectors() -> Vec<Vector> {
        let v: serde_json::Value = serde_json::from_str(VECTORS).expect("vectors JSON parses");
        let pair = |x: &serde_json::Value| {
            (
                x[0].as_f64().expect("lng is a number"),
                x[1].as_f64().expect("lat is a number"),
            )
        };
        let list = v["vectors"].as_array().expect("vectors array");
        assert!(!list.is_empty());
        list.iter()
            .map(|e| Vector {
                place: e["place"].as_str().expect("place").to_string(),
                wgs84: pair(&e["wgs84"]),
                gcj02: pair(&e["gcj02"]),
            })
            .collect()
    }

    fn pt((lng, lat): (f64, f64)) -> Point<f64> {
        Point::new(lng, lat)
    }

    /// The one-step approximation most snippets use: subtract the shift evaluated at the
    /// GCJ-02 point. Kept here only to show why we do not use it.
    fn naive_gcj02_to_wgs84(lng: f64, lat: f64) -> (f64, f64) {
        let (g_lng, g_lat) = wgs84_to_gcj02(lng, lat);
        (lng * 2.0 - g_lng, lat * 2.0 - g_lat)
    }

    #[test]
    fn forward_matches_reference_vectors() {
        for v in vectors() {
            let (lng, lat) = wgs84_to_gcj02(v.wgs84.0, v.wgs84.1);
            assert!(
                (lng - v.gcj02.0).abs() < 1e-6 && (lat - v.gcj02.1).abs() < 1e-6,
                "{}: got ({lng}, {lat}), want {:?}",
                v.place,
                v.gcj02
            );
        }
    }

    #[test]
    fn inverse_recovers_reference_vectors_within_a_metre() {
        for v in vectors() {
            let back = gcj02_to_wgs84(v.gcj02.0, v.gcj02.1);
            let err = distance_m(pt(back), pt(v.wgs84));
            assert!(err < 1.0, "{}: inverse off by {err} m", v.place);
            // In practice it is far better than the 1 m requirement.
            assert!(err < 0.01, "{}: inverse off by {err} m", v.place);
        }
    }

    #[test]
    fn tianjin_offset_is_hundreds_of_metres() {
        // Sanity check on the size of the problem this module exists for.
        let w = (117.2009, 39.0842);
        let g = wgs84_to_gcj02(w.0, w.1);
        let d = distance_m(pt(w), pt(g));
        assert!((450.0..700.0).contains(&d), "offset {d} m");
    }

    #[test]
    fn naive_one_step_inverse_is_worse_than_exact() {
        // Shows why the exact inverse is needed: the shortcut is off by a measurable amount,
        // the iteration by essentially nothing.
        let mut worst_naive: f64 = 0.0;
        for v in vectors()
            .iter()
            .filter(|v| !out_of_china(v.wgs84.0, v.wgs84.1))
        {
            let exact = distance_m(pt(gcj02_to_wgs84(v.gcj02.0, v.gcj02.1)), pt(v.wgs84));
            let naive = distance_m(pt(naive_gcj02_to_wgs84(v.gcj02.0, v.gcj02.1)), pt(v.wgs84));
            assert!(
                naive > exact,
                "{}: naive {naive} m, exact {exact} m",
                v.place
            );
            assert!(
                naive > 100.0 * exact.max(1e-4),
                "{}: naive {naive} m",
                v.place
            );
            worst_naive = worst_naive.max(naive);
        }
        // Measured: 1.2 m in Tianjin, 1.6 m in Baodi, 2.1 m in Shanghai.
        assert!(worst_naive > 1.0, "naive worst case only {worst_naive} m");
    }

    #[test]
    fn outside_china_unchanged_both_ways() {
        let places = [
            (139.6917, 35.6895),  // Tokyo
            (-0.1276, 51.5072),   // London
            (151.2093, -33.8688), // Sydney
            (-74.006, 40.7128),   // New York
            (100.0, 60.0),        // north of the box
        ];
        for (lng, lat) in places {
            assert!(out_of_china(lng, lat));
            assert_eq!(wgs84_to_gcj02(lng, lat), (lng, lat));
            assert_eq!(gcj02_to_wgs84(lng, lat), (lng, lat));
            assert_eq!(to_wgs84(lng, lat, Crs::Gcj02), (lng, lat));
        }
        assert!(!out_of_china(117.2, 39.1));
        // The box edges count as inside.
        assert!(!out_of_china(72.004, 0.8293));
        assert!(!out_of_china(137.8347, 55.8271));
        assert!(out_of_china(72.0039, 30.0));
    }

    #[test]
    fn bd09_known_point() {
        // (116.404, 39.915) is the Tiananmen centre point used in Baidu's map API demos
        // (BD-09). Its GCJ-02 equivalent lies roughly 0.0065° west and 0.006° south.
        let (g_lng, g_lat) = bd09_to_gcj02(116.404, 39.915);
        assert!((g_lng - 116.3976).abs() < 1e-3, "{g_lng}");
        assert!((g_lat - 39.9090).abs() < 1e-3, "{g_lat}");
        let (b_lng, b_lat) = gcj02_to_bd09(g_lng, g_lat);
        assert!((b_lng - 116.404).abs() < 1e-9 && (b_lat - 39.915).abs() < 1e-9);
    }

    #[test]
    fn same_place_in_different_systems_normalises_to_the_same_point() {
        for v in vectors() {
            let a = Location::new(v.wgs84.0, v.wgs84.1, Crs::Wgs84).expect("valid");
            let b = Location::new(v.gcj02.0, v.gcj02.1, Crs::Gcj02).expect("valid");
            let d = distance_m(a.wgs84(), b.wgs84());
            assert!(d < 1.0, "{}: {d} m apart", v.place);

            let (bl, bt) = gcj02_to_bd09(v.gcj02.0, v.gcj02.1);
            let c = Location::new(bl, bt, Crs::Bd09).expect("valid");
            let d = distance_m(a.wgs84(), c.wgs84());
            assert!(d < 1.0, "{} via BD-09: {d} m apart", v.place);
            assert_eq!(c.crs(), Crs::Bd09);
            assert_eq!(c.raw(), Point::new(bl, bt));
        }
    }

    #[test]
    fn location_keeps_raw_and_crs() {
        let l = Location::new(117.2071978434, 39.0852059475, Crs::Gcj02).expect("valid");
        assert_eq!(l.raw(), Point::new(117.2071978434, 39.0852059475));
        assert_eq!(l.crs(), Crs::Gcj02);
        assert_ne!(l.raw(), l.wgs84());
        let w = Location::new(117.2009, 39.0842, Crs::Wgs84).expect("valid");
        assert_eq!(w.raw(), w.wgs84());
    }

    #[test]
    fn invalid_coordinates_rejected() {
        assert_eq!(
            Location::new(f64::NAN, 39.0, Crs::Wgs84),
            Err(GeoError::NotFinite)
        );
        assert_eq!(
            Location::new(117.0, f64::NAN, Crs::Gcj02),
            Err(GeoError::NotFinite)
        );
        assert_eq!(
            Location::new(f64::INFINITY, 39.0, Crs::Wgs84),
            Err(GeoError::NotFinite)
        );
        assert_eq!(
            Location::new(117.0, f64::NEG_INFINITY, Crs::Bd09),
            Err(GeoError::NotFinite)
        );
        assert_eq!(
            Location::new(181.0, 39.0, Crs::Wgs84),
            Err(GeoError::LngOutOfRange(181.0))
        );
        assert_eq!(
            Location::new(-181.0, 39.0, Crs::Wgs84),
            Err(GeoError::LngOutOfRange(-181.0))
        );
        assert_eq!(
            Location::new(117.0, -91.0, Crs::Wgs84),
            Err(GeoError::LatOutOfRange(-91.0))
        );
        // Swapped lng/lat, a common input mistake.
        assert_eq!(
            Location::new(39.0, 117.0, Crs::Gcj02),
            Err(GeoError::LatOutOfRange(117.0))
        );
        // Edges are valid.
        assert!(Location::new(180.0, 90.0, Crs::Wgs84).is_ok());
        assert!(Location::new(-180.0, -90.0, Crs::Bd09).is_ok());
        // Messages are readable.
        assert_eq!(
            GeoError::LatOutOfRange(-91.0).to_string(),
            "latitude -91 is outside -90..=90 degrees"
        );
    }

    #[test]
    fn crs_names() {
        for (s, c) in [
            ("wgs84", Crs::Wgs84),
            ("WGS84", Crs::Wgs84),
            ("WGS-84", Crs::Wgs84),
            (" gcj02 ", Crs::Gcj02),
            ("GCJ-02", Crs::Gcj02),
            ("Gcj02", Crs::Gcj02),
            ("bd09", Crs::Bd09),
            ("BD-09", Crs::Bd09),
        ] {
            assert_eq!(s.parse::<Crs>(), Ok(c), "{s}");
        }
        assert_eq!(
            "epsg:3857".parse::<Crs>(),
            Err(GeoError::UnknownCrs("epsg:3857".into()))
        );
        assert!("".parse::<Crs>().is_err());
        for c in [Crs::Wgs84, Crs::Gcj02, Crs::Bd09] {
            let json = serde_json::to_string(&c).expect("serialises");
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<Crs>(&json).expect("deserialises"), c);
            assert_eq!(c.as_str().parse::<Crs>(), Ok(c));
            assert_eq!(c.to_string(), c.as_str());
        }
    }

    #[test]
    fn crs_openapi_schema_lists_the_wire_names() {
        let schema = <Crs as utoipa::PartialSchema>::schema();
        let json = serde_json::to_value(&schema).expect("schema serialises");
        assert_eq!(
            json["enum"],
            serde_json::json!(["wgs84", "gcj02", "bd09"]),
            "{json}"
        );
    }

    #[test]
    fn distance_is_haversine_metres() {
        // One degree of latitude on the IUGG mean sphere is about 111.195 km.
        let d = distance_m(Point::new(117.0, 39.0), Point::new(117.0, 40.0));
        assert!((d - 111_195.0).abs() < 5.0, "{d}");
        assert_eq!(
            distance_m(Point::new(117.0, 39.0), Point::new(117.0, 39.0)),
            0.0
        );
    }

    #[test]
    fn bbox_basic_and_edge_cases() {
        let c = Point::new(117.2, 39.1);
        let (a, b, x, y) = bbox_around(c, 500.0);
        assert!(a < 117.2 && x > 117.2 && b < 39.1 && y > 39.1);
        // Longitude span is wider than latitude span at 39°N (1/cos φ ≈ 1.29).
        let ratio = (x - a) / (y - b);
        assert!(
            (ratio - 1.0 / 39.1f64.to_radians().cos()).abs() < 1e-3,
            "{ratio}"
        );
        // Zero and negative radius: a (nearly) degenerate box around the point.
        let (a, b, x, y) = bbox_around(c, -5.0);
        assert!(a <= 117.2 && x >= 117.2 && b <= 39.1 && y >= 39.1 && x - a < 1e-6);
        // Circle reaching the pole: all longitudes, latitude clamped.
        let (a, _, x, y) = bbox_around(Point::new(10.0, 89.99), 5_000.0);
        assert_eq!((a, x, y), (-180.0, 180.0, 90.0));
        // Crossing the antimeridian: all longitudes rather than a wrapped box.
        let (a, _, x, _) = bbox_around(Point::new(179.999, 0.0), 1_000.0);
        assert_eq!((a, x), (-180.0, 180.0));
        // Garbage radius or centre: the whole world, never an empty filter.
        assert_eq!(bbox_around(c, f64::NAN), (-180.0, -90.0, 180.0, 90.0));
        assert_eq!(bbox_around(c, f64::INFINITY), (-180.0, -90.0, 180.0, 90.0));
        assert_eq!(
            bbox_around(Point::new(f64::NAN, 0.0), 1.0),
            (-180.0, -90.0, 180.0, 90.0)
        );
        assert_eq!(bbox_around(c, 3.0e7), (-180.0, -90.0, 180.0, 90.0));
    }

    // China's bounding box, shrunk a little so that forward-shifted points stay inside it
    // (the shift is well under 0.05°).
    fn china_lng() -> std::ops::Range<f64> {
        72.1..137.7
    }
    fn china_lat() -> std::ops::Range<f64> {
        0.9..55.7
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn gcj02_round_trip(lng in china_lng(), lat in china_lat()) {
            let (g_lng, g_lat) = wgs84_to_gcj02(lng, lat);
            let back = gcj02_to_wgs84(g_lng, g_lat);
            let err = distance_m(Point::new(lng, lat), pt(back));
            prop_assert!(err < 0.5, "({lng}, {lat}) -> {err} m");
            prop_assert!(err < 0.001, "({lng}, {lat}) -> {err} m");
        }

        #[test]
        fn bd09_round_trip(lng in china_lng(), lat in china_lat()) {
            let (b_lng, b_lat) = gcj02_to_bd09(lng, lat);
            let back = bd09_to_gcj02(b_lng, b_lat);
            let err = distance_m(Point::new(lng, lat), pt(back));
            prop_assert!(err < 0.001, "({lng}, {lat}) -> {err} m");
        }

        #[test]
        fn all_systems_normalise_to_the_same_place(lng in china_lng(), lat in china_lat()) {
            let w = Point::new(lng, lat);
            let (g_lng, g_lat) = wgs84_to_gcj02(lng, lat);
            let (b_lng, b_lat) = gcj02_to_bd09(g_lng, g_lat);
            let from_gcj = Location::new(g_lng, g_lat, Crs::Gcj02).map(|l| l.wgs84());
            let from_bd = Location::new(b_lng, b_lat, Crs::Bd09).map(|l| l.wgs84());
            prop_assert!(from_gcj.is_ok() && from_bd.is_ok());
            if let (Ok(a), Ok(b)) = (from_gcj, from_bd) {
                prop_assert!(distance_m(w, a) < 0.5);
                prop_assert!(distance_m(w, b) < 0.5);
            }
        }

        #[test]
        fn inverse_never_panics_and_stays_finite(lng in -180.0..180.0f64, lat in -90.0..90.0f64) {
            let (a, b) = gcj02_to_wgs84(lng, lat);
            prop_assert!(a.is_finite() && b.is_finite());
            let (a, b) = bd09_to_gcj02(lng, lat);
            prop_assert!(a.is_finite() && b.is_finite());
        }

        #[test]
        fn bbox_contains_the_circle(
            lng in -179.0..179.0f64,
            lat in -89.9..89.9f64,
            radius in 0.0..200_000.0f64,
            bearing in 0.0..360.0f64,
        ) {
            use geo::Destination;
            let c = Point::new(lng, lat);
            let (min_lng, min_lat, max_lng, max_lat) = bbox_around(c, radius);
            prop_assert!(min_lng <= max_lng && min_lat <= max_lat);
            // Points exactly on the circle, as `distance_m` measures it: a random bearing plus a
            // sweep, so that the eastmost and westmost points are approached closely.
            let sweep = (0..3600).map(|i| f64::from(i) / 10.0);
            for b in std::iter::once(bearing).chain(sweep) {
                let p = Haversine::destination(c, b, radius);
                // `destination` wraps longitude into -180..180; the box then spans everything.
                let (x, y) = (p.x(), p.y());
                prop_assert!(x >= min_lng && x <= max_lng, "lng {x} not in {min_lng}..{max_lng}");
                prop_assert!(y >= min_lat && y <= max_lat, "lat {y} not in {min_lat}..{max_lat}");
            }
        }

        #[test]
        fn bbox_is_tight_at_mid_latitudes(
            lng in 72.0..138.0f64,
            lat in 1.0..56.0f64,
            radius in 10.0..50_000.0f64,
        ) {
            use geo::Destination;
            // The extreme north and east points of the circle are (almost) on the box edge, so
            // the prefilter is not wastefully loose.
            let c = Point::new(lng, lat);
            let (_, _, max_lng, max_lat) = bbox_around(c, radius);
            let north = Haversine::destination(c, 0.0, radius);
            prop_assert!((max_lat - north.y()).abs() < 1e-7);
            let phi = lat.to_radians();
            let d = radius / EARTH_RADIUS_M;
            // The eastmost point of the cap has longitude offset asin(sin d / cos φ).
            let east_max = (d.sin() / phi.cos()).asin().to_degrees();
            prop_assert!((max_lng - lng - east_max).abs() < 1e-7);
            let due_east = Haversine::destination(c, 90.0, radius);
            prop_assert!(max_lng >= due_east.x());
        }
    }
}
