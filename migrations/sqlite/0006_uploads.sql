-- Photo bytes: resumable tus uploads and content-addressed blobs.

CREATE TABLE uploads (
    id TEXT PRIMARY KEY NOT NULL,
    photo_id TEXT NOT NULL REFERENCES photos (id),
    created_by TEXT NOT NULL,
    length INTEGER NOT NULL,
    upload_offset INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT NOT NULL,               -- declared in Upload-Metadata; the file must hash to it
    metadata TEXT NOT NULL,             -- Upload-Metadata as sent
    completed INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX uploads_expires ON uploads (completed, expires_at);

-- One row per distinct content: the same bytes uploaded twice are stored once.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY NOT NULL,
    byte_size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    storage_key TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

ALTER TABLE photos ADD COLUMN blob_sha256 TEXT REFERENCES blobs (sha256);
ALTER TABLE photos ADD COLUMN media_type TEXT;
ALTER TABLE photos ADD COLUMN uploaded_at INTEGER;
