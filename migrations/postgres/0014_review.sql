-- Review and follow-up (issue 11): review decisions on inspections, the review history that
-- reaches the team's devices by sync, 整改 orders with their 复查 (recheck) tasks, and the
-- working-day calendar years admins add.

-- The inspection's review. `review_state` (already a column) is NULL while the team works,
-- 'submitted' once submitted, then 'approved' | 'returned' | 'rejected'. `review_round`
-- counts submissions (1 = first). An override keeps the computed result beside it.
ALTER TABLE inspections ADD COLUMN review_round BIGINT NOT NULL DEFAULT 0;
ALTER TABLE inspections ADD COLUMN override_result TEXT
    CHECK (override_result IN ('compliant', 'basically_compliant', 'non_compliant'));
ALTER TABLE inspections ADD COLUMN override_reason TEXT;
ALTER TABLE inspections ADD COLUMN reviewed_by TEXT;
ALTER TABLE inspections ADD COLUMN reviewed_at BIGINT;
CREATE INDEX inspections_review ON inspections (review_state, submitted_at, id);

-- One row per decision, never updated: the history of every round. Synced (pull only) to the
-- team's devices, so a return's comments arrive with the inspection; `internal_note` is the
-- section's own and is never synced, printed or published.
CREATE TABLE reviews (
    id TEXT PRIMARY KEY NOT NULL,
    inspection_id TEXT NOT NULL REFERENCES inspections (id),
    round BIGINT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('approved', 'returned', 'rejected')),
    comment TEXT,
    item_comments TEXT NOT NULL DEFAULT '[]',
    override_result TEXT
        CHECK (override_result IN ('compliant', 'basically_compliant', 'non_compliant')),
    override_reason TEXT,
    internal_note TEXT,
    reviewer_id TEXT NOT NULL REFERENCES users (id),
    decided_at BIGINT NOT NULL,
    created_seq BIGINT NOT NULL,
    seq BIGINT NOT NULL,
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
    order_text TEXT,
    ordered_on TEXT NOT NULL,
    period_working_days BIGINT NOT NULL CHECK (period_working_days > 0),
    deadline TEXT NOT NULL,
    failed_items TEXT NOT NULL,
    stop_operating BIGINT NOT NULL DEFAULT 0,
    case_opened BIGINT NOT NULL DEFAULT 0,
    recheck_team TEXT NOT NULL,
    recheck_task_id TEXT,
    recheck_inspection_id TEXT,
    outcome_result TEXT,
    closed_at BIGINT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX followups_state_deadline ON followups (state, deadline, id);
CREATE INDEX followups_establishment ON followups (establishment_id, created_at);

CREATE TABLE calendar_years (
    year BIGINT PRIMARY KEY NOT NULL,
    data TEXT NOT NULL,
    source TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Tasks get a kind: 'inspection' (drawn) or 'recheck' (复查, from a follow-up, no draw).
ALTER TABLE tasks ADD COLUMN kind TEXT NOT NULL DEFAULT 'inspection'
    CHECK (kind IN ('inspection', 'recheck'));
ALTER TABLE tasks ADD COLUMN followup_id TEXT REFERENCES followups (id);
ALTER TABLE tasks ALTER COLUMN draw_id DROP NOT NULL;
ALTER TABLE tasks ADD CONSTRAINT tasks_kind_draw CHECK ((kind = 'inspection') = (draw_id IS NOT NULL));
ALTER TABLE tasks ADD CONSTRAINT tasks_kind_followup CHECK ((kind = 'recheck') = (followup_id IS NOT NULL));
CREATE UNIQUE INDEX tasks_one_recheck ON tasks (followup_id) WHERE followup_id IS NOT NULL;
