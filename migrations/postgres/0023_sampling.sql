-- 食品安全抽检, persistence and the lab side (issue 13): labs and their accounts, the food
-- category tree, samples (抽样单) with their samplers, the append-only chain of custody, lab
-- results and the legal deadlines per sample. Plans/tasks and sync tables come later
-- (samples.task_id is nullable until then).

CREATE TABLE labs (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    code TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,               -- a user id, or 'system'
    created_at BIGINT NOT NULL
);

-- A `lab` account belongs to exactly one lab (set by an admin); other roles have none.
ALTER TABLE users ADD COLUMN lab_id TEXT REFERENCES labs (id);

-- The 4-level category tree of the 实施细则, as data (admin import).
CREATE TABLE food_categories (
    code TEXT PRIMARY KEY NOT NULL,
    level BIGINT NOT NULL CHECK (level BETWEEN 1 AND 4),
    parent_code TEXT REFERENCES food_categories (code),
    name TEXT NOT NULL,
    microbiological BIGINT CHECK (microbiological IN (0, 1)),   -- NULL: not stated
    updated_at BIGINT NOT NULL,
    CHECK ((level = 1 AND parent_code IS NULL) OR (level > 1 AND parent_code IS NOT NULL))
);
CREATE INDEX food_categories_parent ON food_categories (parent_code);

-- Generated 抽样单编号: the last sequence per prefix and bureau day, bumped inside the
-- submitting transaction (a row lock on PostgreSQL, the writer lock on SQLite).
CREATE TABLE sample_no_counters (
    prefix TEXT NOT NULL,
    day TEXT NOT NULL,                      -- YYYYMMDD
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (prefix, day)
);

CREATE TABLE samples (
    id TEXT PRIMARY KEY NOT NULL,           -- chosen by the client (UUID)
    sample_no TEXT NOT NULL UNIQUE,         -- 抽样单编号, national or generated
    sample_no_kind TEXT NOT NULL CHECK (sample_no_kind IN ('national', 'generated')),
    task_id TEXT,
    purpose TEXT NOT NULL CHECK (purpose IN ('supervision', 'risk_monitoring')),
    stage TEXT NOT NULL CHECK (stage IN ('production', 'circulation', 'catering')),
    category_code TEXT NOT NULL REFERENCES food_categories (code),
    establishment_id TEXT NOT NULL REFERENCES establishments (id),
    -- The premises as written on the form at sampling time (the registry may change later).
    premises_name TEXT NOT NULL,
    premises_address TEXT NOT NULL,
    premises_credit_code TEXT,              -- NULL: "/" on the form
    premises_licence_no TEXT,
    sample_name TEXT NOT NULL,
    lab_id TEXT NOT NULL REFERENCES labs (id),
    sampled_at BIGINT NOT NULL,
    lng DOUBLE PRECISION NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    crs TEXT NOT NULL,
    -- The custody state: the latest custody kind recorded, 'submitted' before any.
    state TEXT NOT NULL CHECK (state IN ('submitted', 'sealed', 'dispatched', 'received', 'testing', 'reported')),
    seal_broken BIGINT NOT NULL DEFAULT 0 CHECK (seal_broken IN (0, 1)),
    -- The whole form as submitted (sampling::form wire form: "/" is not applicable, null missing).
    form TEXT NOT NULL,
    warnings TEXT NOT NULL DEFAULT '[]',    -- JSON [{field, code, message}]
    -- SHA-256 of the submitted body: the same id with another body is a conflict.
    body_sha256 TEXT NOT NULL,
    -- Later facts of the deadlines (set by the follow-up side; YYYY-MM-DD, bureau days).
    bureau_notified_on TEXT,
    served_on TEXT,
    retest_requested_on TEXT,
    objection_on TEXT,
    retest_received_on TEXT,
    retest_reported_on TEXT,
    disposal_done_on TEXT,
    submitted_by TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX samples_lab ON samples (lab_id, created_at);
CREATE INDEX samples_establishment ON samples (establishment_id);

CREATE TABLE sample_samplers (
    sample_id TEXT NOT NULL REFERENCES samples (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    position BIGINT NOT NULL,              -- 1, 2, ... as on the form
    PRIMARY KEY (sample_id, user_id)
);
CREATE INDEX sample_samplers_user ON sample_samplers (user_id);

-- Append-only: the triggers below refuse every UPDATE and DELETE.
CREATE TABLE custody_events (
    id TEXT PRIMARY KEY NOT NULL,           -- chosen by the device (UUID)
    sample_id TEXT NOT NULL REFERENCES samples (id),
    kind TEXT NOT NULL CHECK (kind IN ('sealed', 'dispatched', 'received', 'testing', 'reported')),
    occurred_at BIGINT NOT NULL,
    actor_id TEXT NOT NULL REFERENCES users (id),
    actor_role TEXT NOT NULL,
    place TEXT NOT NULL,
    note TEXT,
    sample_condition TEXT,                  -- received only
    seal_intact BIGINT CHECK (seal_intact IN (0, 1)),   -- received only
    recorded_at BIGINT NOT NULL,
    UNIQUE (sample_id, kind)
);
CREATE FUNCTION custody_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'custody events are append-only';
END
$$;
CREATE TRIGGER custody_events_append_only BEFORE UPDATE OR DELETE ON custody_events
FOR EACH ROW EXECUTE FUNCTION custody_events_append_only();

CREATE TABLE lab_results (
    sample_id TEXT PRIMARY KEY NOT NULL REFERENCES samples (id),
    lab_id TEXT NOT NULL REFERENCES labs (id),
    report_no TEXT NOT NULL,
    overall TEXT NOT NULL CHECK (overall IN ('qualified', 'unqualified')),  -- computed = stated
    source TEXT NOT NULL CHECK (source IN ('json', 'file')),
    -- SHA-256 of the canonical report: the same report again is a no-op.
    report_sha256 TEXT NOT NULL,
    reported_by TEXT NOT NULL REFERENCES users (id),
    reported_at BIGINT NOT NULL
);

CREATE TABLE lab_result_items (
    sample_id TEXT NOT NULL REFERENCES lab_results (sample_id),
    position BIGINT NOT NULL,              -- 0-based, report order
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    unit TEXT,
    limit_text TEXT,
    standard TEXT,
    method TEXT,
    verdict TEXT NOT NULL CHECK (verdict IN ('qualified', 'unqualified')),        -- the lab's
    computed_verdict TEXT CHECK (computed_verdict IN ('qualified', 'unqualified')), -- ours, if comparable
    disagrees BIGINT NOT NULL CHECK (disagrees IN (0, 1)),
    microbiological BIGINT NOT NULL CHECK (microbiological IN (0, 1)),
    PRIMARY KEY (sample_id, position)
);

-- Recomputed (deleted and written again) inside every write that changes a sample's facts;
-- the status is computed on read from due_on, done_on and the bureau's today.
CREATE TABLE sample_deadlines (
    sample_id TEXT NOT NULL REFERENCES samples (id),
    rule TEXT NOT NULL,
    period_unit TEXT NOT NULL CHECK (period_unit IN ('working_days', 'calendar_days')),
    period_days BIGINT NOT NULL,
    start_on TEXT NOT NULL,                 -- YYYY-MM-DD, not counted
    due_on TEXT NOT NULL,
    done_on TEXT,
    PRIMARY KEY (sample_id, rule)
);
CREATE INDEX sample_deadlines_open ON sample_deadlines (due_on, sample_id, rule) WHERE done_on IS NULL;
