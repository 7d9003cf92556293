-- A number that changes whenever anything a public list page shows changes (issue 12): list
-- issues, their entries, entry photos and lifecycle updates. Servers cache rendered pages of
-- published issues under it and read it (one row by key) before every page, so a page is
-- rebuilt only after a change, and every instance of the API sees the change at its commit.
-- Triggers, not the use cases, keep it: no write path to these tables can forget it. Writers
-- of these tables queue on the row until commit; they are the reviewers' rare list writes.
CREATE TABLE public_version (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    n BIGINT NOT NULL
);
INSERT INTO public_version (id, n) VALUES (1, 1);

CREATE FUNCTION public_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE public_version SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER public_version_issues AFTER INSERT OR UPDATE OR DELETE ON list_issues
FOR EACH STATEMENT EXECUTE FUNCTION public_version_bump();
CREATE TRIGGER public_version_entries AFTER INSERT OR UPDATE OR DELETE ON list_entries
FOR EACH STATEMENT EXECUTE FUNCTION public_version_bump();
CREATE TRIGGER public_version_photos AFTER INSERT OR UPDATE OR DELETE ON list_entry_photos
FOR EACH STATEMENT EXECUTE FUNCTION public_version_bump();
CREATE TRIGGER public_version_updates AFTER INSERT OR UPDATE OR DELETE ON list_entry_updates
FOR EACH STATEMENT EXECUTE FUNCTION public_version_bump();
