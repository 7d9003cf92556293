-- Sync positions from transaction ids (issue 14): on PostgreSQL a write transaction's sequence
-- number is its top-level transaction id plus this offset, and a pull's cursor is derived from
-- its snapshot (src/sync/protocol.md, "Cursor and concurrency"). No counter row is locked any
-- more; `sync_counter` stays for SQLite and as a record of the last counter value. A later
-- migration that gives rows a new position on PostgreSQL takes
-- `pg_current_xact_id()::text::bigint + (SELECT value FROM sync_xid_offset)`, not the counter.
--
-- The offset makes every new position exceed every position already stored. It only ever grows:
-- the server raises it at startup when the transaction ids are behind the stored positions
-- (a dump restored into another cluster).
CREATE TABLE sync_xid_offset (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO sync_xid_offset (id, value)
SELECT 1, GREATEST(0, c.value - pg_current_xact_id()::text::bigint + 1) FROM sync_counter c WHERE c.id = 1;
