-- Public reads that do not grow with the data (issue 12).
--
-- 1. A published issue's red and black entry counts are stored at publication (entries can
--    no longer change then), so the issue index does not count every issue's entries on every
--    request. NULL while a draft; frozen once published, like the rest of the row.
ALTER TABLE list_issues ADD COLUMN red_count BIGINT;
ALTER TABLE list_issues ADD COLUMN black_count BIGINT;
UPDATE list_issues SET
    red_count = (SELECT COUNT(*) FROM list_entries e WHERE e.issue_id = list_issues.id AND e.list_type = 'red'),
    black_count = (SELECT COUNT(*) FROM list_entries e WHERE e.issue_id = list_issues.id AND e.list_type = 'black')
WHERE state = 'published';
CREATE FUNCTION list_issues_counts_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'published' AND (NEW.red_count IS DISTINCT FROM OLD.red_count
                                    OR NEW.black_count IS DISTINCT FROM OLD.black_count) THEN
        RAISE EXCEPTION 'a published list issue is immutable';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER list_issues_counts_frozen BEFORE UPDATE ON list_issues
FOR EACH ROW EXECUTE FUNCTION list_issues_counts_frozen();

-- 2. Entries are read in list order (exports, pages): the index now ends with the id
--    tie-break, so no read sorts an issue's entries. Town and category filters across issues
--    walk the current issues newest first and each issue's matching entries in order, so a
--    page stops after its rows instead of sorting every match.
DROP INDEX list_entries_issue;
CREATE INDEX list_entries_issue ON list_entries (issue_id, list_type, position, id);
CREATE INDEX list_entries_issue_town ON list_entries (issue_id, town, list_type, position, id);
CREATE INDEX list_entries_issue_category ON list_entries (issue_id, category, list_type, position, id);
CREATE INDEX list_issues_current ON list_issues (published_at DESC, id)
WHERE state = 'published' AND superseded_by IS NULL;
