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
}

/// Why an access token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
}

pub struct SigningKey {
    kid: String,
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
        SigningKey {
            kid,
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
        self.issue_for_device(user_id, role, None, now_ms, ttl_secs)
    }

    pub fn issue_for_device(
        &self,
        user_id: &str,
        role: Role,
        device: Option<&str>,
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
            did: device.map(str::to_string),
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
    fn key_file_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = SigningKey::load_or_generate(dir.path()).unwrap();
        let b = SigningKey::load_or_generate(dir.path()).unwrap();
        assert_eq!(a.kid(), b.kid());
    }
}
