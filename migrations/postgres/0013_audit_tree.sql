-- The tamper-evident layer over audit_events. The integrator sequences pending entries
-- (seq, prev_hash, entry_hash: the hash chain) and adds them as leaves to a Merkle tree whose
-- complete subtrees are kept in audit_tree (level 0 = leaf hashes), so any inclusion or
-- consistency proof reads O(log n) rows. Signed checkpoints of the tree are kept as the exact
-- note text that was published.
ALTER TABLE audit_events ADD COLUMN prev_hash BYTEA;
ALTER TABLE audit_events ADD COLUMN entry_hash BYTEA;

CREATE TABLE audit_tree (
    level BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE audit_checkpoints (
    id BIGSERIAL PRIMARY KEY,
    tree_size BIGINT NOT NULL,
    root_hash BYTEA NOT NULL,
    at BIGINT NOT NULL,
    note TEXT NOT NULL,
    verifier_key TEXT NOT NULL
);
CREATE INDEX audit_checkpoints_size ON audit_checkpoints (tree_size, id);
