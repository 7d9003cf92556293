-- Sync positions from transaction ids (issue 14) are PostgreSQL's (migrations/postgres/0037):
-- SQLite has one writer at a time, so its counter row (`sync_counter`) already orders the commits.
-- Nothing changes here.
SELECT 1;
