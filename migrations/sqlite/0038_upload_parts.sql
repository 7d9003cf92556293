-- The bytes of open tus uploads live in the database, so that the next PATCH or HEAD of an
-- upload may reach any API instance. A part is at most about 1 MiB; `upload_offset` only
-- advances in the transaction that commits the part it covers, so the committed parts of an
-- upload are exactly its bytes 0..upload_offset.
CREATE TABLE upload_parts (
    upload_id TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    -- '' once the part counts; a checksummed PATCH first stages its parts under its own id and
    -- makes them count only when the whole chunk matched (460 otherwise).
    staged TEXT NOT NULL DEFAULT '',
    part_offset INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (upload_id, staged, part_offset)
);
CREATE INDEX upload_parts_staged ON upload_parts (created_at) WHERE staged <> '';

-- Until now an open upload's bytes were a file on the instance that took them, never shared:
-- such uploads start again from 0 (tus clients resume from the offset HEAD reports).
UPDATE uploads SET upload_offset = 0 WHERE completed = 0;
