-- A task's team can change (a reviewer reassigns a task after rejecting its inspection), so a
-- device's scope is per membership, not per task (issue 11):
-- - `added_seq`: the change that put the inspector on the task. Everything of the task is new
--   to their device after it (sent as `created`), however old the records are.
-- - `task_member_removals`: the change that took them off. Their device is told to delete the
--   task and its records (and its establishment when no other task of theirs needs it).
--   Purged with the tombstones: a cursor from before a purge gets a full replacement.
ALTER TABLE task_members ADD COLUMN added_seq BIGINT NOT NULL DEFAULT 0;
UPDATE task_members SET added_seq = (SELECT t.created_seq FROM tasks t WHERE t.id = task_members.task_id);

CREATE TABLE task_member_removals (
    task_id TEXT NOT NULL REFERENCES tasks (id),
    inspector_id TEXT NOT NULL REFERENCES users (id),
    seq BIGINT NOT NULL,
    removed_at BIGINT NOT NULL,
    PRIMARY KEY (task_id, inspector_id)
);
CREATE INDEX task_member_removals_inspector ON task_member_removals (inspector_id, seq);
