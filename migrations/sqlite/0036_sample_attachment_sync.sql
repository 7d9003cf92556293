-- Sample attachments through offline sync (sync schema version 7): a sampler's device declares
-- its site/sample/seal photos in a push and pulls their processing status back, as inspection
-- photos do (0005). Every row carries the sequence number of its last change (`seq`: the
-- declaration, the upload, a refusal, the processing), of its creation (`created_seq`) and the
-- user/device that declared it (`origin_device`). Rows from before this migration keep 0: a
-- first pull, a replacement or the migration pull of an upgrading app reads every row anyway.
ALTER TABLE sample_attachments ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sample_attachments ADD COLUMN created_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sample_attachments ADD COLUMN origin_device TEXT;
CREATE INDEX sample_attachments_sample_seq ON sample_attachments (sample_id, seq);
