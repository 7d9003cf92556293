-- A durable job queue (photo processing, later exports and deadline sweeps). Jobs survive a
-- restart; a failed attempt is retried with backoff; a poisoned job fails alone.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_after INTEGER NOT NULL,
    locked_until INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX jobs_ready ON jobs (state, run_after);

-- What processing found in a photo.
ALTER TABLE photos ADD COLUMN width INTEGER;
ALTER TABLE photos ADD COLUMN height INTEGER;
ALTER TABLE photos ADD COLUMN exif TEXT;                 -- JSON ExifInfo
ALTER TABLE photos ADD COLUMN exif_taken_at INTEGER;          -- Unix ms
ALTER TABLE photos ADD COLUMN exif_lng REAL;               -- WGS-84
ALTER TABLE photos ADD COLUMN exif_lat REAL;
ALTER TABLE photos ADD COLUMN flags TEXT;                -- JSON array, e.g. ["outside_radius"]
ALTER TABLE photos ADD COLUMN processing_error TEXT;
