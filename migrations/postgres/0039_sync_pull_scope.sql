-- The pull reads tombstones by the ids of the device's tasks (bounded by its scope, whatever
-- the planner's statistics say), within its cursor window.
CREATE INDEX sync_tombstones_task ON sync_tombstones (task_id, seq);
