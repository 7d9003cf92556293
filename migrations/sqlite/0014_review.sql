-- Review and follow-up (issue 11): review decisions on inspections, the review history that
-- reaches the team's devices by sync, 整改 orders with their 复查 (recheck) tasks, and the
-- working-day calendar years admins add.

-- The inspection's review. `review_state` (already a column) is NULL while the team works,
-- 'submitted' once submitted, then 'approved' | 'returned' | 'rejected'. `review_round`
-- counts submissions (1 = first). An override keeps the computed result beside it.
ALTER TABLE inspections ADD COLUMN review_round INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inspections ADD COLUMN override_result TEXT
    CHECK (override_result IN ('compliant', 'basically_compliant', 'non_compliant'));
ALTER TABLE inspections ADD COLUMN override_reason TEXT;
ALTER TABLE inspections ADD COLUMN reviewed_by TEXT;
ALTER TABLE inspections ADD COLUMN reviewed_at INTEGER;
CREATE INDEX inspections_review ON inspections (review_state, submitted_at, id);

-- One row per decision, never updated: the history of every round. Synced (pull only) to the
-- team's devices, so a return's comments arrive with the inspection; `internal_note` is the
-- section's own and is never synced, printed or published.
CREATE TABLE reviews (
    id TEXT PRIMARY KEY NOT NULL,
    inspection_id TEXT NOT NULL REFERENCES inspections (id),
    round INTEGER NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('approved', 'returned', 'rejected')),
    comment TEXT,                       -- general comment (return) or reason (reject)
    item_comments TEXT NOT NULL DEFAULT '[]',   -- JSON [{item_code, comment}]
    override_result TEXT
        CHECK (override_result IN ('compliant', 'basically_compliant', 'non_compliant')),
    override_reason TEXT,
    internal_note TEXT,
    reviewer_id TEXT NOT NULL REFERENCES users (id),
    decided_at INTEGER NOT NULL,
    created_seq INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    UNIQUE (inspection_id, round, decision)
);
CREATE INDEX reviews_inspection ON reviews (inspection_id, decided_at);
CREATE INDEX reviews_seq ON reviews (seq);

-- 整改 → 复查. Opened when a 基本符合 or 不符合 inspection is approved; the deadline is counted
-- in working days on the bureau's calendar. When due, a recheck task (tasks.kind = 'recheck')
-- is created for the same establishment; its result closes the follow-up or escalates it.
CREATE TABLE followups (
    id TEXT PRIMARY KEY NOT NULL,
    inspection_id TEXT NOT NULL UNIQUE REFERENCES inspections (id),
    establishment_id TEXT NOT NULL REFERENCES establishments (id),
    plan_id TEXT NOT NULL REFERENCES plans (id),
    origin_result TEXT NOT NULL CHECK (origin_result IN ('basically_compliant', 'non_compliant')),
    state TEXT NOT NULL CHECK (state IN ('open', 'recheck_assigned', 'closed', 'escalated')),
    order_text TEXT,                    -- 整改要求 as written on the order
    ordered_on TEXT NOT NULL,           -- YYYY-MM-DD (bureau's local date)
    period_working_days INTEGER NOT NULL CHECK (period_working_days > 0),
    deadline TEXT NOT NULL,             -- YYYY-MM-DD, ordered_on + period working days
    failed_items TEXT NOT NULL,         -- JSON array of item codes: the recheck's must-check items
    stop_operating INTEGER NOT NULL DEFAULT 0,   -- 立即停止经营 (不符合)
    case_opened INTEGER NOT NULL DEFAULT 0,      -- 立案 (不符合)
    recheck_team TEXT NOT NULL,         -- JSON array of user ids, in order
    recheck_task_id TEXT,
    recheck_inspection_id TEXT,
    outcome_result TEXT,
    closed_at INTEGER,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX followups_state_deadline ON followups (state, deadline, id);
CREATE INDEX followups_establishment ON followups (establishment_id, created_at);

-- Calendar years an admin added; they replace the bundled year of the same number.
CREATE TABLE calendar_years (
    year INTEGER PRIMARY KEY NOT NULL,
    data TEXT NOT NULL,                 -- JSON {holidays: [...], workdays: [...]}
    source TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Tasks get a kind: 'inspection' (drawn) or 'recheck' (复查, from a follow-up, no draw).
-- SQLite cannot drop NOT NULL from a column, so the table is rebuilt (store::Db::migrate runs
-- SQLite's migrations with foreign keys off and checks every key afterwards).
CREATE TABLE tasks_rebuilt (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL DEFAULT 'inspection' CHECK (kind IN ('inspection', 'recheck')),
    plan_id TEXT NOT NULL REFERENCES plans (id),
    draw_id TEXT REFERENCES draws (id),
    followup_id TEXT REFERENCES followups (id),
    establishment_id TEXT NOT NULL REFERENCES establishments (id),
    template_id TEXT NOT NULL,
    template_version INTEGER NOT NULL,
    due_date TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('assigned', 'in_progress', 'submitted', 'cancelled')),
    cancel_reason TEXT,
    must_check_items TEXT NOT NULL DEFAULT '[]',
    draw_order INTEGER NOT NULL,
    submitted_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    seq INTEGER NOT NULL DEFAULT 1,
    created_seq INTEGER NOT NULL DEFAULT 1,
    CHECK ((kind = 'inspection') = (draw_id IS NOT NULL)),
    CHECK ((kind = 'recheck') = (followup_id IS NOT NULL)),
    UNIQUE (draw_id, establishment_id)
);
INSERT INTO tasks_rebuilt (id, kind, plan_id, draw_id, followup_id, establishment_id, template_id,
    template_version, due_date, state, cancel_reason, must_check_items, draw_order, submitted_at,
    created_at, updated_at, seq, created_seq)
SELECT id, 'inspection', plan_id, draw_id, NULL, establishment_id, template_id, template_version,
    due_date, state, cancel_reason, must_check_items, draw_order, submitted_at, created_at,
    updated_at, seq, created_seq
FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_rebuilt RENAME TO tasks;
CREATE INDEX tasks_plan_state ON tasks (plan_id, state);
CREATE INDEX tasks_establishment ON tasks (establishment_id, state);
CREATE INDEX tasks_seq ON tasks (seq);
CREATE UNIQUE INDEX tasks_one_recheck ON tasks (followup_id) WHERE followup_id IS NOT NULL;
