-- Inspections submitted before review existed kept review_state NULL; they are waiting for
-- review (round 1), so the reviewers' `waiting` queue and counts include them. They change, so
-- they take a new sync sequence number and the team's devices pull the new state.
UPDATE sync_counter SET value = value + 1 WHERE id = 1;
UPDATE inspections
SET review_state = 'submitted', review_round = 1,
    seq = (SELECT value FROM sync_counter WHERE id = 1)
WHERE submitted = 1 AND review_state IS NULL;
