-- 食品安全抽检 plans and tasks (issue 13 item 1). A sampling plan is a plan of kind
-- 'sampling': it shares `plans`, `draws` and the draw record with inspection plans (the same
-- auditable draw, verify CLI and public draw page); what only sampling has is in
-- `sampling_plans`. Sampling plans have no checklist, so the template columns become nullable:
-- SQLite drops NOT NULL only by rebuilding the table (store::Db::migrate runs this with
-- foreign keys off and checks every key afterwards).
CREATE TABLE plans_rebuilt (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL DEFAULT 'inspection' CHECK (kind IN ('inspection', 'sampling')),
    name TEXT NOT NULL,
    round_title TEXT NOT NULL,
    theme TEXT NOT NULL,
    period_start TEXT NOT NULL,
    period_end TEXT NOT NULL,
    due_date TEXT NOT NULL,
    template_id TEXT,
    template_version INTEGER,
    pool_filter TEXT NOT NULL,
    quotas TEXT NOT NULL,
    exclude_inspected_within_days INTEGER,
    inspector_ids TEXT NOT NULL,
    team_size INTEGER NOT NULL CHECK (team_size >= 2),
    status TEXT NOT NULL CHECK (status IN ('draft', 'drawn')),
    current_draw_id TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    results_published_at INTEGER,
    results_published_by TEXT REFERENCES users (id),
    CHECK ((kind = 'inspection') = (template_id IS NOT NULL AND template_version IS NOT NULL)),
    FOREIGN KEY (template_id, template_version) REFERENCES checklist_versions (template_id, version)
);
INSERT INTO plans_rebuilt (id, kind, name, round_title, theme, period_start, period_end, due_date,
    template_id, template_version, pool_filter, quotas, exclude_inspected_within_days,
    inspector_ids, team_size, status, current_draw_id, created_by, created_at, updated_at,
    results_published_at, results_published_by)
SELECT id, 'inspection', name, round_title, theme, period_start, period_end, due_date,
    template_id, template_version, pool_filter, quotas, exclude_inspected_within_days,
    inspector_ids, team_size, status, current_draw_id, created_by, created_at, updated_at,
    results_published_at, results_published_by
FROM plans;
DROP TABLE plans;
ALTER TABLE plans_rebuilt RENAME TO plans;

-- What a sampling plan adds: 检验目的, 抽样环节, the assigned lab, the category batches and
-- the working days its tasks get.
CREATE TABLE sampling_plans (
    plan_id TEXT PRIMARY KEY NOT NULL REFERENCES plans (id),
    purpose TEXT NOT NULL CHECK (purpose IN ('supervision', 'risk_monitoring')),
    stage TEXT NOT NULL CHECK (stage IN ('production', 'circulation', 'catering')),
    lab_id TEXT NOT NULL REFERENCES labs (id),
    batches TEXT NOT NULL,                  -- JSON [{category_code, batches}]
    task_due_working_days INTEGER NOT NULL CHECK (task_due_working_days BETWEEN 1 AND 120)
);

-- One task per drawn premises, with its share of the plan's batches. Synced later to each
-- sampler of its team (like `tasks`: `seq` is the change position of its last change,
-- `created_seq` of its creation; members carry `added_seq`, removals their own `seq`).
CREATE TABLE sampling_tasks (
    id TEXT PRIMARY KEY NOT NULL,
    plan_id TEXT NOT NULL REFERENCES plans (id),
    draw_id TEXT NOT NULL REFERENCES draws (id),
    establishment_id TEXT NOT NULL REFERENCES establishments (id),
    draw_order INTEGER NOT NULL,
    batches TEXT NOT NULL,                  -- JSON [{category_code, batches}]
    lab_id TEXT NOT NULL REFERENCES labs (id),
    state TEXT NOT NULL CHECK (state IN ('unassigned', 'assigned', 'cancelled')),
    cancel_reason TEXT,
    -- The due date with its rule: `period_days` working days after `due_start_on` (not counted).
    due_date TEXT NOT NULL,
    due_rule TEXT NOT NULL,
    due_period_days INTEGER NOT NULL,
    due_start_on TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    created_seq INTEGER NOT NULL,
    UNIQUE (draw_id, establishment_id)
);
CREATE INDEX sampling_tasks_plan ON sampling_tasks (plan_id, draw_order);
CREATE INDEX sampling_tasks_seq ON sampling_tasks (seq);

CREATE TABLE sampling_task_members (
    task_id TEXT NOT NULL REFERENCES sampling_tasks (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    position INTEGER NOT NULL,
    added_seq INTEGER NOT NULL,
    PRIMARY KEY (task_id, user_id)
);
CREATE INDEX sampling_task_members_user ON sampling_task_members (user_id, added_seq);

CREATE TABLE sampling_task_member_removals (
    task_id TEXT NOT NULL REFERENCES sampling_tasks (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    seq INTEGER NOT NULL,
    removed_at INTEGER NOT NULL,
    PRIMARY KEY (task_id, user_id)
);
CREATE INDEX sampling_task_member_removals_user ON sampling_task_member_removals (user_id, seq);

CREATE INDEX samples_task ON samples (task_id);
