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
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (sample_id, kind)
);

-- The 复检 lab named with the 复检 request (never the first lab).
ALTER TABLE samples ADD COLUMN retest_lab_id TEXT REFERENCES labs (id);
-- The items the 复检 covers (JSON array of item names), set with the request.
ALTER TABLE samples ADD COLUMN retest_items TEXT;

-- A follow-up has exactly one origin: an inspection (整改 → 复查) or a sample (核查处置 of a
-- 不合格 result, 90 calendar days).
ALTER TABLE followups ALTER COLUMN inspection_id DROP NOT NULL;
ALTER TABLE followups ALTER COLUMN plan_id DROP NOT NULL;
ALTER TABLE followups ALTER COLUMN period_working_days DROP NOT NULL;
ALTER TABLE followups ADD COLUMN sample_id TEXT UNIQUE REFERENCES samples (id);
ALTER TABLE followups ADD COLUMN period_calendar_days BIGINT CHECK (period_calendar_days > 0);
ALTER TABLE followups DROP CONSTRAINT followups_origin_result_check;
ALTER TABLE followups ADD CONSTRAINT followups_origin_result_check
    CHECK (origin_result IN ('basically_compliant', 'non_compliant', 'unqualified'));
ALTER TABLE followups ADD CONSTRAINT followups_one_origin
    CHECK ((inspection_id IS NULL) <> (sample_id IS NULL));
ALTER TABLE followups ADD CONSTRAINT followups_inspection_origin
    CHECK (inspection_id IS NULL OR (plan_id IS NOT NULL AND period_working_days IS NOT NULL
        AND origin_result <> 'unqualified'));
ALTER TABLE followups ADD CONSTRAINT followups_sample_origin
    CHECK (sample_id IS NULL OR (origin_result = 'unqualified' AND period_calendar_days IS NOT NULL
        AND state IN ('open', 'closed')));

-- A black-list entry may rest on a 不合格 sampling result instead of an inspection.
ALTER TABLE list_entries ADD COLUMN sample_id TEXT REFERENCES samples (id);
