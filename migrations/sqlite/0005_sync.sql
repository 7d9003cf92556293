-- Offline sync (WatermelonDB protocol). Every synced row carries the sequence number of its
-- last change; one counter row, bumped inside each write transaction, orders the commits.

CREATE TABLE sync_counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO sync_counter (id, value) VALUES (1, 1);

-- Tombstones older than retention are purged; cursors at or below this need a full replacement.
CREATE TABLE sync_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    tombstones_purged_through INTEGER NOT NULL
);
INSERT INTO sync_state (id, tombstones_purged_through) VALUES (1, 0);

ALTER TABLE establishments ADD COLUMN seq INTEGER NOT NULL DEFAULT 1;
CREATE INDEX establishments_seq ON establishments (seq);
ALTER TABLE tasks ADD COLUMN seq INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tasks ADD COLUMN created_seq INTEGER NOT NULL DEFAULT 1;
CREATE INDEX tasks_seq ON tasks (seq);

CREATE TABLE inspections (
    id TEXT PRIMARY KEY NOT NULL,
    task_id TEXT NOT NULL REFERENCES tasks (id),
    establishment_id TEXT NOT NULL REFERENCES establishments (id),
    started_at INTEGER NOT NULL,             -- device clock, Unix ms
    finished_at INTEGER,
    lng REAL,
    lat REAL,
    gps_accuracy_m REAL,
    crs TEXT CHECK (crs IN ('wgs84', 'gcj02', 'bd09')),
    wgs84_lng REAL,                       -- server-normalised
    wgs84_lat REAL,
    team TEXT NOT NULL,                 -- JSON array of {user_id, name, badge_no}
    representative_name TEXT,
    representative_signed INTEGER NOT NULL DEFAULT 0,
    representative_refused INTEGER NOT NULL DEFAULT 0,
    business_opinion TEXT,              -- 被检查单位意见
    other_findings TEXT,
    declared_result TEXT CHECK (declared_result IN ('compliant', 'basically_compliant', 'non_compliant')),
    submitted INTEGER NOT NULL DEFAULT 0,
    -- Server-computed.
    computed_result TEXT,
    evaluation TEXT,                    -- JSON Evaluation at submission
    review_state TEXT,
    server_flags TEXT,
    submitted_at INTEGER,
    created_by TEXT NOT NULL,
    origin_device TEXT,
    created_seq INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX inspections_task ON inspections (task_id);
CREATE INDEX inspections_seq ON inspections (seq);

CREATE TABLE answers (
    id TEXT PRIMARY KEY NOT NULL,
    inspection_id TEXT NOT NULL REFERENCES inspections (id),
    item_code TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pass', 'fail', 'not_applicable')),
    note TEXT,
    origin_device TEXT,
    created_seq INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (inspection_id, item_code)
);
CREATE INDEX answers_seq ON answers (seq);

CREATE TABLE photos (
    id TEXT PRIMARY KEY NOT NULL,
    inspection_id TEXT NOT NULL REFERENCES inspections (id),
    item_code TEXT,
    sha256 TEXT NOT NULL,
    byte_size INTEGER NOT NULL,
    taken_at INTEGER NOT NULL,
    processing_status TEXT NOT NULL DEFAULT 'awaiting_upload',
    origin_device TEXT,
    created_seq INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX photos_inspection ON photos (inspection_id);
CREATE INDEX photos_seq ON photos (seq);

-- Deleted synced records; task_id scopes who must hear of the deletion.
CREATE TABLE sync_tombstones (
    table_name TEXT NOT NULL,
    record_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    -- The user/device that deleted it: it is not told again (it may re-create the same id).
    deleted_by TEXT,
    seq INTEGER NOT NULL,
    deleted_at INTEGER NOT NULL,
    PRIMARY KEY (table_name, record_id)
);
CREATE INDEX sync_tombstones_seq ON sync_tombstones (seq);
