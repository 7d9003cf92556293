//! Signed checkpoints: a C2SP `tlog-checkpoint` body (origin, tree size, base64 root hash,
//! and a `time` extension line) signed as a C2SP `signed-note` with Ed25519. The note text
//! is what gets published; anyone holding the verifier key can check it without us.
//!
//! Key id = first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key); verifier key string =
//! `name+<8 hex digits of key id>+<base64(0x01 ‖ public key)>`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signer, Verifier};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// The signature algorithm byte of Ed25519 in signed notes.
const ALG_ED25519: u8 = 0x01;

/// The key file generated in the data directory when no explicit path is configured.
pub const KEY_FILE: &str = "audit-checkpoint-ed25519.key";

/// One checkpoint: the log's state at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log (the first line); also the signing key's name.
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// When it was signed, Unix milliseconds (the `time` extension line).
    pub time_ms: i64,
}

impl Checkpoint {
    /// The checkpoint body: four lines, each ending in a newline.
    pub fn body(&self) -> String {
        let time = crate::clock::rfc3339(self.time_ms);
        format!(
            "{}\n{}\n{}\ntime {time}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a checkpoint body (the text of a verified note).
    pub fn parse(body: &str) -> Result<Checkpoint, String> {
        let body = body
            .strip_suffix('\n')
            .ok_or("a checkpoint body ends with a newline")?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or("no origin line")?;
        let size: u64 = lines
            .next()
            .and_then(|l| {
                // Decimal without leading zeros (but "0" itself).
                (l == "0" || (!l.starts_with('0') && l.bytes().all(|b| b.is_ascii_digit())))
                    .then(|| l.parse().ok())
                    .flatten()
            })
            .ok_or("the second line is not a tree size")?;
        let root: Hash = lines
            .next()
            .and_then(|l| B64.decode(l).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or("the third line is not a base64 SHA-256 root hash")?;
        let mut time_ms = None;
        for l in lines {
            if l.is_empty() {
                return Err("empty line in the checkpoint body".into());
            }
            if let Some(t) = l.strip_prefix("time ") {
                let t = chrono::DateTime::parse_from_rfc3339(t)
                    .map_err(|e| format!("bad time line: {e}"))?;
                time_ms = Some(t.timestamp_millis());
            }
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            time_ms: time_ms.ok_or("no time line")?,
        })
    }
}

fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0A, ALG_ED25519]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// A key name is one "word": no spaces, no `+`, not empty.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c == '\u{2014}')
    {
        return Err(format!(
            "{name:?} cannot name a note key (no spaces, `+` or em dashes)"
        ));
    }
    Ok(())
}

/// The bureau's checkpoint signing key.
pub struct NoteSigner {
    name: String,
    key: ed25519_dalek::SigningKey,
    id: [u8; 4],
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl NoteSigner {
    pub fn from_seed(name: &str, seed: [u8; 32]) -> anyhow::Result<NoteSigner> {
        check_name(name).map_err(anyhow::Error::msg)?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(NoteSigner {
            name: name.to_owned(),
            key,
            id,
        })
    }

    /// Loads the key from `explicit` (which must exist: a configured key is never replaced
    /// silently), or from `<data_dir>/audit-checkpoint-ed25519.key`, generating it (mode 0600)
    /// on first start. The file holds the 32-byte seed in hex.
    pub fn load_or_generate(
        name: &str,
        data_dir: &Path,
        explicit: Option<&Path>,
    ) -> anyhow::Result<NoteSigner> {
        let path: PathBuf = match explicit {
            Some(p) => {
                if !p.exists() {
                    anyhow::bail!(
                        "audit_signing_key_file {} does not exist (generate one with \
                         `foodcheck audit key --generate {}`)",
                        p.display(),
                        p.display()
                    );
                }
                p.to_path_buf()
            }
            None => {
                let p = data_dir.join(KEY_FILE);
                if !p.exists() {
                    std::fs::create_dir_all(data_dir).with_context(|| {
                        format!("creating data directory {}", data_dir.display())
                    })?;
                    generate_key_file(&p)?;
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the audit signing key {}", path.display()))?;
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|k| k.try_into().ok())
            .with_context(|| {
                format!(
                    "{} does not hold a 32-byte hex Ed25519 seed",
                    path.display()
                )
            })?;
        NoteSigner::from_seed(name, seed)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `name+hexkeyid+base64(0x01 ‖ public key)`: what auditors need to verify checkpoints.
    pub fn verifier_key(&self) -> String {
        let mut k = vec![ALG_ED25519];
        k.extend_from_slice(self.key.verifying_key().as_bytes());
        format!("{}+{}+{}", self.name, hex::encode(self.id), B64.encode(k))
    }

    /// The signed note of `text` (which must end in a newline).
    pub fn sign(&self, text: &str) -> String {
        debug_assert!(text.ends_with('\n'));
        let sig = self.key.sign(text.as_bytes());
        let mut blob = self.id.to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        format!("{text}\n\u{2014} {} {}\n", self.name, B64.encode(blob))
    }
}

/// Writes a fresh random seed (hex) to `path`, readable by its owner only; an existing file
/// is kept (two instances starting at once agree on the first one written).
pub fn generate_key_file(path: &Path) -> anyhow::Result<()> {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(hex::encode(seed).as_bytes())?;
            f.sync_all()?;
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// A verifier key, parsed from its string.
#[derive(Debug, Clone)]
pub struct NoteVerifier {
    pub name: String,
    id: [u8; 4],
    key: ed25519_dalek::VerifyingKey,
}

impl NoteVerifier {
    pub fn parse(vkey: &str) -> Result<NoteVerifier, String> {
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("a verifier key is name+keyid+key".into());
        };
        check_name(name)?;
        let id: [u8; 4] = hex::decode(id)
            .ok()
            .filter(|_| id.len() == 8)
            .and_then(|b| b.try_into().ok())
            .ok_or("the key id is not 8 hex digits")?;
        let key = B64.decode(key).map_err(|_| "the key is not base64")?;
        let Some((&ALG_ED25519, public)) = key.split_first() else {
            return Err("not an Ed25519 verifier key".into());
        };
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| "an Ed25519 public key has 32 bytes")?;
        if key_id(name, &public) != id {
            return Err("the key id does not match the name and key".into());
        }
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public)
            .map_err(|_| "not a valid Ed25519 public key")?;
        Ok(NoteVerifier {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// The text of `note` when one of its signatures is this key's and verifies.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, String> {
        let split = note
            .rfind("\n\n")
            .ok_or("not a signed note: no blank line before the signatures")?;
        let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
        if !sigs.ends_with('\n') {
            return Err("a signed note ends with a newline".into());
        }
        let mut seen_name = false;
        for line in sigs[..sigs.len() - 1].split('\n') {
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or("a signature line starts with an em dash and a space")?;
            let (name, blob) = rest
                .split_once(' ')
                .ok_or("a signature line is name and signature")?;
            if name != self.name {
                continue;
            }
            seen_name = true;
            let blob = B64.decode(blob).map_err(|_| "a signature is not base64")?;
            if blob.len() != 4 + 64 || blob[..4] != self.id {
                continue;
            }
            let sig = ed25519_dalek::Signature::from_slice(&blob[4..])
                .map_err(|_| "malformed signature")?;
            if self.key.verify(text.as_bytes(), &sig).is_ok() {
                return Ok(text);
            }
            return Err(format!("the signature of {} does not verify", self.name));
        }
        Err(if seen_name {
            format!("no signature by this key of {} (another key id)", self.name)
        } else {
            format!("the note is not signed by {}", self.name)
        })
    }

    /// A verified checkpoint from a signed note; its origin must be the key's name.
    pub fn open_checkpoint(&self, note: &str) -> Result<Checkpoint, String> {
        let cp = Checkpoint::parse(self.open(note)?)?;
        if cp.origin != self.name {
            return Err(format!(
                "the checkpoint's origin {:?} is not the key's name {:?}",
                cp.origin, self.name
            ));
        }
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> NoteSigner {
        NoteSigner::from_seed("example.gov.cn/audit", [7u8; 32]).unwrap()
    }

    #[test]
    fn signs_and_verifies_a_checkpoint() {
        let s = signer();
        let cp = Checkpoint {
            origin: s.name().into(),
            size: 42,
            root: [9u8; 32],
            time_ms: 1_764_000_000_123,
        };
        let note = s.sign(&cp.body());
        assert!(note.starts_with("example.gov.cn/audit\n42\n"));
        assert!(note.contains("\ntime 2025-11-24T"));
        assert!(note.contains("\n\n\u{2014} example.gov.cn/audit "));
        let v = NoteVerifier::parse(&s.verifier_key()).unwrap();
        assert_eq!(v.open_checkpoint(&note).unwrap(), cp);
        // Another key of the same name fails, so does any edit of the text or the signature.
        let other = NoteSigner::from_seed("example.gov.cn/audit", [8u8; 32]).unwrap();
        let v2 = NoteVerifier::parse(&other.verifier_key()).unwrap();
        assert!(v2.open(&note).is_err());
        let edited = note.replacen("\n42\n", "\n43\n", 1);
        assert!(v.open(&edited).is_err());
        let mut sig_edit = note.clone().into_bytes();
        let n = sig_edit.len();
        sig_edit[n - 3] = if sig_edit[n - 3] == b'A' { b'B' } else { b'A' };
        assert!(v.open(&String::from_utf8(sig_edit).unwrap()).is_err());
    }

    #[test]
    fn verifier_key_format() {
        let k = signer().verifier_key();
        let parts: Vec<_> = k.split('+').collect();
        assert_eq!(parts[0], "example.gov.cn/audit");
        assert_eq!(parts[1].len(), 8);
        assert!(NoteVerifier::parse(&k.replacen(parts[1], "00000000", 1)).is_err());
        assert!(NoteSigner::from_seed("has space", [1; 32]).is_err());
    }

    #[test]
    fn key_file_is_generated_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = NoteSigner::load_or_generate("o", dir.path(), None).unwrap();
        let b = NoteSigner::load_or_generate("o", dir.path(), None).unwrap();
        assert_eq!(a.verifier_key(), b.verifier_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            NoteSigner::load_or_generate("o", dir.path(), Some(&dir.path().join("nope"))).is_err()
        );
    }
}
