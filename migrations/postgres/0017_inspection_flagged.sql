-- The flagged queue and its dashboard count (issue 11). A waiting inspection is flagged when
-- the server flagged it (`server_flags`) or one of its photos carries a flag. Counting that by
-- probing every waiting inspection's photos cost most of the dashboard's time, so the answer is
-- kept on the inspection. Triggers keep it, so every write path (submission, the flag
-- recompute, photo processing, photo deletion, bulk loads) keeps it true without remembering.
ALTER TABLE inspections ADD COLUMN flagged BIGINT NOT NULL DEFAULT 0;

UPDATE inspections SET flagged = CASE
    WHEN (server_flags IS NOT NULL AND server_flags <> '[]')
      OR EXISTS (SELECT 1 FROM photos ph WHERE ph.inspection_id = inspections.id
                 AND ph.flags IS NOT NULL AND ph.flags <> '[]') THEN 1 ELSE 0 END;

-- Writes only when the answer changes (an UPDATE is a new row version on PostgreSQL).
CREATE FUNCTION inspection_flagged_refresh(target TEXT) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    want BIGINT;
BEGIN
    SELECT CASE
        WHEN (i.server_flags IS NOT NULL AND i.server_flags <> '[]')
          OR EXISTS (SELECT 1 FROM photos ph WHERE ph.inspection_id = i.id
                     AND ph.flags IS NOT NULL AND ph.flags <> '[]') THEN 1 ELSE 0 END
    INTO want FROM inspections i WHERE i.id = target;
    UPDATE inspections SET flagged = want WHERE id = target AND flagged <> want;
END;
$$;

CREATE FUNCTION inspections_flagged_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM inspection_flagged_refresh(NEW.id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER inspections_flagged_insert AFTER INSERT ON inspections
    FOR EACH ROW WHEN (NEW.server_flags IS NOT NULL AND NEW.server_flags <> '[]')
    EXECUTE FUNCTION inspections_flagged_trigger();
CREATE TRIGGER inspections_flagged_update AFTER UPDATE OF server_flags ON inspections
    FOR EACH ROW EXECUTE FUNCTION inspections_flagged_trigger();

CREATE FUNCTION photos_flagged_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM inspection_flagged_refresh(NEW.inspection_id);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM inspection_flagged_refresh(OLD.inspection_id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER photos_flagged_insert AFTER INSERT ON photos
    FOR EACH ROW WHEN (NEW.flags IS NOT NULL AND NEW.flags <> '[]')
    EXECUTE FUNCTION photos_flagged_trigger();
CREATE TRIGGER photos_flagged_update AFTER UPDATE OF flags, inspection_id ON photos
    FOR EACH ROW EXECUTE FUNCTION photos_flagged_trigger();
CREATE TRIGGER photos_flagged_delete AFTER DELETE ON photos
    FOR EACH ROW EXECUTE FUNCTION photos_flagged_trigger();

-- The flagged queue walks the flagged inspections of one review state (waiting) in submission
-- order; its count reads this small index alone. The predicate is the queue's `flagged = 1`.
CREATE INDEX inspections_flagged ON inspections (review_state, submitted_at, id) WHERE flagged = 1;
