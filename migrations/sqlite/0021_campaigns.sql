-- Campaign statistics (issue 12 item 7): campaigns such as 3·15, the bureau's reporting units
-- (科室, 所, 中心) and each unit's 3·15 活动统计表 for a campaign. The form's rows are data in
-- src/stats (row codes); a report stores its figures as JSON keyed by row code.

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    period_start TEXT NOT NULL,             -- YYYY-MM-DD (bureau's local date)
    period_end TEXT NOT NULL,
    created_by TEXT NOT NULL,               -- a user id, or 'system'
    created_at INTEGER NOT NULL,
    CHECK (period_start <= period_end)
);

CREATE TABLE reporting_units (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('section', 'station', 'centre')),  -- 科室, 所, 中心
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE campaign_reports (
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    unit_id TEXT NOT NULL REFERENCES reporting_units (id),
    -- Internal personal data: never public.
    contact_name TEXT,
    contact_phone TEXT,
    row_values TEXT NOT NULL,               -- JSON {row code: non-negative integer}
    updated_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, unit_id)
);

-- The statistics count records by date range: submissions, follow-ups and recheck tasks
-- opened, issues published (list_issues_published already covers the last).
CREATE INDEX inspections_submitted_at ON inspections (submitted_at);
CREATE INDEX followups_created_at ON followups (created_at);
CREATE INDEX tasks_kind_created_at ON tasks (kind, created_at);
