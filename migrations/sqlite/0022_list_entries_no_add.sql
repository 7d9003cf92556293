-- A published list issue gains no entries either: 0019 froze its entries against UPDATE and
-- DELETE, but an INSERT (or an UPDATE moving a draft's entry into it) went through the
-- database unchecked; only the use cases refused it.
CREATE TRIGGER list_entries_published_no_add BEFORE INSERT ON list_entries
WHEN (SELECT state FROM list_issues WHERE id = NEW.issue_id) = 'published'
BEGIN
    SELECT RAISE(ABORT, 'a published list issue gains no entries');
END;
CREATE TRIGGER list_entries_published_no_move BEFORE UPDATE OF issue_id ON list_entries
WHEN (SELECT state FROM list_issues WHERE id = NEW.issue_id) = 'published'
BEGIN
    SELECT RAISE(ABORT, 'a published list issue gains no entries');
END;
