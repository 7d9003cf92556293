-- A photo made public with a list entry can be taken down again (a face, a licence plate, a
-- document the reviewer missed): published entries are immutable, so the takedown is its own
-- append-only record, and every public read leaves a taken-down photo out (issue 12). The
-- photo itself stays with its inspection; the reason is internal (it may describe a person).
CREATE TABLE public_photo_takedowns (
    photo_id TEXT PRIMARY KEY NOT NULL REFERENCES photos (id),
    reason TEXT NOT NULL,
    taken_down_by TEXT NOT NULL REFERENCES users (id),
    taken_down_at BIGINT NOT NULL
);
CREATE FUNCTION public_photo_takedowns_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a photo takedown is final';
END
$$;
CREATE TRIGGER public_photo_takedowns_final BEFORE UPDATE OR DELETE ON public_photo_takedowns
FOR EACH ROW EXECUTE FUNCTION public_photo_takedowns_final();
-- Public pages show photos: a takedown changes them (see 0026).
CREATE TRIGGER public_version_takedowns AFTER INSERT OR UPDATE OR DELETE ON public_photo_takedowns
FOR EACH STATEMENT EXECUTE FUNCTION public_version_bump();
