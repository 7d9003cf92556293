-- A durable job queue (photo processing, later exports and deadline sweeps). Jobs survive a
-- restart; a failed attempt is retried with backoff; a poisoned job fails alone.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_after BIGINT NOT NULL,
    locked_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_ready ON jobs (state, run_after);

-- What processing found in a photo.
ALTER TABLE photos ADD COLUMN width BIGINT;
ALTER TABLE photos ADD COLUMN height BIGINT;
ALTER TABLE photos ADD COLUMN exif TEXT;                 -- JSON ExifInfo
ALTER TABLE photos ADD COLUMN exif_taken_at BIGINT;          -- Unix ms
ALTER TABLE photos ADD COLUMN exif_lng DOUBLE PRECISION;               -- WGS-84
ALTER TABLE photos ADD COLUMN exif_lat DOUBLE PRECISION;
ALTER TABLE photos ADD COLUMN flags TEXT;                -- JSON array, e.g. ["outside_radius"]
ALTER TABLE photos ADD COLUMN processing_error TEXT;
