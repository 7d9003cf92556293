-- Reviewer queues (issue 11): the overdue-tasks queue walks open tasks by due date. A partial
-- index holds only the open ones (most tasks end submitted), in the queue's order, so the first
-- page reads as many index entries as it shows. Its predicate is written exactly as the
-- queue's condition (store::queues) so both planners match it.
CREATE INDEX tasks_open_due ON tasks (due_date, id) WHERE state IN ('assigned', 'in_progress');
