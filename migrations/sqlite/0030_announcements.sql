-- The public sampling announcement (抽检信息公告, issue 13 item 7): a draft per period proposes
-- every sample with a reported lab result in it (qualified and unqualified); the section may
-- exclude a sample with an internal reason, then publishes. Publication copies the public facts
-- of each sample into announcement_samples and its failed items into announcement_items, so a
-- later edit of a sample cannot change what was published. A published announcement, its rows
-- and its exclusions are frozen by the triggers below.

CREATE TABLE announcements (
    id TEXT PRIMARY KEY NOT NULL,
    announcement_no TEXT NOT NULL UNIQUE,   -- 期号, e.g. 2026年第3期
    title TEXT NOT NULL,
    period_start TEXT NOT NULL,             -- YYYY-MM-DD, bureau days, inclusive
    period_end TEXT NOT NULL,
    stage TEXT CHECK (stage IN ('production', 'circulation', 'catering')),   -- NULL: every stage
    category_code TEXT REFERENCES food_categories (code),                    -- NULL: every category
    state TEXT NOT NULL CHECK (state IN ('draft', 'published')),
    qualified_count INTEGER NOT NULL DEFAULT 0,     -- set at publication
    unqualified_count INTEGER NOT NULL DEFAULT 0,
    published_at INTEGER,
    published_by TEXT REFERENCES users (id),
    -- The signed audit checkpoint note taken before the publishing transaction.
    checkpoint TEXT,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX announcements_published ON announcements (state, published_at);

-- Samples the section left out of a draft, with its internal reason (never public).
CREATE TABLE announcement_exclusions (
    announcement_id TEXT NOT NULL REFERENCES announcements (id),
    sample_id TEXT NOT NULL REFERENCES samples (id),
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (announcement_id, sample_id)
);

-- The public facts of each published sample, copied at publication.
CREATE TABLE announcement_samples (
    announcement_id TEXT NOT NULL REFERENCES announcements (id),
    position INTEGER NOT NULL,              -- 1, 2, ... within its verdict's table
    verdict TEXT NOT NULL CHECK (verdict IN ('qualified', 'unqualified')),
    sample_id TEXT NOT NULL REFERENCES samples (id),
    sample_no TEXT NOT NULL,                -- 抽样单编号
    premises_name TEXT NOT NULL,            -- 被抽样单位 as on the form (牌匾名称)
    premises_licensed_name TEXT NOT NULL,   -- 营业执照名称 (registry, at publication)
    premises_address TEXT NOT NULL,
    town TEXT NOT NULL,
    sample_name TEXT NOT NULL,
    brand TEXT NOT NULL,                    -- "/" when not applicable
    specification TEXT NOT NULL,
    production_date_or_batch TEXT NOT NULL,
    producer_name TEXT NOT NULL,
    producer_address TEXT NOT NULL,
    category_code TEXT NOT NULL,
    category_name TEXT NOT NULL,
    stage TEXT NOT NULL CHECK (stage IN ('production', 'circulation', 'catering')),
    lab_name TEXT NOT NULL,
    report_no TEXT NOT NULL,
    PRIMARY KEY (announcement_id, verdict, position),
    UNIQUE (announcement_id, sample_id)
);
CREATE INDEX announcement_samples_sample ON announcement_samples (sample_id);

-- The failed items of each published unqualified sample.
CREATE TABLE announcement_items (
    announcement_id TEXT NOT NULL REFERENCES announcements (id),
    sample_id TEXT NOT NULL,
    position INTEGER NOT NULL,              -- the item's position in the lab's report
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    unit TEXT,
    limit_text TEXT,
    standard TEXT,
    PRIMARY KEY (announcement_id, sample_id, position),
    FOREIGN KEY (announcement_id, sample_id) REFERENCES announcement_samples (announcement_id, sample_id)
);

CREATE TRIGGER announcements_published_frozen BEFORE UPDATE ON announcements
WHEN OLD.state = 'published'
BEGIN
    SELECT RAISE(ABORT, 'a published announcement is immutable');
END;
CREATE TRIGGER announcements_published_kept BEFORE DELETE ON announcements
WHEN OLD.state = 'published'
BEGIN
    SELECT RAISE(ABORT, 'a published announcement is immutable');
END;

CREATE TRIGGER announcement_exclusions_frozen_insert BEFORE INSERT ON announcement_exclusions
WHEN (SELECT state FROM announcements WHERE id = NEW.announcement_id) = 'published'
BEGIN
    SELECT RAISE(ABORT, 'the exclusions of a published announcement are immutable');
END;
CREATE TRIGGER announcement_exclusions_frozen_update BEFORE UPDATE ON announcement_exclusions
WHEN (SELECT state FROM announcements WHERE id = OLD.announcement_id) = 'published'
BEGIN
    SELECT RAISE(ABORT, 'the exclusions of a published announcement are immutable');
END;
CREATE TRIGGER announcement_exclusions_frozen_delete BEFORE DELETE ON announcement_exclusions
WHEN (SELECT state FROM announcements WHERE id = OLD.announcement_id) = 'published'
BEGIN
    SELECT RAISE(ABORT, 'the exclusions of a published announcement are immutable');
END;

CREATE TRIGGER announcement_samples_frozen_insert BEFORE INSERT ON announcement_samples
WHEN (SELECT state FROM announcements WHERE id = NEW.announcement_id) = 'published'
BEGIN
    SELECT RAISE(ABORT, 'the rows of a published announcement are immutable');
END;
CREATE TRIGGER announcement_samples_frozen_update BEFORE UPDATE ON announcement_samples
WHEN (SELECT state FROM announcements WHERE id = OLD.announcement_id) = 'published'
BEGIN
    SELECT RAISE(ABORT, 'the rows of a published announcement are immutable');
END;
CREATE TRIGGER announcement_samples_frozen_delete BEFORE DELETE ON announcement_samples
WHEN (SELECT state FROM announcements WHERE id = OLD.announcement_id) = 'published'
BEGIN
    SELECT RAISE(ABORT, 'the rows of a published announcement are immutable');
END;

CREATE TRIGGER announcement_items_frozen_insert BEFORE INSERT ON announcement_items
WHEN (SELECT state FROM announcements WHERE id = NEW.announcement_id) = 'published'
BEGIN
    SELECT RAISE(ABORT, 'the rows of a published announcement are immutable');
END;
CREATE TRIGGER announcement_items_frozen_update BEFORE UPDATE ON announcement_items
WHEN (SELECT state FROM announcements WHERE id = OLD.announcement_id) = 'published'
BEGIN
    SELECT RAISE(ABORT, 'the rows of a published announcement are immutable');
END;
CREATE TRIGGER announcement_items_frozen_delete BEFORE DELETE ON announcement_items
WHEN (SELECT state FROM announcements WHERE id = OLD.announcement_id) = 'published'
BEGIN
    SELECT RAISE(ABORT, 'the rows of a published announcement are immutable');
END;
