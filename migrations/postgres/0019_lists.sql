-- The red/black list (红黑榜, issue 12): issues, their entries, the photos made public with an
-- entry, and each entry's lifecycle (曝光 → 整改 → 公示 → 达标; a red entry revoked).
--
-- Nothing published changes or goes: a published issue, its entries and their photos are
-- frozen by triggers (a correction is a new revision, `revises_id`, with a visible note), and
-- lifecycle updates are append-only. What is public about an entry is copied onto it (the
-- establishment's public identity and WGS-84 point as they were when it was listed), so a
-- later registry edit never rewrites a published issue.

CREATE TABLE list_issues (
    id TEXT PRIMARY KEY NOT NULL,
    issue_no TEXT NOT NULL,                 -- 期号, e.g. 2026年第11期
    revision BIGINT NOT NULL DEFAULT 1,    -- 1, then 2, 3 ... for corrections
    revises_id TEXT REFERENCES list_issues (id),
    revision_note TEXT,                     -- public: what the correction changed
    title TEXT NOT NULL,
    theme TEXT NOT NULL,
    district TEXT NOT NULL,
    period_start TEXT NOT NULL,             -- YYYY-MM-DD
    period_end TEXT NOT NULL,
    criteria TEXT NOT NULL,                 -- JSON lists::Criteria used for the candidates
    state TEXT NOT NULL CHECK (state IN ('draft', 'published')),
    published_at BIGINT,
    published_by TEXT REFERENCES users (id),
    -- The signed audit checkpoint note taken in the publishing transaction.
    checkpoint TEXT,
    -- Set on a published revision when a later one is published (the only change it takes).
    superseded_by TEXT REFERENCES list_issues (id),
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (issue_no, revision)
);
CREATE INDEX list_issues_published ON list_issues (state, published_at);

CREATE TABLE list_entries (
    id TEXT PRIMARY KEY NOT NULL,
    issue_id TEXT NOT NULL REFERENCES list_issues (id),
    list_type TEXT NOT NULL CHECK (list_type IN ('red', 'black')),
    position BIGINT NOT NULL,
    establishment_id TEXT NOT NULL REFERENCES establishments (id),
    -- The approved inspection the entry rests on (NULL once sampling results can be a basis).
    inspection_id TEXT REFERENCES inspections (id),
    inspected_on TEXT,                      -- YYYY-MM-DD, the basis's date (bureau's zone)
    result TEXT CHECK (result IN ('compliant', 'basically_compliant', 'non_compliant')),
    -- Public identity as listed.
    sign_name TEXT NOT NULL,                -- 牌匾名称
    licensed_name TEXT NOT NULL,            -- 营业执照名称
    license_no TEXT,
    address TEXT NOT NULL,                  -- 经营地址
    town TEXT NOT NULL,
    category TEXT NOT NULL,
    lng DOUBLE PRECISION,                               -- WGS-84
    lat DOUBLE PRECISION,
    reason TEXT NOT NULL,                   -- 上榜理由
    measures TEXT,                          -- 处理措施 (black entries)
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (issue_id, establishment_id)
);
CREATE INDEX list_entries_issue ON list_entries (issue_id, list_type, position);
CREATE INDEX list_entries_establishment ON list_entries (establishment_id);

-- Photos made public with an entry (only these ever are).
CREATE TABLE list_entry_photos (
    entry_id TEXT NOT NULL REFERENCES list_entries (id),
    photo_id TEXT NOT NULL REFERENCES photos (id),
    position BIGINT NOT NULL,
    PRIMARY KEY (entry_id, photo_id)
);
CREATE INDEX list_entry_photos_photo ON list_entry_photos (photo_id);

-- An entry's lifecycle after publication, public, append-only: `rectified` (整改后信息: the
-- black-listed shop fixed its problems and passed a recheck) and `revoked` (a red entry whose
-- shop later failed).
CREATE TABLE list_entry_updates (
    id TEXT PRIMARY KEY NOT NULL,
    entry_id TEXT NOT NULL REFERENCES list_entries (id),
    kind TEXT NOT NULL CHECK (kind IN ('rectified', 'revoked')),
    occurred_on TEXT NOT NULL,              -- YYYY-MM-DD
    text TEXT NOT NULL,                     -- public
    inspection_id TEXT REFERENCES inspections (id),
    followup_id TEXT REFERENCES followups (id),
    created_by TEXT NOT NULL,               -- a user id, or 'system' for automatic revocations
    created_at BIGINT NOT NULL,
    UNIQUE (entry_id, kind)
);
CREATE INDEX list_entry_updates_entry ON list_entry_updates (entry_id);

-- A published issue takes one change only: `superseded_by`, once.
CREATE FUNCTION list_issues_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'published' THEN
        IF TG_OP = 'DELETE' OR NEW.state IS DISTINCT FROM OLD.state
           OR NEW.issue_no IS DISTINCT FROM OLD.issue_no OR NEW.revision IS DISTINCT FROM OLD.revision
           OR NEW.revises_id IS DISTINCT FROM OLD.revises_id OR NEW.revision_note IS DISTINCT FROM OLD.revision_note
           OR NEW.title IS DISTINCT FROM OLD.title OR NEW.theme IS DISTINCT FROM OLD.theme
           OR NEW.district IS DISTINCT FROM OLD.district OR NEW.period_start IS DISTINCT FROM OLD.period_start
           OR NEW.period_end IS DISTINCT FROM OLD.period_end OR NEW.criteria IS DISTINCT FROM OLD.criteria
           OR NEW.published_at IS DISTINCT FROM OLD.published_at OR NEW.published_by IS DISTINCT FROM OLD.published_by
           OR NEW.checkpoint IS DISTINCT FROM OLD.checkpoint
           OR (OLD.superseded_by IS NOT NULL AND NEW.superseded_by IS DISTINCT FROM OLD.superseded_by) THEN
            RAISE EXCEPTION 'a published list issue is immutable';
        END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER list_issues_published_frozen BEFORE UPDATE OR DELETE ON list_issues
FOR EACH ROW EXECUTE FUNCTION list_issues_frozen();

CREATE FUNCTION list_entries_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT state FROM list_issues WHERE id = OLD.issue_id) = 'published' THEN
        RAISE EXCEPTION 'an entry of a published list issue is immutable';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER list_entries_published_frozen BEFORE UPDATE OR DELETE ON list_entries
FOR EACH ROW EXECUTE FUNCTION list_entries_frozen();

CREATE FUNCTION list_entry_photos_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    entry TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN entry := OLD.entry_id; ELSE entry := NEW.entry_id; END IF;
    IF (SELECT i.state FROM list_entries e JOIN list_issues i ON i.id = e.issue_id WHERE e.id = entry) = 'published' THEN
        RAISE EXCEPTION 'the photos of a published entry are immutable';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER list_entry_photos_published_frozen BEFORE INSERT OR UPDATE OR DELETE ON list_entry_photos
FOR EACH ROW EXECUTE FUNCTION list_entry_photos_frozen();

CREATE FUNCTION list_entry_updates_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'list entry updates are append-only';
END
$$;
CREATE TRIGGER list_entry_updates_append_only BEFORE UPDATE OR DELETE ON list_entry_updates
FOR EACH ROW EXECUTE FUNCTION list_entry_updates_append_only();

-- 一公开 of a round's results: once the section publishes a plan's results, its approved
-- inspections' results (never their comments, reasons or team) are public.
ALTER TABLE plans ADD COLUMN results_published_at BIGINT;
ALTER TABLE plans ADD COLUMN results_published_by TEXT REFERENCES users (id);
