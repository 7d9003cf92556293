-- 随机查餐厅: conflicts of interest, plans (rounds), draws, tasks and their teams.

-- 回避: an inspector who must not inspect an establishment (relative, former employer...).
CREATE TABLE inspector_conflicts (
    id TEXT PRIMARY KEY NOT NULL,
    inspector_id TEXT NOT NULL REFERENCES users (id),
    establishment_id TEXT NOT NULL REFERENCES establishments (id),
    reason TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (inspector_id, establishment_id)
);
CREATE INDEX inspector_conflicts_establishment ON inspector_conflicts (establishment_id);

CREATE TABLE plans (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    round_title TEXT NOT NULL,          -- e.g. 2024年3·15 随机查餐厅 第3期
    theme TEXT NOT NULL,                -- e.g. 餐饮具清洗消毒
    period_start TEXT NOT NULL,         -- YYYY-MM-DD
    period_end TEXT NOT NULL,
    due_date TEXT NOT NULL,
    template_id TEXT NOT NULL,
    template_version BIGINT NOT NULL,
    pool_filter TEXT NOT NULL,          -- JSON: categories, towns, risk_grades
    quotas TEXT NOT NULL,               -- JSON: {"explicit":{..}} or {"weighted":{..}}
    exclude_inspected_within_days BIGINT,
    inspector_ids TEXT NOT NULL,        -- JSON array of user ids (the inspector pool)
    team_size BIGINT NOT NULL CHECK (team_size >= 2),
    status TEXT NOT NULL CHECK (status IN ('draft', 'drawn')),
    current_draw_id TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    FOREIGN KEY (template_id, template_version) REFERENCES checklist_versions (template_id, version)
);

-- Every draw is kept; a redraw supersedes the earlier one, with a reason.
CREATE TABLE draws (
    id TEXT PRIMARY KEY NOT NULL,
    plan_id TEXT NOT NULL REFERENCES plans (id),
    seq BIGINT NOT NULL,
    seed TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    pool_hash TEXT NOT NULL,
    pool_size BIGINT NOT NULL,
    drawn_count BIGINT NOT NULL,
    record TEXT NOT NULL,               -- JSON DrawRecord {input, outcome}
    reason TEXT,                        -- required for a redraw
    drawn_by TEXT NOT NULL,
    drawn_at BIGINT NOT NULL,
    superseded_at BIGINT,
    UNIQUE (plan_id, seq)
);
-- Records are large (≈60 bytes per candidate) and written once: storing them uncompressed
-- saves a pglz pass over megabytes inside the draw's transaction.
ALTER TABLE draws ALTER COLUMN record SET STORAGE EXTERNAL;

-- Covers the candidate-pool query of a draw (status, filters, id, grade): an index-only scan
-- instead of reading every full registry row.
CREATE INDEX establishments_pool ON establishments (status, risk_grade, category, town, id);

CREATE TABLE tasks (
    id TEXT PRIMARY KEY NOT NULL,
    plan_id TEXT NOT NULL REFERENCES plans (id),
    draw_id TEXT NOT NULL REFERENCES draws (id),
    establishment_id TEXT NOT NULL REFERENCES establishments (id),
    template_id TEXT NOT NULL,
    template_version BIGINT NOT NULL,
    due_date TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('assigned', 'in_progress', 'submitted', 'cancelled')),
    cancel_reason TEXT,
    must_check_items TEXT NOT NULL DEFAULT '[]',   -- JSON array of item codes
    draw_order BIGINT NOT NULL,
    submitted_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (draw_id, establishment_id)
);
CREATE INDEX tasks_plan_state ON tasks (plan_id, state);
CREATE INDEX tasks_establishment ON tasks (establishment_id, state);

CREATE TABLE task_members (
    task_id TEXT NOT NULL REFERENCES tasks (id),
    inspector_id TEXT NOT NULL REFERENCES users (id),
    position BIGINT NOT NULL,
    PRIMARY KEY (task_id, inspector_id)
);
CREATE INDEX task_members_inspector ON task_members (inspector_id);

-- Items failed at an establishment's latest inspection: must be checked next time.
CREATE TABLE establishment_followups (
    establishment_id TEXT PRIMARY KEY NOT NULL REFERENCES establishments (id),
    failed_items TEXT NOT NULL,          -- JSON array of item codes
    source_task_id TEXT,
    updated_at BIGINT NOT NULL
);
