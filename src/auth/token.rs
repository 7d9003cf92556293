//! Access tokens (short-lived HS256 JWTs with a key id) and refresh tokens (opaque random
//! strings, stored only as SHA-256 hashes).

use std::path::Path;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Role;

/// The one algorithm we sign with and accept. Anything else (including `none`) is refused.
pub const ALGORITHM: Algorithm = Algorithm::HS256;
const KEY_FILE: &str = "jwt-signing.key";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// User id.
    pub sub: String,
    pub role: Role,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Issued at in milliseconds, compared with the user's `tokens_not_before`.
    pub iat_ms: i64,
    /// Token type, always `access` (a refresh token is never a JWT).
    pub typ: String,
    /// The device the session was opened on (login `device_id`); sync uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did: Option<String>,
    /// The session (refresh-token family) the token belongs to: checked at every request, so
    /// revoking the session refuses its access tokens at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Why an access token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
}

pub struct SigningKey {
    kid: String,
    /// Derives a refresh token's successor (see [`SigningKey::successor_refresh_token`]);
    /// separate from the signing secret by a domain label.
    refresh_key: [u8; 32],
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn from_secret(secret: &[u8]) -> SigningKey {
        // The key id names the key without revealing it, so a rotated key is told apart.
        let kid = hex::encode(&Sha256::digest(secret)[..8]);
        let refresh_key: [u8; 32] = Sha256::new()
            .chain_update(b"foodcheck refresh-token successor v1\0")
            .chain_update(secret)
            .finalize()
            .into();
        SigningKey {
            kid,
            refresh_key,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// Loads `<data_dir>/jwt-signing.key`, generating 32 random bytes on first start. Never a
    /// built-in default. Creation is exclusive, so two instances starting at once agree.
    pub fn load_or_generate(data_dir: &Path) -> anyhow::Result<SigningKey> {
        let path = data_dir.join(KEY_FILE);
        if !path.exists() {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating data directory {}", data_dir.display()))?;
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(&path) {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(hex::encode(key).as_bytes())?;
                    f.sync_all()?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading signing key {}", path.display()))?;
        let key = hex::decode(text.trim())
            .ok()
            .filter(|k| k.len() >= 32)
            .with_context(|| {
                format!(
                    "{} does not hold a hex key of at least 32 bytes",
                    path.display()
                )
            })?;
        Ok(SigningKey::from_secret(&key))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn issue(
        &self,
        user_id: &str,
        role: Role,
        now_ms: i64,
        ttl_secs: u64,
    ) -> anyhow::Result<String> {
        self.issue_for_session(user_id, role, None, now_ms, ttl_secs)
    }

    /// An access token of the session `(device_id, session_id)`.
    pub fn issue_for_session(
        &self,
        user_id: &str,
        role: Role,
        session: Option<(&str, &str)>,
        now_ms: i64,
        ttl_secs: u64,
    ) -> anyhow::Result<String> {
        let iat = now_ms.div_euclid(1000);
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            iat,
            exp: iat + ttl_secs as i64,
            iat_ms: now_ms,
            typ: "access".into(),
            did: session.map(|(d, _)| d.to_string()),
            sid: session.map(|(_, s)| s.to_string()),
        };
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(self.kid.clone());
        encode(&header, &claims, &self.encoding).context("signing access token")
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        // Check the header first: a token for another key id or algorithm is invalid outright.
        let header = decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != ALGORITHM || header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(TokenError::Invalid);
        }
        let mut validation = Validation::new(ALGORITHM);
        validation.algorithms = vec![ALGORITHM];
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        match decode::<Claims>(token, &self.decoding, &validation) {
            Ok(data) if data.claims.typ == "access" => Ok(data.claims),
            Ok(_) => Err(TokenError::Invalid),
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Err(TokenError::Expired),
                _ => Err(TokenError::Invalid),
            },
        }
    }
}

impl SigningKey {
    /// The refresh token that replaces `presented` when it is rotated: HMAC-SHA256 under a
    /// server key, so a retry of the same token (its response was lost) gets the very same
    /// successor back, and the family stays one chain.
    pub fn successor_refresh_token(&self, presented: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac_sha256(&self.refresh_key, presented.as_bytes()))
    }
}

/// HMAC-SHA256 (RFC 2104) over sha2.
fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// A new opaque refresh token: 256 random bits, URL-safe base64.
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Refresh tokens are stored as SHA-256 hex: a database leak does not leak usable tokens, and
/// 256 random bits need no slow hash.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_secret(b"0123456789abcdef0123456789abcdef")
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    #[test]
    fn round_trip() {
        let k = key();
        let t = k.issue("u1", Role::Inspector, now(), 900).unwrap();
        let c = k.verify(&t).unwrap();
        assert_eq!(c.sub, "u1");
        assert_eq!(c.role, Role::Inspector);
    }

    #[test]
    fn expired() {
        let k = key();
        let t = k.issue("u1", Role::Admin, now() - 3_600_000, 60).unwrap();
        assert_eq!(k.verify(&t), Err(TokenError::Expired));
    }

    #[test]
    fn other_key_is_invalid() {
        let t = key().issue("u1", Role::Admin, now(), 60).unwrap();
        let other = SigningKey::from_secret(b"another-secret-another-secret-xx");
        assert_eq!(other.verify(&t), Err(TokenError::Invalid));
    }

    #[test]
    fn alg_none_is_invalid() {
        let k = key();
        let header = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
            k.kid()
        ));
        let claims = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"u1","role":"admin","iat":{0},"exp":{1},"iat_ms":0,"typ":"access"}}"#,
            now() / 1000,
            now() / 1000 + 600
        ));
        assert_eq!(
            k.verify(&format!("{header}.{claims}.")),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let a = new_refresh_token();
        let b = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(hash_refresh_token(&a).len(), 64);
        assert_ne!(hash_refresh_token(&a), a);
    }

    #[test]
    fn hmac_matches_a_reference_implementation() {
        // Key 32 × 0x0b, "Hi There"; expected value from Python's hmac module.
        let mac = hmac_sha256(&[0x0b; 32], b"Hi There");
        assert_eq!(
            hex::encode(mac),
            "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"
        );
    }

    #[test]
    fn successor_is_stable_per_token_and_key() {
        let k = key();
        let t = new_refresh_token();
        assert_eq!(k.successor_refresh_token(&t), k.successor_refresh_token(&t));
        assert_ne!(k.successor_refresh_token(&t), t);
        let other = SigningKey::from_secret(b"another-secret-another-secret-xx");
        assert_ne!(
            other.successor_refresh_token(&t),
            k.successor_refresh_token(&t)
        );
    }

    #[test]
    fn key_file_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = SigningKey::load_or_generate(dir.path()).unwrap();
        let b = SigningKey::load_or_generate(dir.path()).unwrap();
        assert_eq!(a.kid(), b.kid());
    }
}
