-- Typed audit events, replacing audit_log. Each use case writes its events inside its own
-- write transaction with seq NULL (pending). The integrator later sequences committed events
-- in batches (seq, hashes) and extends the Merkle tree, so the write path never waits on the
-- chain. Old audit_log rows are kept as action 'legacy' with their old action and detail.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor_id TEXT,
    actor_role TEXT,
    device_id TEXT,
    request_id TEXT,
    action TEXT NOT NULL,
    record_type TEXT NOT NULL,
    record_id TEXT NOT NULL,
    changes TEXT NOT NULL DEFAULT '[]',
    seq INTEGER UNIQUE
);
CREATE INDEX audit_events_pending ON audit_events (id) WHERE seq IS NULL;
CREATE INDEX audit_events_record ON audit_events (record_type, record_id, id);
CREATE INDEX audit_events_actor ON audit_events (actor_id, id);
CREATE INDEX audit_events_at ON audit_events (at, id);

INSERT INTO audit_events (at, actor_id, action, record_type, record_id, changes)
SELECT at, actor_id, 'legacy', COALESCE(subject_type, 'batch'), COALESCE(subject_id, '-'),
       json_array(
           json_object('field', 'action', 'before', NULL, 'after', action),
           json_object('field', 'detail', 'before', NULL, 'after', detail))
FROM audit_log ORDER BY id;

DROP TABLE audit_log;
