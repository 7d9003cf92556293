//! Review flags for inspection photos: taken too far from the establishment, or outside the
//! inspection's time window.
//!
//! The flags only draw a reviewer's attention; they never block an upload. GPS is noisy
//! indoors, phone clocks drift, and an inspector may photograph a supplier's van across the
//! street, so a flagged photo can be entirely honest.
//!
//! Coordinate systems matter here: EXIF GPS is WGS-84, but the inspection's own position often
//! comes from a Chinese map SDK in GCJ-02 or BD-09, about 500–600 m off in Tianjin. Every point
//! is converted to WGS-84 ([`crate::geo::to_wgs84`]) before measuring, so the same real place
//! in two systems is never flagged.

use crate::geo::{distance_m, Crs, Location};

/// Thresholds for [`flags`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeofenceConfig {
    /// A photo farther than this from the establishment (metres, WGS-84 great circle) is
    /// flagged [`Flag::OutsideRadius`].
    pub radius_m: f64,
    /// Slack on each side of the inspection window, in milliseconds, for clock drift and for
    /// photos taken just before the inspection was started in the app.
    pub time_tolerance_ms: i64,
}

impl Default for GeofenceConfig {
    /// 300 m and 30 minutes.
    fn default() -> Self {
        GeofenceConfig {
            radius_m: 300.0,
            time_tolerance_ms: 30 * 60 * 1000,
        }
    }
}

/// Something a reviewer should look at. Serialised in `snake_case`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// The photo's position is farther than [`GeofenceConfig::radius_m`] from the
    /// establishment.
    OutsideRadius,
    /// The capture time is before the inspection's start or after its finish, beyond
    /// [`GeofenceConfig::time_tolerance_ms`].
    CapturedOutsideInspection,
    /// The distance could not be checked: the photo has no usable EXIF GPS and the inspection
    /// has no position, or the establishment has no registered location.
    NoLocation,
}

/// Computes the review flags for one photo, in the order `OutsideRadius`/`NoLocation`, then
/// `CapturedOutsideInspection`. An empty vector means nothing to look at.
///
/// - `photo_gps`: the photo's EXIF GPS `(lng, lat)`, WGS-84, if any.
/// - `inspection_point`: the inspection's `(lng, lat, crs)` as the app reported it, if any.
/// - `establishment_wgs84`: the establishment's normalised WGS-84 `(lng, lat)`, if registered.
/// - `captured_at_ms`: the photo's capture time (Unix ms), if known.
/// - `window`: the inspection's `(start, finish)` in Unix ms; `finish` is `None` while the
///   inspection is still open, and then only the start is checked.
///
/// The photo's own GPS is used first, because it says where *this photo* was taken; otherwise
/// the inspection's position, converted to WGS-84. Invalid coordinates (NaN, out of range,
/// and the 0/0 "no fix" point for photo GPS) count as absent. An unknown capture time or
/// window gives no time flag.
pub fn flags(
    photo_gps: Option<(f64, f64)>,
    inspection_point: Option<(f64, f64, Crs)>,
    establishment_wgs84: Option<(f64, f64)>,
    captured_at_ms: Option<i64>,
    window: Option<(i64, Option<i64>)>,
    cfg: &GeofenceConfig,
) -> Vec<Flag> {
    let mut out = Vec::new();

    let photo = photo_gps
        .filter(|&(lng, lat)| !(lng == 0.0 && lat == 0.0))
        .and_then(|(lng, lat)| Location::new(lng, lat, Crs::Wgs84).ok());
    let position = photo
        .or_else(|| inspection_point.and_then(|(lng, lat, crs)| Location::new(lng, lat, crs).ok()));
    let establishment =
        establishment_wgs84.and_then(|(lng, lat)| Location::new(lng, lat, Crs::Wgs84).ok());

    match (position, establishment) {
        (Some(p), Some(e)) => {
            if distance_m(p.wgs84(), e.wgs84()) > cfg.radius_m {
                out.push(Flag::OutsideRadius);
            }
        }
        _ => out.push(Flag::NoLocation),
    }

    if let (Some(t), Some((start, finish))) = (captured_at_ms, window) {
        let tol = cfg.time_tolerance_ms.max(0);
        let too_early = t < start.saturating_sub(tol);
        let too_late = finish.is_some_and(|f| t > f.saturating_add(tol));
        if too_early || too_late {
            out.push(Flag::CapturedOutsideInspection);
        }
    }

    out
}

/// The same rule for the inspection's own position (as the app reported it, in its `crs`):
/// [`Flag::OutsideRadius`] when it is farther than the radius from the establishment,
/// [`Flag::NoLocation`] when either point is missing or invalid. No time flag: the inspection
/// defines the window.
pub fn inspection_flags(
    inspection_point: Option<(f64, f64, Crs)>,
    establishment_wgs84: Option<(f64, f64)>,
    cfg: &GeofenceConfig,
) -> Vec<Flag> {
    flags(None, inspection_point, establishment_wgs84, None, None, cfg)
}

impl Flag {
    /// The wire name (the serde form).
    pub fn as_str(&self) -> &'static str {
        match self {
            Flag::OutsideRadius => "outside_radius",
            Flag::CapturedOutsideInspection => "captured_outside_inspection",
            Flag::NoLocation => "no_location",
        }
    }
}

/// The inspection's `server_flags` JSON with its geofence flags replaced by `geofence`: the
/// other flags (e.g. `declared_result_differs`, set at submission) are kept, in their order.
/// Unreadable stored JSON is replaced rather than kept.
pub fn merge_server_flags(existing: Option<&str>, geofence: &[Flag]) -> String {
    let ours = [
        Flag::OutsideRadius,
        Flag::CapturedOutsideInspection,
        Flag::NoLocation,
    ];
    let mut out: Vec<String> = existing
        .and_then(|s| serde_json::from_str::<Vec<String>>(s).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|f| !ours.iter().any(|o| o.as_str() == f))
        .collect();
    out.extend(geofence.iter().map(|f| f.as_str().to_string()));
    serde_json::to_string(&out).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::{gcj02_to_bd09, wgs84_to_gcj02};
    use geo_types::Point;
    use proptest::prelude::*;

    /// A restaurant in Heping District, Tianjin, WGS-84.
    const SHOP: (f64, f64) = (117.2009, 39.0842);
    const MIN: i64 = 60 * 1000;
    const START: i64 = 1_714_530_600_000; // 2024-05-01 10:30 +08:00
    const FINISH: i64 = START + 90 * MIN;

    fn cfg() -> GeofenceConfig {
        GeofenceConfig::default()
    }

    /// The point `metres` due north of `p` (a degree of latitude is ~111.2 km).
    fn north_of(p: (f64, f64), metres: f64) -> (f64, f64) {
        (p.0, p.1 + metres / 111_195.0)
    }

    fn loc_flags(photo: Option<(f64, f64)>, insp: Option<(f64, f64, Crs)>) -> Vec<Flag> {
        flags(photo, insp, Some(SHOP), None, None, &cfg())
    }

    #[test]
    fn defaults_are_300_m_and_30_min() {
        assert_eq!(cfg().radius_m, 300.0);
        assert_eq!(cfg().time_tolerance_ms, 30 * MIN);
    }

    #[test]
    fn same_place_in_gcj02_is_not_flagged() {
        let (g_lng, g_lat) = wgs84_to_gcj02(SHOP.0, SHOP.1);
        // The test means something: read naively as WGS-84, the GCJ-02 point is far away.
        let naive = distance_m(Point::new(g_lng, g_lat), Point::new(SHOP.0, SHOP.1));
        assert!(naive > 450.0, "GCJ-02 offset only {naive} m");
        assert_eq!(
            loc_flags(None, Some((g_lng, g_lat, Crs::Wgs84))),
            vec![Flag::OutsideRadius]
        );
        // Given with its real system, it is the same place.
        assert!(loc_flags(None, Some((g_lng, g_lat, Crs::Gcj02))).is_empty());
    }

    #[test]
    fn same_place_in_bd09_is_not_flagged() {
        let (g_lng, g_lat) = wgs84_to_gcj02(SHOP.0, SHOP.1);
        let (b_lng, b_lat) = gcj02_to_bd09(g_lng, g_lat);
        assert!(loc_flags(None, Some((b_lng, b_lat, Crs::Bd09))).is_empty());
    }

    #[test]
    fn six_hundred_metres_away_is_flagged() {
        let far = north_of(SHOP, 600.0);
        assert_eq!(loc_flags(Some(far), None), vec![Flag::OutsideRadius]);
        let (g_lng, g_lat) = wgs84_to_gcj02(far.0, far.1);
        assert_eq!(
            loc_flags(None, Some((g_lng, g_lat, Crs::Gcj02))),
            vec![Flag::OutsideRadius]
        );
    }

    #[test]
    fn radius_boundary_and_config() {
        assert!(loc_flags(Some(north_of(SHOP, 250.0)), None).is_empty());
        assert_eq!(
            loc_flags(Some(north_of(SHOP, 350.0)), None),
            vec![Flag::OutsideRadius]
        );
        let wide = GeofenceConfig {
            radius_m: 1000.0,
            ..cfg()
        };
        let f = flags(
            Some(north_of(SHOP, 600.0)),
            None,
            Some(SHOP),
            None,
            None,
            &wide,
        );
        assert!(f.is_empty());
    }

    #[test]
    fn photo_gps_takes_precedence_over_inspection_point() {
        let (g_lng, g_lat) = wgs84_to_gcj02(SHOP.0, SHOP.1);
        let far = north_of(SHOP, 600.0);
        // Photo taken far away although the inspection was checked in on site.
        assert_eq!(
            loc_flags(Some(far), Some((g_lng, g_lat, Crs::Gcj02))),
            vec![Flag::OutsideRadius]
        );
        // Photo on site, inspection position far off (e.g. a bad fix): not flagged.
        assert!(loc_flags(Some(SHOP), Some((far.0, far.1, Crs::Wgs84))).is_empty());
    }

    #[test]
    fn invalid_photo_gps_falls_back_to_inspection_point() {
        let (g_lng, g_lat) = wgs84_to_gcj02(SHOP.0, SHOP.1);
        let insp = Some((g_lng, g_lat, Crs::Gcj02));
        for bad in [(f64::NAN, 39.0), (117.2, 95.0), (0.0, 0.0), (200.0, 39.0)] {
            assert!(loc_flags(Some(bad), insp).is_empty(), "{bad:?}");
            assert_eq!(
                loc_flags(Some(bad), None),
                vec![Flag::NoLocation],
                "{bad:?}"
            );
        }
    }

    #[test]
    fn no_location_at_all() {
        assert_eq!(loc_flags(None, None), vec![Flag::NoLocation]);
        // Nothing to compare with when the establishment has no registered location.
        assert_eq!(
            flags(Some(SHOP), None, None, None, None, &cfg()),
            vec![Flag::NoLocation]
        );
        assert_eq!(
            flags(Some(SHOP), None, Some((f64::NAN, 1.0)), None, None, &cfg()),
            vec![Flag::NoLocation]
        );
    }

    fn time_flags(t: Option<i64>, window: Option<(i64, Option<i64>)>) -> Vec<Flag> {
        flags(Some(SHOP), None, Some(SHOP), t, window, &cfg())
    }

    #[test]
    fn capture_time_inside_window_and_tolerance() {
        let w = Some((START, Some(FINISH)));
        for t in [
            START,
            START + 45 * MIN,
            FINISH,
            START - 29 * MIN,
            FINISH + 29 * MIN,
        ] {
            assert!(time_flags(Some(t), w).is_empty(), "t = {t}");
        }
        // Exactly at the tolerance is still inside.
        assert!(time_flags(Some(START - 30 * MIN), w).is_empty());
        assert!(time_flags(Some(FINISH + 30 * MIN), w).is_empty());
    }

    #[test]
    fn capture_time_outside_window_is_flagged() {
        let w = Some((START, Some(FINISH)));
        for t in [
            START - 31 * MIN,
            FINISH + 31 * MIN,
            START - 24 * 60 * MIN,
            0,
        ] {
            assert_eq!(
                time_flags(Some(t), w),
                vec![Flag::CapturedOutsideInspection],
                "t = {t}"
            );
        }
        let strict = GeofenceConfig {
            time_tolerance_ms: 0,
            ..cfg()
        };
        assert_eq!(
            flags(None, None, None, Some(START - 1), w, &strict),
            vec![Flag::NoLocation, Flag::CapturedOutsideInspection]
        );
    }

    #[test]
    fn open_inspection_checks_only_the_start() {
        let w = Some((START, None));
        assert!(time_flags(Some(START + 10 * 60 * MIN), w).is_empty());
        assert_eq!(
            time_flags(Some(START - 31 * MIN), w),
            vec![Flag::CapturedOutsideInspection]
        );
    }

    #[test]
    fn unknown_time_or_window_gives_no_time_flag() {
        assert!(time_flags(None, Some((START, Some(FINISH)))).is_empty());
        assert!(time_flags(Some(0), None).is_empty());
        // Extreme values do not overflow.
        assert!(time_flags(Some(i64::MIN), Some((i64::MIN, Some(i64::MAX)))).is_empty());
        assert_eq!(
            time_flags(Some(i64::MAX), Some((i64::MIN, Some(0)))),
            vec![Flag::CapturedOutsideInspection]
        );
    }

    #[test]
    fn flags_serialise_in_snake_case() {
        let json = serde_json::to_string(&vec![
            Flag::OutsideRadius,
            Flag::CapturedOutsideInspection,
            Flag::NoLocation,
        ])
        .expect("serialises");
        assert_eq!(
            json,
            r#"["outside_radius","captured_outside_inspection","no_location"]"#
        );
    }

    #[test]
    fn inspection_five_km_away_is_flagged_and_on_site_is_not() {
        let far = north_of(SHOP, 5_000.0);
        let (g_lng, g_lat) = wgs84_to_gcj02(far.0, far.1);
        assert_eq!(
            inspection_flags(Some((g_lng, g_lat, Crs::Gcj02)), Some(SHOP), &cfg()),
            vec![Flag::OutsideRadius]
        );
        // On site, reported by a Chinese map SDK: the same place, not flagged.
        let (s_lng, s_lat) = wgs84_to_gcj02(SHOP.0, SHOP.1);
        assert!(inspection_flags(Some((s_lng, s_lat, Crs::Gcj02)), Some(SHOP), &cfg()).is_empty());
        assert_eq!(
            inspection_flags(None, Some(SHOP), &cfg()),
            vec![Flag::NoLocation]
        );
        assert_eq!(
            inspection_flags(Some((SHOP.0, SHOP.1, Crs::Wgs84)), None, &cfg()),
            vec![Flag::NoLocation]
        );
    }

    #[test]
    fn server_flags_merge_keeps_other_flags() {
        assert_eq!(merge_server_flags(None, &[]), "[]");
        assert_eq!(
            merge_server_flags(None, &[Flag::OutsideRadius]),
            r#"["outside_radius"]"#
        );
        assert_eq!(
            merge_server_flags(
                Some(r#"["declared_result_differs","no_location"]"#),
                &[Flag::OutsideRadius]
            ),
            r#"["declared_result_differs","outside_radius"]"#
        );
        // Moved back on site: the geofence flag goes, the other stays.
        assert_eq!(
            merge_server_flags(Some(r#"["outside_radius","declared_result_differs"]"#), &[]),
            r#"["declared_result_differs"]"#
        );
        assert_eq!(
            merge_server_flags(Some("not json"), &[Flag::NoLocation]),
            r#"["no_location"]"#
        );
        for f in [
            Flag::OutsideRadius,
            Flag::CapturedOutsideInspection,
            Flag::NoLocation,
        ] {
            assert_eq!(
                serde_json::to_string(&f).unwrap(),
                format!("\"{}\"", f.as_str())
            );
        }
    }

    proptest! {
        /// Anywhere in mainland China, a place given in GCJ-02 or BD-09 is never flagged
        /// against the same place in WGS-84.
        #[test]
        fn same_place_in_any_crs_never_flagged(lng in 75.0f64..134.0, lat in 18.0f64..53.0) {
            let (g_lng, g_lat) = wgs84_to_gcj02(lng, lat);
            let (b_lng, b_lat) = gcj02_to_bd09(g_lng, g_lat);
            for point in [(lng, lat, Crs::Wgs84), (g_lng, g_lat, Crs::Gcj02), (b_lng, b_lat, Crs::Bd09)] {
                let f = flags(None, Some(point), Some((lng, lat)), None, None, &GeofenceConfig::default());
                prop_assert!(f.is_empty(), "{point:?}: {f:?}");
            }
        }

        /// Never panics, whatever the input.
        #[test]
        fn total_on_any_input(
            p in proptest::option::of((any::<f64>(), any::<f64>())),
            e in proptest::option::of((any::<f64>(), any::<f64>())),
            t in proptest::option::of(any::<i64>()),
            w in proptest::option::of((any::<i64>(), proptest::option::of(any::<i64>()))),
            r in any::<f64>(),
            tol in any::<i64>(),
        ) {
            let cfg = GeofenceConfig { radius_m: r, time_tolerance_ms: tol };
            let _ = flags(p, p.map(|(a, b)| (a, b, Crs::Bd09)), e, t, w, &cfg);
        }
    }
}
