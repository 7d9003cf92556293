-- Checklist templates (检查要点表) and their versions. A template is identified by a stable code
-- (e.g. "catering-2016"); its content lives in numbered versions: draft → published. A published
-- version is immutable (enforced by the code, and by the triggers below) so an inspection can
-- point at (template_id, version) forever.
-- Conventions: UUID text ids, Unix-millisecond integer times, JSON as TEXT.

CREATE TABLE checklist_templates (
    id TEXT PRIMARY KEY NOT NULL,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_by TEXT REFERENCES users (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE checklist_versions (
    template_id TEXT NOT NULL REFERENCES checklist_templates (id),
    version INTEGER NOT NULL CHECK (version >= 1),
    status TEXT NOT NULL CHECK (status IN ('draft', 'published')),
    -- Denormalised from content for listings.
    title TEXT NOT NULL,
    -- JSON of checklist::TemplateContent (sections, items, result rule).
    content TEXT NOT NULL,
    -- The rule's `kind`, e.g. pass_rate_2016.
    rule_kind TEXT NOT NULL,
    item_count INTEGER NOT NULL,
    key_count INTEGER NOT NULL,
    created_by TEXT REFERENCES users (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    published_at INTEGER,
    published_by TEXT REFERENCES users (id),
    PRIMARY KEY (template_id, version),
    CHECK ((status = 'published') = (published_at IS NOT NULL))
);
-- At most one draft per template: edits go to that draft.
CREATE UNIQUE INDEX checklist_versions_one_draft ON checklist_versions (template_id)
    WHERE status = 'draft';

-- Published versions can be neither changed nor deleted.
CREATE TRIGGER checklist_versions_published_no_update
BEFORE UPDATE ON checklist_versions
WHEN OLD.status = 'published'
BEGIN
    SELECT RAISE(ABORT, 'published checklist versions are immutable');
END;

CREATE TRIGGER checklist_versions_published_no_delete
BEFORE DELETE ON checklist_versions
WHEN OLD.status = 'published'
BEGIN
    SELECT RAISE(ABORT, 'published checklist versions are immutable');
END;
