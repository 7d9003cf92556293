//! The hash chain: each sequenced entry's hash commits to every stored field of the entry,
//! its position (`seq`) and the previous entry's hash. The entry hash is also the entry's
//! Merkle leaf data, so the tree and the chain commit to the same bytes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// The previous hash of the first entry (seq 0).
pub const GENESIS: Hash = [0u8; 32];

/// Tags the encoding, so a future layout can never collide with this one.
const DOMAIN: &[u8] = b"foodcheck-audit-entry-v1\n";

/// A sequenced entry as stored: every column of `audit_events` the hash covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entry {
    /// Position in the log, from 0 (the Merkle leaf index).
    pub seq: u64,
    /// The row id (order of writing; seq is the order of integration).
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub device_id: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub record_type: String,
    pub record_id: String,
    /// The stored JSON text of the changes (`[{field, before, after}]`), byte for byte.
    pub changes: String,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

impl Entry {
    /// The canonical bytes: fixed-width integers and length-prefixed strings (absent and
    /// empty differ), so no two different entries encode alike.
    pub fn canonical_bytes(&self, prev: &Hash) -> Vec<u8> {
        let mut out = Vec::with_capacity(DOMAIN.len() + 120 + self.changes.len());
        out.extend_from_slice(DOMAIN);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(prev);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.at.to_be_bytes());
        put_opt(&mut out, self.actor_id.as_deref());
        put_opt(&mut out, self.actor_role.as_deref());
        put_opt(&mut out, self.device_id.as_deref());
        put_opt(&mut out, self.request_id.as_deref());
        put_str(&mut out, &self.action);
        put_str(&mut out, &self.record_type);
        put_str(&mut out, &self.record_id);
        put_str(&mut out, &self.changes);
        out
    }

    /// SHA-256 of the canonical bytes.
    pub fn hash(&self, prev: &Hash) -> Hash {
        Sha256::digest(self.canonical_bytes(prev)).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            seq: 3,
            id: 17,
            at: 1_700_000_000_000,
            actor_id: Some("u1".into()),
            actor_role: Some("admin".into()),
            device_id: None,
            request_id: Some("r".into()),
            action: "user_created".into(),
            record_type: "user".into(),
            record_id: "u2".into(),
            changes: "[]".into(),
        }
    }

    #[test]
    fn every_field_and_the_previous_hash_count() {
        let e = entry();
        let h = e.hash(&GENESIS);
        assert_ne!(h, e.hash(&[1u8; 32]));
        let variants = [
            Entry {
                seq: 4,
                ..e.clone()
            },
            Entry {
                id: 18,
                ..e.clone()
            },
            Entry { at: 1, ..e.clone() },
            Entry {
                actor_id: None,
                ..e.clone()
            },
            Entry {
                actor_role: Some("reviewer".into()),
                ..e.clone()
            },
            Entry {
                device_id: Some(String::new()),
                ..e.clone()
            },
            Entry {
                request_id: None,
                ..e.clone()
            },
            Entry {
                action: "user_disabled".into(),
                ..e.clone()
            },
            Entry {
                record_type: "plan".into(),
                ..e.clone()
            },
            Entry {
                record_id: "u3".into(),
                ..e.clone()
            },
            Entry {
                changes: "[ ]".into(),
                ..e.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.hash(&GENESIS), h, "{v:?}");
        }
    }

    #[test]
    fn the_encoding_is_unambiguous() {
        // Moving a character between adjacent fields changes the bytes.
        let a = Entry {
            record_type: "ab".into(),
            record_id: "c".into(),
            ..entry()
        };
        let b = Entry {
            record_type: "a".into(),
            record_id: "bc".into(),
            ..entry()
        };
        assert_ne!(a.canonical_bytes(&GENESIS), b.canonical_bytes(&GENESIS));
        let c = Entry {
            actor_id: Some(String::new()),
            ..entry()
        };
        let d = Entry {
            actor_id: None,
            ..entry()
        };
        assert_ne!(c.canonical_bytes(&GENESIS), d.canonical_bytes(&GENESIS));
    }
}
