-- The flagged queue and its dashboard count (issue 11). A waiting inspection is flagged when
-- the server flagged it (`server_flags`) or one of its photos carries a flag. Counting that by
-- probing every waiting inspection's photos cost most of the dashboard's time, so the answer is
-- kept on the inspection. Triggers keep it, so every write path (submission, the flag
-- recompute, photo processing, photo deletion, bulk loads) keeps it true without remembering.
ALTER TABLE inspections ADD COLUMN flagged INTEGER NOT NULL DEFAULT 0;

UPDATE inspections SET flagged = CASE
    WHEN (server_flags IS NOT NULL AND server_flags <> '[]')
      OR EXISTS (SELECT 1 FROM photos ph WHERE ph.inspection_id = inspections.id
                 AND ph.flags IS NOT NULL AND ph.flags <> '[]') THEN 1 ELSE 0 END;

CREATE TRIGGER inspections_flagged_insert AFTER INSERT ON inspections
WHEN NEW.server_flags IS NOT NULL AND NEW.server_flags <> '[]'
BEGIN
    UPDATE inspections SET flagged = 1 WHERE id = NEW.id;
END;

CREATE TRIGGER inspections_flagged_update AFTER UPDATE OF server_flags ON inspections
BEGIN
    UPDATE inspections SET flagged = CASE
        WHEN (NEW.server_flags IS NOT NULL AND NEW.server_flags <> '[]')
          OR EXISTS (SELECT 1 FROM photos ph WHERE ph.inspection_id = NEW.id
                     AND ph.flags IS NOT NULL AND ph.flags <> '[]') THEN 1 ELSE 0 END
    WHERE id = NEW.id;
END;

CREATE TRIGGER photos_flagged_insert AFTER INSERT ON photos
WHEN NEW.flags IS NOT NULL AND NEW.flags <> '[]'
BEGIN
    UPDATE inspections SET flagged = 1 WHERE id = NEW.inspection_id;
END;

CREATE TRIGGER photos_flagged_update AFTER UPDATE OF flags, inspection_id ON photos
BEGIN
    UPDATE inspections SET flagged = CASE
        WHEN (server_flags IS NOT NULL AND server_flags <> '[]')
          OR EXISTS (SELECT 1 FROM photos ph WHERE ph.inspection_id = inspections.id
                     AND ph.flags IS NOT NULL AND ph.flags <> '[]') THEN 1 ELSE 0 END
    WHERE id IN (NEW.inspection_id, OLD.inspection_id);
END;

CREATE TRIGGER photos_flagged_delete AFTER DELETE ON photos
BEGIN
    UPDATE inspections SET flagged = CASE
        WHEN (server_flags IS NOT NULL AND server_flags <> '[]')
          OR EXISTS (SELECT 1 FROM photos ph WHERE ph.inspection_id = inspections.id
                     AND ph.flags IS NOT NULL AND ph.flags <> '[]') THEN 1 ELSE 0 END
    WHERE id = OLD.inspection_id;
END;

-- The flagged queue walks the flagged inspections of one review state (waiting) in submission
-- order; its count reads this small index alone. The predicate is the queue's `flagged = 1`.
CREATE INDEX inspections_flagged ON inspections (review_state, submitted_at, id) WHERE flagged = 1;
