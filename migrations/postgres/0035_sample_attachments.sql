-- Sample attachments (issue 13): the site photo, the photo of the sample and of the sealed
-- sample (declared by the sample's samplers) and the lab report PDF (declared by the sample's
-- lab). Their bytes come through the same tus uploads as inspection photos: an upload now
-- belongs to a photo record OR a sample attachment, exactly one.

CREATE TABLE sample_attachments (
    id TEXT PRIMARY KEY NOT NULL,           -- chosen by the client (UUID)
    sample_id TEXT NOT NULL REFERENCES samples (id),
    kind TEXT NOT NULL CHECK (kind IN ('site', 'sample', 'seal', 'report')),
    sha256 TEXT NOT NULL,                   -- declared; the uploaded file must hash to it
    byte_size BIGINT NOT NULL,
    taken_at BIGINT NOT NULL,               -- Unix ms (photos: taken; report: issued)
    -- SHA-256 of the declaration: the same id with another declaration is a conflict.
    body_sha256 TEXT NOT NULL,
    declared_by TEXT NOT NULL REFERENCES users (id),
    blob_sha256 TEXT REFERENCES blobs (sha256),
    media_type TEXT,
    uploaded_at BIGINT,
    processing_status TEXT NOT NULL DEFAULT 'awaiting_upload'
        CHECK (processing_status IN ('awaiting_upload', 'uploaded', 'processed', 'failed')),
    processing_error TEXT,
    width BIGINT,
    height BIGINT,
    exif TEXT,                              -- JSON ExifInfo (photos)
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX sample_attachments_sample ON sample_attachments (sample_id, created_at);
CREATE INDEX sample_attachments_blob ON sample_attachments (blob_sha256);

-- The lab result may name its report PDF.
ALTER TABLE lab_results ADD COLUMN report_attachment_id TEXT REFERENCES sample_attachments (id);

-- An upload belongs to a photo record or a sample attachment, exactly one.
ALTER TABLE uploads ALTER COLUMN photo_id DROP NOT NULL;
ALTER TABLE uploads ADD COLUMN attachment_id TEXT REFERENCES sample_attachments (id);
ALTER TABLE uploads ADD CONSTRAINT uploads_one_owner
    CHECK ((photo_id IS NULL) <> (attachment_id IS NULL));
CREATE INDEX uploads_attachment ON uploads (attachment_id) WHERE attachment_id IS NOT NULL;
