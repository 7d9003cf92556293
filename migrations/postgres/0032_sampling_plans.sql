-- 食品安全抽检 plans and tasks (issue 13 item 1). A sampling plan is a plan of kind
-- 'sampling': it shares `plans`, `draws` and the draw record with inspection plans (the same
-- auditable draw, verify CLI and public draw page); what only sampling has is in
-- `sampling_plans`. Sampling plans have no checklist, so the template columns become nullable.
ALTER TABLE plans ADD COLUMN kind TEXT NOT NULL DEFAULT 'inspection' CHECK (kind IN ('inspection', 'sampling'));
ALTER TABLE plans ALTER COLUMN template_id DROP NOT NULL;
ALTER TABLE plans ALTER COLUMN template_version DROP NOT NULL;
ALTER TABLE plans ADD CONSTRAINT plans_template_by_kind
    CHECK ((kind = 'inspection') = (template_id IS NOT NULL AND template_version IS NOT NULL));

-- What a sampling plan adds: 检验目的, 抽样环节, the assigned lab, the category batches and
-- the working days its tasks get.
CREATE TABLE sampling_plans (
    plan_id TEXT PRIMARY KEY NOT NULL REFERENCES plans (id),
    purpose TEXT NOT NULL CHECK (purpose IN ('supervision', 'risk_monitoring')),
    stage TEXT NOT NULL CHECK (stage IN ('production', 'circulation', 'catering')),
    lab_id TEXT NOT NULL REFERENCES labs (id),
    batches TEXT NOT NULL,                  -- JSON [{category_code, batches}]
    task_due_working_days BIGINT NOT NULL CHECK (task_due_working_days BETWEEN 1 AND 120)
);

-- One task per drawn premises, with its share of the plan's batches. Synced later to each
-- sampler of its team (like `tasks`: `seq` is the change position of its last change,
-- `created_seq` of its creation; members carry `added_seq`, removals their own `seq`).
CREATE TABLE sampling_tasks (
    id TEXT PRIMARY KEY NOT NULL,
    plan_id TEXT NOT NULL REFERENCES plans (id),
    draw_id TEXT NOT NULL REFERENCES draws (id),
    establishment_id TEXT NOT NULL REFERENCES establishments (id),
    draw_order BIGINT NOT NULL,
    batches TEXT NOT NULL,                  -- JSON [{category_code, batches}]
    lab_id TEXT NOT NULL REFERENCES labs (id),
    state TEXT NOT NULL CHECK (state IN ('unassigned', 'assigned', 'cancelled')),
    cancel_reason TEXT,
    -- The due date with its rule: `period_days` working days after `due_start_on` (not counted).
    due_date TEXT NOT NULL,
    due_rule TEXT NOT NULL,
    due_period_days BIGINT NOT NULL,
    due_start_on TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    created_seq BIGINT NOT NULL,
    UNIQUE (draw_id, establishment_id)
);
CREATE INDEX sampling_tasks_plan ON sampling_tasks (plan_id, draw_order);
CREATE INDEX sampling_tasks_seq ON sampling_tasks (seq);

CREATE TABLE sampling_task_members (
    task_id TEXT NOT NULL REFERENCES sampling_tasks (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    position BIGINT NOT NULL,
    added_seq BIGINT NOT NULL,
    PRIMARY KEY (task_id, user_id)
);
CREATE INDEX sampling_task_members_user ON sampling_task_members (user_id, added_seq);

CREATE TABLE sampling_task_member_removals (
    task_id TEXT NOT NULL REFERENCES sampling_tasks (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    seq BIGINT NOT NULL,
    removed_at BIGINT NOT NULL,
    PRIMARY KEY (task_id, user_id)
);
CREATE INDEX sampling_task_member_removals_user ON sampling_task_member_removals (user_id, seq);

CREATE INDEX samples_task ON samples (task_id);
