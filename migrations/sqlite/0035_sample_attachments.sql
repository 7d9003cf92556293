-- Sample attachments (issue 13): the site photo, the photo of the sample and of the sealed
-- sample (declared by the sample's samplers) and the lab report PDF (declared by the sample's
-- lab). Their bytes come through the same tus uploads as inspection photos: an upload now
-- belongs to a photo record OR a sample attachment, exactly one.

CREATE TABLE sample_attachments (
    id TEXT PRIMARY KEY NOT NULL,           -- chosen by the client (UUID)
    sample_id TEXT NOT NULL REFERENCES samples (id),
    kind TEXT NOT NULL CHECK (kind IN ('site', 'sample', 'seal', 'report')),
    sha256 TEXT NOT NULL,                   -- declared; the uploaded file must hash to it
    byte_size INTEGER NOT NULL,
    taken_at INTEGER NOT NULL,              -- Unix ms (photos: taken; report: issued)
    -- SHA-256 of the declaration: the same id with another declaration is a conflict.
    body_sha256 TEXT NOT NULL,
    declared_by TEXT NOT NULL REFERENCES users (id),
    blob_sha256 TEXT REFERENCES blobs (sha256),
    media_type TEXT,
    uploaded_at INTEGER,
    processing_status TEXT NOT NULL DEFAULT 'awaiting_upload'
        CHECK (processing_status IN ('awaiting_upload', 'uploaded', 'processed', 'failed')),
    processing_error TEXT,
    width INTEGER,
    height INTEGER,
    exif TEXT,                              -- JSON ExifInfo (photos)
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX sample_attachments_sample ON sample_attachments (sample_id, created_at);
CREATE INDEX sample_attachments_blob ON sample_attachments (blob_sha256);

-- The lab result may name its report PDF.
ALTER TABLE lab_results ADD COLUMN report_attachment_id TEXT REFERENCES sample_attachments (id);

-- uploads rebuilt (SQLite changes a column's constraints only so): photo_id may be NULL,
-- attachment_id added, and exactly one owner. Rows and indexes kept.
CREATE TABLE uploads_rebuilt (
    id TEXT PRIMARY KEY NOT NULL,
    photo_id TEXT REFERENCES photos (id),
    attachment_id TEXT REFERENCES sample_attachments (id),
    created_by TEXT NOT NULL,
    length INTEGER NOT NULL,
    upload_offset INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT NOT NULL,               -- declared in Upload-Metadata; the file must hash to it
    metadata TEXT NOT NULL,             -- Upload-Metadata as sent
    completed INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CHECK ((photo_id IS NULL) <> (attachment_id IS NULL))
);
INSERT INTO uploads_rebuilt (id, photo_id, attachment_id, created_by, length, upload_offset, sha256,
    metadata, completed, expires_at, created_at, updated_at)
SELECT id, photo_id, NULL, created_by, length, upload_offset, sha256, metadata, completed,
    expires_at, created_at, updated_at
FROM uploads;
DROP TABLE uploads;
ALTER TABLE uploads_rebuilt RENAME TO uploads;
CREATE INDEX uploads_expires ON uploads (completed, expires_at);
CREATE INDEX uploads_attachment ON uploads (attachment_id) WHERE attachment_id IS NOT NULL;
