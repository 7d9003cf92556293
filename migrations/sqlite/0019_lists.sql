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
    revision INTEGER NOT NULL DEFAULT 1,    -- 1, then 2, 3 ... for corrections
    revises_id TEXT REFERENCES list_issues (id),
    revision_note TEXT,                     -- public: what the correction changed
    title TEXT NOT NULL,
    theme TEXT NOT NULL,
    district TEXT NOT NULL,
    period_start TEXT NOT NULL,             -- YYYY-MM-DD
    period_end TEXT NOT NULL,
    criteria TEXT NOT NULL,                 -- JSON lists::Criteria used for the candidates
    state TEXT NOT NULL CHECK (state IN ('draft', 'published')),
    published_at INTEGER,
    published_by TEXT REFERENCES users (id),
    -- The signed audit checkpoint note taken in the publishing transaction.
    checkpoint TEXT,
    -- Set on a published revision when a later one is published (the only change it takes).
    superseded_by TEXT REFERENCES list_issues (id),
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (issue_no, revision)
);
CREATE INDEX list_issues_published ON list_issues (state, published_at);

CREATE TABLE list_entries (
    id TEXT PRIMARY KEY NOT NULL,
    issue_id TEXT NOT NULL REFERENCES list_issues (id),
    list_type TEXT NOT NULL CHECK (list_type IN ('red', 'black')),
    position INTEGER NOT NULL,
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
    lng REAL,                               -- WGS-84
    lat REAL,
    reason TEXT NOT NULL,                   -- 上榜理由
    measures TEXT,                          -- 处理措施 (black entries)
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (issue_id, establishment_id)
);
CREATE INDEX list_entries_issue ON list_entries (issue_id, list_type, position);
CREATE INDEX list_entries_establishment ON list_entries (establishment_id);

-- Photos made public with an entry (only these ever are).
CREATE TABLE list_entry_photos (
    entry_id TEXT NOT NULL REFERENCES list_entries (id),
    photo_id TEXT NOT NULL REFERENCES photos (id),
    position INTEGER NOT NULL,
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
    created_at INTEGER NOT NULL,
    UNIQUE (entry_id, kind)
);
CREATE INDEX list_entry_updates_entry ON list_entry_updates (entry_id);

CREATE TRIGGER list_issues_published_frozen BEFORE UPDATE ON list_issues
WHEN OLD.state = 'published' AND (
    NEW.state IS NOT OLD.state OR NEW.issue_no IS NOT OLD.issue_no OR NEW.revision IS NOT OLD.revision
    OR NEW.revises_id IS NOT OLD.revises_id OR NEW.revision_note IS NOT OLD.revision_note
    OR NEW.title IS NOT OLD.title OR NEW.theme IS NOT OLD.theme OR NEW.district IS NOT OLD.district
    OR NEW.period_start IS NOT OLD.period_start OR NEW.period_end IS NOT OLD.period_end
    OR NEW.criteria IS NOT OLD.criteria OR NEW.published_at IS NOT OLD.published_at
    OR NEW.published_by IS NOT OLD.published_by OR NEW.checkpoint IS NOT OLD.checkpoint
    OR (OLD.superseded_by IS NOT NULL AND NEW.superseded_by IS NOT OLD.superseded_by))
BEGIN
    SELECT RAISE(ABORT, 'a published list issue is immutable');
END;
CREATE TRIGGER list_issues_published_kept BEFORE DELETE ON list_issues
WHEN OLD.state = 'published'
BEGIN
    SELECT RAISE(ABORT, 'a published list issue is immutable');
END;
CREATE TRIGGER list_entries_published_frozen BEFORE UPDATE ON list_entries
WHEN (SELECT state FROM list_issues WHERE id = OLD.issue_id) = 'published'
BEGIN
    SELECT RAISE(ABORT, 'an entry of a published list issue is immutable');
END;
CREATE TRIGGER list_entries_published_kept BEFORE DELETE ON list_entries
WHEN (SELECT state FROM list_issues WHERE id = OLD.issue_id) = 'published'
BEGIN
    SELECT RAISE(ABORT, 'an entry of a published list issue is immutable');
END;
CREATE TRIGGER list_entry_photos_published_frozen BEFORE DELETE ON list_entry_photos
WHEN (SELECT i.state FROM list_entries e JOIN list_issues i ON i.id = e.issue_id WHERE e.id = OLD.entry_id) = 'published'
BEGIN
    SELECT RAISE(ABORT, 'the photos of a published entry are immutable');
END;
CREATE TRIGGER list_entry_photos_published_no_add BEFORE INSERT ON list_entry_photos
WHEN (SELECT i.state FROM list_entries e JOIN list_issues i ON i.id = e.issue_id WHERE e.id = NEW.entry_id) = 'published'
BEGIN
    SELECT RAISE(ABORT, 'the photos of a published entry are immutable');
END;
CREATE TRIGGER list_entry_updates_no_update BEFORE UPDATE ON list_entry_updates
BEGIN
    SELECT RAISE(ABORT, 'list entry updates are append-only');
END;
CREATE TRIGGER list_entry_updates_no_delete BEFORE DELETE ON list_entry_updates
BEGIN
    SELECT RAISE(ABORT, 'list entry updates are append-only');
END;

-- 一公开 of a round's results: once the section publishes a plan's results, its approved
-- inspections' results (never their comments, reasons or team) are public.
ALTER TABLE plans ADD COLUMN results_published_at INTEGER;
ALTER TABLE plans ADD COLUMN results_published_by TEXT REFERENCES users (id);
