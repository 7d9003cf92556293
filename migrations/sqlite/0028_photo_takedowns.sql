-- A photo made public with a list entry can be taken down again (a face, a licence plate, a
-- document the reviewer missed): published entries are immutable, so the takedown is its own
-- append-only record, and every public read leaves a taken-down photo out (issue 12). The
-- photo itself stays with its inspection; the reason is internal (it may describe a person).
CREATE TABLE public_photo_takedowns (
    photo_id TEXT PRIMARY KEY NOT NULL REFERENCES photos (id),
    reason TEXT NOT NULL,
    taken_down_by TEXT NOT NULL REFERENCES users (id),
    taken_down_at INTEGER NOT NULL
);
CREATE TRIGGER public_photo_takedowns_no_update BEFORE UPDATE ON public_photo_takedowns
BEGIN
    SELECT RAISE(ABORT, 'a photo takedown is final');
END;
CREATE TRIGGER public_photo_takedowns_no_delete BEFORE DELETE ON public_photo_takedowns
BEGIN
    SELECT RAISE(ABORT, 'a photo takedown is final');
END;
-- Public pages show photos: a takedown changes them (see 0026).
CREATE TRIGGER public_version_takedown_insert AFTER INSERT ON public_photo_takedowns
BEGIN UPDATE public_version SET n = n + 1 WHERE id = 1; END;
