-- A number that changes whenever anything a public list page shows changes (issue 12): list
-- issues, their entries, entry photos and lifecycle updates. Servers cache rendered pages of
-- published issues under it and read it (one row by key) before every page, so a page is
-- rebuilt only after a change, and every instance of the API sees the change at its commit.
-- Triggers, not the use cases, keep it: no write path to these tables can forget it.
CREATE TABLE public_version (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    n INTEGER NOT NULL
);
INSERT INTO public_version (id, n) VALUES (1, 1);

CREATE TRIGGER public_version_issue_insert AFTER INSERT ON list_issues
BEGIN UPDATE public_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER public_version_issue_update AFTER UPDATE ON list_issues
BEGIN UPDATE public_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER public_version_issue_delete AFTER DELETE ON list_issues
BEGIN UPDATE public_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER public_version_entry_insert AFTER INSERT ON list_entries
BEGIN UPDATE public_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER public_version_entry_update AFTER UPDATE ON list_entries
BEGIN UPDATE public_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER public_version_entry_delete AFTER DELETE ON list_entries
BEGIN UPDATE public_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER public_version_photo_insert AFTER INSERT ON list_entry_photos
BEGIN UPDATE public_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER public_version_photo_update AFTER UPDATE ON list_entry_photos
BEGIN UPDATE public_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER public_version_photo_delete AFTER DELETE ON list_entry_photos
BEGIN UPDATE public_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER public_version_update_insert AFTER INSERT ON list_entry_updates
BEGIN UPDATE public_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER public_version_update_update AFTER UPDATE ON list_entry_updates
BEGIN UPDATE public_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER public_version_update_delete AFTER DELETE ON list_entry_updates
BEGIN UPDATE public_version SET n = n + 1 WHERE id = 1; END;
