-- What happens after an unqualified sampling result (issue 13 items 5 and 6): the later facts
-- of a sample recorded one at a time (who, when, the note), the 复检 lab, and 核查处置
-- follow-ups in the same `followups` table as inspection follow-ups.

-- One row per recorded fact; `samples.<kind>_on` holds the same date (the deadlines read it).
CREATE TABLE sample_facts (
    sample_id TEXT NOT NULL REFERENCES samples (id),
    kind TEXT NOT NULL CHECK (kind IN ('bureau_notified', 'served', 'retest_requested',
        'objection_filed', 'retest_received', 'retest_reported', 'disposal_done')),
    on_date TEXT NOT NULL,                  -- YYYY-MM-DD, the bureau's day
    note TEXT,
    recorded_by TEXT NOT NULL REFERENCES users (id),
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (sample_id, kind)
);

-- The 复检 lab named with the 复检 request (never the first lab).
ALTER TABLE samples ADD COLUMN retest_lab_id TEXT REFERENCES labs (id);
-- The items the 复检 covers (JSON array of item names), set with the request.
ALTER TABLE samples ADD COLUMN retest_items TEXT;

-- A follow-up has exactly one origin: an inspection (整改 → 复查) or a sample (核查处置 of a
-- 不合格 result, 90 calendar days). SQLite cannot drop NOT NULL, so the table is rebuilt
-- (foreign keys are off during migrations; store::Db::migrate checks them afterwards).
CREATE TABLE followups_rebuilt (
    id TEXT PRIMARY KEY NOT NULL,
    inspection_id TEXT UNIQUE REFERENCES inspections (id),
    sample_id TEXT UNIQUE REFERENCES samples (id),
    establishment_id TEXT NOT NULL REFERENCES establishments (id),
    plan_id TEXT REFERENCES plans (id),
    origin_result TEXT NOT NULL CHECK (origin_result IN ('basically_compliant', 'non_compliant', 'unqualified')),
    state TEXT NOT NULL CHECK (state IN ('open', 'recheck_assigned', 'closed', 'escalated')),
    order_text TEXT,
    ordered_on TEXT NOT NULL,
    period_working_days INTEGER CHECK (period_working_days > 0),
    period_calendar_days INTEGER CHECK (period_calendar_days > 0),
    deadline TEXT NOT NULL,
    failed_items TEXT NOT NULL,
    stop_operating INTEGER NOT NULL DEFAULT 0,
    case_opened INTEGER NOT NULL DEFAULT 0,
    recheck_team TEXT NOT NULL,
    recheck_task_id TEXT,
    recheck_inspection_id TEXT,
    outcome_result TEXT,
    closed_at INTEGER,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CHECK ((inspection_id IS NULL) <> (sample_id IS NULL)),
    CHECK (inspection_id IS NULL OR (plan_id IS NOT NULL AND period_working_days IS NOT NULL
        AND origin_result <> 'unqualified')),
    CHECK (sample_id IS NULL OR (origin_result = 'unqualified' AND period_calendar_days IS NOT NULL
        AND state IN ('open', 'closed')))
);
INSERT INTO followups_rebuilt (id, inspection_id, sample_id, establishment_id, plan_id,
    origin_result, state, order_text, ordered_on, period_working_days, period_calendar_days,
    deadline, failed_items, stop_operating, case_opened, recheck_team, recheck_task_id,
    recheck_inspection_id, outcome_result, closed_at, created_by, created_at, updated_at)
SELECT id, inspection_id, NULL, establishment_id, plan_id, origin_result, state, order_text,
    ordered_on, period_working_days, NULL, deadline, failed_items, stop_operating, case_opened,
    recheck_team, recheck_task_id, recheck_inspection_id, outcome_result, closed_at, created_by,
    created_at, updated_at
FROM followups;
DROP TABLE followups;
ALTER TABLE followups_rebuilt RENAME TO followups;
CREATE INDEX followups_state_deadline ON followups (state, deadline, id);
CREATE INDEX followups_establishment ON followups (establishment_id, created_at);
CREATE INDEX followups_created_at ON followups (created_at);

-- A black-list entry may rest on a 不合格 sampling result instead of an inspection.
ALTER TABLE list_entries ADD COLUMN sample_id TEXT REFERENCES samples (id);
