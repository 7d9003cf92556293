//! Refresh-token rotation, the rule (no I/O): what to do with a presented refresh token.

/// What the store knows about a presented refresh token.
#[derive(Debug, Clone)]
pub struct Presented<'a> {
    /// The device the token is bound to (from login).
    pub device_id: &'a str,
    pub expires_at: i64,
    /// When it was rotated, if it was.
    pub used_at: Option<i64>,
    /// The token or its whole session has been revoked.
    pub revoked: bool,
    /// Its successor exists and is still unused, unrevoked and unexpired.
    pub successor_live: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Live token: mark it used and issue its successor.
    Rotate,
    /// The token was rotated moments ago and the same device asks again (the answer was
    /// lost): answer with the same successor, revoke nothing.
    Retry,
    /// A rotated token presented again (a replay or a stolen copy): revoke the session.
    RevokeReused,
    /// Presented on behalf of a device it is not bound to: revoke the session.
    RevokeWrongDevice,
    /// Unknown to the rule's caller, expired or revoked.
    Invalid,
}

/// `claimed_device` is the `device_id` sent with the refresh, if any; without it a retry
/// cannot be told from a replay. `grace_ms` is the retry window after the rotation.
pub fn decide(
    t: &Presented<'_>,
    claimed_device: Option<&str>,
    now: i64,
    grace_ms: i64,
) -> Decision {
    let same_device = claimed_device.map(|d| d == t.device_id);
    if same_device == Some(false) {
        return Decision::RevokeWrongDevice;
    }
    match t.used_at {
        Some(used)
            if same_device == Some(true)
                && !t.revoked
                && t.successor_live
                && now - used <= grace_ms =>
        {
            Decision::Retry
        }
        Some(_) => Decision::RevokeReused,
        None if t.revoked || t.expires_at <= now => Decision::Invalid,
        None => Decision::Rotate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: i64 = 60_000;

    fn used(at: i64) -> Presented<'static> {
        Presented {
            device_id: "phone",
            expires_at: 10_000_000,
            used_at: Some(at),
            revoked: false,
            successor_live: true,
        }
    }

    #[test]
    fn live_token_rotates() {
        let t = Presented {
            used_at: None,
            ..used(0)
        };
        assert_eq!(decide(&t, None, 1_000, GRACE), Decision::Rotate);
        assert_eq!(decide(&t, Some("phone"), 1_000, GRACE), Decision::Rotate);
        assert_eq!(
            decide(&t, Some("laptop"), 1_000, GRACE),
            Decision::RevokeWrongDevice
        );
        let expired = Presented {
            expires_at: 1_000,
            ..t.clone()
        };
        assert_eq!(decide(&expired, None, 1_000, GRACE), Decision::Invalid);
        let revoked = Presented { revoked: true, ..t };
        assert_eq!(decide(&revoked, None, 1_000, GRACE), Decision::Invalid);
    }

    #[test]
    fn retry_only_within_the_window_from_the_same_device() {
        let t = used(1_000);
        assert_eq!(
            decide(&t, Some("phone"), 1_000 + GRACE, GRACE),
            Decision::Retry
        );
        assert_eq!(
            decide(&t, Some("phone"), 1_001 + GRACE, GRACE),
            Decision::RevokeReused
        );
        // No device given: cannot be told from a replay.
        assert_eq!(decide(&t, None, 2_000, GRACE), Decision::RevokeReused);
        assert_eq!(
            decide(&t, Some("laptop"), 2_000, GRACE),
            Decision::RevokeWrongDevice
        );
        // The successor has been used (the answer did arrive) or the session is gone.
        let moved_on = Presented {
            successor_live: false,
            ..used(1_000)
        };
        assert_eq!(
            decide(&moved_on, Some("phone"), 2_000, GRACE),
            Decision::RevokeReused
        );
        let revoked = Presented {
            revoked: true,
            ..used(1_000)
        };
        assert_eq!(
            decide(&revoked, Some("phone"), 2_000, GRACE),
            Decision::RevokeReused
        );
        // A zero window turns retries off.
        assert_eq!(decide(&t, Some("phone"), 1_001, 0), Decision::RevokeReused);
    }
}
