-- Reviewer queues (issue 11): the overdue-tasks queue walks open tasks by due date. A partial
-- index holds only the open ones (most tasks end submitted), in the queue's order, so the first
-- page reads as many index entries as it shows. Its predicate is written exactly as the
-- queue's condition (store::queues) so both planners match it.
CREATE INDEX tasks_open_due ON tasks (due_date, id) WHERE state IN ('assigned', 'in_progress');

-- The flagged queue checks each waiting inspection for a flagged photo; flagged photos are
-- few, so this index is small and the check (or PostgreSQL's hashed subplan) reads only them.
CREATE INDEX photos_flagged ON photos (inspection_id) WHERE flags IS NOT NULL AND flags <> '[]';

-- The waiting and flagged queues (and their counts) walk waiting inspections in submission
-- order; with the flags in the index the flag check reads no table row.
CREATE INDEX inspections_review_flags ON inspections (review_state, submitted_at, id, server_flags);

-- The rechecks-due queue joins each follow-up to its recheck task still open; a small partial
-- index of exactly those tasks keeps that join off the whole tasks table.
CREATE INDEX tasks_open_rechecks ON tasks (id) WHERE kind = 'recheck' AND state <> 'submitted';
