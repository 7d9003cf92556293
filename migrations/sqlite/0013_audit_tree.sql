-- The tamper-evident layer over audit_events. The integrator sequences pending entries
-- (seq, prev_hash, entry_hash: the hash chain) and adds them as leaves to a Merkle tree whose
-- complete subtrees are kept in audit_tree (level 0 = leaf hashes), so any inclusion or
-- consistency proof reads O(log n) rows. Signed checkpoints of the tree are kept as the exact
-- note text that was published.
ALTER TABLE audit_events ADD COLUMN prev_hash BLOB;
ALTER TABLE audit_events ADD COLUMN entry_hash BLOB;

CREATE TABLE audit_tree (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE audit_checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tree_size INTEGER NOT NULL,
    root_hash BLOB NOT NULL,
    at INTEGER NOT NULL,
    note TEXT NOT NULL,
    verifier_key TEXT NOT NULL
);
CREATE INDEX audit_checkpoints_size ON audit_checkpoints (tree_size, id);
