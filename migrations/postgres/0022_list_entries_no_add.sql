-- A published list issue gains no entries either: 0019 froze its entries against UPDATE and
-- DELETE, but an INSERT (or an UPDATE moving a draft's entry into it) went through the
-- database unchecked; only the use cases refused it.
CREATE FUNCTION list_entries_no_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT state FROM list_issues WHERE id = NEW.issue_id) = 'published' THEN
        RAISE EXCEPTION 'a published list issue gains no entries';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER list_entries_published_no_add BEFORE INSERT OR UPDATE OF issue_id ON list_entries
FOR EACH ROW EXECUTE FUNCTION list_entries_no_add();
