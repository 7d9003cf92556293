//! The streaming verifier: fed sequenced entries in seq order, it recomputes every entry hash,
//! the chain and the Merkle root with O(log n) memory, and names the FIRST broken entry.
//! The recomputed root is checked against every signed checkpoint it is given (the latest
//! stored one, and any older one an auditor kept), each signature checked first.

use serde::Serialize;

use super::chain::{Entry, GENESIS};
use super::checkpoint::{Checkpoint, NoteVerifier};
use super::merkle::{leaf_hash, Builder, Hash};

/// An entry as read back: its fields and the hashes stored beside them.
#[derive(Debug, Clone)]
pub struct Stored {
    pub entry: Entry,
    pub prev_hash: Option<Vec<u8>>,
    pub entry_hash: Option<Vec<u8>>,
}

/// What is wrong, naming the first entry (by seq) where it shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Break {
    #[error("entry {seq} is missing (the next entry found is {found}): a row was deleted")]
    Deleted { seq: u64, found: u64 },
    #[error(
        "entry {seq}: its previous-entry hash is not entry {}'s hash: a row was inserted before it, or rows were reordered",
        seq.wrapping_sub(1)
    )]
    Reordered { seq: u64 },
    #[error("entry {seq}: its content does not match its hash: the row was edited")]
    Edited { seq: u64 },
    #[error("entries from {seq} on are missing: the signed checkpoint covers {checkpoint_size} entries, the log has {seq}")]
    Truncated { seq: u64, checkpoint_size: u64 },
    #[error("the root of the first {size} entries is not the signed checkpoint's: history before it was rewritten (hashes recomputed)")]
    CheckpointMismatch { size: u64 },
    #[error("the stored Merkle tree does not match the entries ({detail})")]
    Tree { detail: String },
    #[error("the checkpoint is not valid: {0}")]
    Checkpoint(String),
}

impl Break {
    /// The first broken entry, when one entry is to blame.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Break::Deleted { seq, .. }
            | Break::Reordered { seq }
            | Break::Edited { seq }
            | Break::Truncated { seq, .. } => Some(*seq),
            _ => None,
        }
    }
}

/// The outcome of a clean verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Entries checked (the tree size).
    pub entries: u64,
    /// The recomputed root of all entries.
    #[serde(serialize_with = "hex_hash")]
    pub root: Hash,
    /// The size of the largest checkpoint that matched, when one was given.
    pub checkpoint_size: Option<u64>,
    /// The sizes of every checkpoint that matched, smallest first.
    pub checkpoints_matched: Vec<u64>,
}

fn hex_hash<S: serde::Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(h))
}

#[derive(Debug)]
pub struct Verifier {
    prev: Hash,
    tree: Builder,
    /// Checkpoints not reached yet, largest first (the next one is last).
    ahead: Vec<Checkpoint>,
    matched: Vec<u64>,
    broken: Option<Break>,
}

impl Verifier {
    /// A verifier against signed checkpoint notes, each opened here with its key.
    pub fn new(checkpoints: &[(&str, &NoteVerifier)]) -> Result<Verifier, Break> {
        let mut ahead = checkpoints
            .iter()
            .map(|(note, key)| key.open_checkpoint(note).map_err(Break::Checkpoint))
            .collect::<Result<Vec<_>, _>>()?;
        ahead.sort_by_key(|c| std::cmp::Reverse(c.size));
        let mut v = Verifier {
            prev: GENESIS,
            tree: Builder::default(),
            ahead,
            matched: Vec::new(),
            broken: None,
        };
        v.check_checkpoints()?; // those of size 0
        Ok(v)
    }

    /// Checks the checkpoints of the current size against the current root.
    fn check_checkpoints(&mut self) -> Result<(), Break> {
        while let Some(cp) = self.ahead.last() {
            if cp.size != self.tree.size() {
                break;
            }
            if self.tree.root() != cp.root {
                return Err(Break::CheckpointMismatch { size: cp.size });
            }
            self.matched.push(cp.size);
            self.ahead.pop();
        }
        Ok(())
    }

    /// Checks the next entry. After the first break every call returns that break.
    pub fn push(&mut self, s: &Stored) -> Result<(), Break> {
        if let Some(b) = &self.broken {
            return Err(b.clone());
        }
        let r = self.check(s);
        if let Err(b) = &r {
            self.broken = Some(b.clone());
        }
        r
    }

    fn check(&mut self, s: &Stored) -> Result<(), Break> {
        let expected = self.tree.size();
        let seq = s.entry.seq;
        if seq != expected {
            // Sorted by seq and seq is unique: a larger seq means entries were removed.
            return Err(Break::Deleted {
                seq: expected,
                found: seq,
            });
        }
        if s.prev_hash.as_deref() != Some(&self.prev[..]) {
            return Err(Break::Reordered { seq });
        }
        let h = s.entry.hash(&self.prev);
        if s.entry_hash.as_deref() != Some(&h[..]) {
            return Err(Break::Edited { seq });
        }
        self.prev = h;
        self.tree.push(leaf_hash(&h));
        self.check_checkpoints()
    }

    /// Entries checked so far.
    pub fn entries(&self) -> u64 {
        self.tree.size()
    }

    /// The end of the stream: every entry of the checkpoint must have been seen, and the
    /// stored tree's root for the whole log (when given) must be the recomputed one.
    pub fn finish(self, stored_root: Option<Hash>) -> Result<Report, Break> {
        if let Some(b) = self.broken {
            return Err(b);
        }
        if let Some(cp) = self.ahead.first() {
            return Err(Break::Truncated {
                seq: self.tree.size(),
                checkpoint_size: cp.size,
            });
        }
        let root = self.tree.root();
        if let Some(stored) = stored_root {
            if stored != root {
                return Err(Break::Tree {
                    detail: format!(
                        "the stored root of {} entries is {}, recomputed {}",
                        self.tree.size(),
                        hex::encode(stored),
                        hex::encode(root)
                    ),
                });
            }
        }
        Ok(Report {
            entries: self.tree.size(),
            root,
            checkpoint_size: self.matched.last().copied(),
            checkpoints_matched: self.matched,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::checkpoint::NoteSigner;

    fn log(n: u64) -> Vec<Stored> {
        let mut prev = GENESIS;
        (0..n)
            .map(|seq| {
                let entry = Entry {
                    seq,
                    id: seq as i64 + 100,
                    at: 1_000 + seq as i64,
                    actor_id: Some("admin".into()),
                    actor_role: Some("admin".into()),
                    device_id: None,
                    request_id: None,
                    action: "user_created".into(),
                    record_type: "user".into(),
                    record_id: format!("u{seq}"),
                    changes: "[]".into(),
                };
                let h = entry.hash(&prev);
                let s = Stored {
                    entry,
                    prev_hash: Some(prev.to_vec()),
                    entry_hash: Some(h.to_vec()),
                };
                prev = h;
                s
            })
            .collect()
    }

    fn signed(entries: &[Stored], size: usize) -> (String, NoteVerifier) {
        let key = NoteSigner::from_seed("test/audit", [3; 32]).unwrap();
        let mut b = Builder::default();
        for s in &entries[..size] {
            b.push(leaf_hash(s.entry_hash.as_deref().unwrap()));
        }
        let cp = Checkpoint {
            origin: "test/audit".into(),
            size: size as u64,
            root: b.root(),
            time_ms: 0,
        };
        (
            key.sign(&cp.body()),
            NoteVerifier::parse(&key.verifier_key()).unwrap(),
        )
    }

    fn run(entries: &[Stored], cp: Option<(&str, &NoteVerifier)>) -> Result<Report, Break> {
        let mut v = Verifier::new(cp.as_slice())?;
        for s in entries {
            if v.push(s).is_err() {
                break;
            }
        }
        v.finish(None)
    }

    #[test]
    fn a_clean_log_verifies() {
        let l = log(10);
        let (note, key) = signed(&l, 7);
        let r = run(&l, Some((&note, &key))).unwrap();
        assert_eq!(r.entries, 10);
        assert_eq!(r.checkpoint_size, Some(7));
    }

    #[test]
    fn tampering_names_the_first_broken_entry() {
        let l = log(10);
        let (note, key) = signed(&l, 10);
        let cp = Some((note.as_str(), &key));

        let mut edited = l.clone();
        edited[4].entry.changes = "[{\"field\":\"x\"}]".into();
        assert_eq!(run(&edited, cp), Err(Break::Edited { seq: 4 }));

        let mut deleted = l.clone();
        deleted.remove(3);
        assert_eq!(run(&deleted, cp), Err(Break::Deleted { seq: 3, found: 4 }));

        let mut swapped = l.clone();
        swapped.swap(2, 5);
        swapped[2].entry.seq = 2;
        swapped[5].entry.seq = 5;
        assert_eq!(run(&swapped, cp), Err(Break::Reordered { seq: 2 }));

        let truncated = &l[..8];
        assert_eq!(
            run(truncated, cp),
            Err(Break::Truncated {
                seq: 8,
                checkpoint_size: 10
            })
        );

        // A rewrite that recomputes every hash is caught by the checkpoint alone.
        let mut rewritten = log(10);
        rewritten[1].entry.record_id = "forged".into();
        let mut prev = GENESIS;
        for s in rewritten.iter_mut() {
            let h = s.entry.hash(&prev);
            s.prev_hash = Some(prev.to_vec());
            s.entry_hash = Some(h.to_vec());
            prev = h;
        }
        assert_eq!(
            run(&rewritten, cp),
            Err(Break::CheckpointMismatch { size: 10 })
        );

        // Re-signed after the rewrite (the key holder is the forger), the latest checkpoint
        // matches; a checkpoint published before the rewrite, kept by an auditor, does not.
        let (forged_note, key) = signed(&rewritten, 10);
        assert!(run(&rewritten, Some((&forged_note, &key))).is_ok());
        let (older, _) = signed(&l, 5);
        let both = [(forged_note.as_str(), &key), (older.as_str(), &key)];
        let mut v = Verifier::new(&both).unwrap();
        let first = rewritten.iter().map(|s| v.push(s)).find(Result::is_err);
        assert_eq!(first, Some(Err(Break::CheckpointMismatch { size: 5 })));
        let mut v = Verifier::new(&[(older.as_str(), &key), (note.as_str(), &key)]).unwrap();
        l.iter().for_each(|s| v.push(s).unwrap());
        assert_eq!(v.finish(None).unwrap().checkpoints_matched, [5, 10]);

        let bad_note = note.replacen("\n10\n", "\n9\n", 1);
        assert!(matches!(
            run(&l, Some((&bad_note, &key))),
            Err(Break::Checkpoint(_))
        ));
    }
}
