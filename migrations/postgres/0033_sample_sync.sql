-- 抽样单 and custody events through offline sync (sync schema version 6, issue 13 item 2):
-- every synced row carries the sequence number of its last change (`seq`), of its creation
-- (`created_seq`) and the user/device that created it (`origin_device`), as inspections do
-- (0005). Custody events are append-only (0023's triggers): their `seq` is set at insert and
-- never changes. Rows from before this migration keep 0: a first pull, a replacement or the
-- migration pull of an upgrading app reads every row anyway.
ALTER TABLE samples ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE samples ADD COLUMN created_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE samples ADD COLUMN origin_device TEXT;
CREATE INDEX samples_seq ON samples (seq);

ALTER TABLE custody_events ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE custody_events ADD COLUMN origin_device TEXT;
CREATE INDEX custody_events_sample_seq ON custody_events (sample_id, seq);
