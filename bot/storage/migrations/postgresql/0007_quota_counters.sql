-- PostgreSQL twin of bot/storage/migrations/0007_quota_counters.sql: DOUBLE PRECISION for the amounts (REAL is
-- 4 bytes here) and BIGINT for job ids.
-- (No semicolons inside statements or comments: bot/storage/db.py splits this file on them.)
CREATE TABLE IF NOT EXISTS quota_counters (
    key          TEXT PRIMARY KEY,
    used         DOUBLE PRECISION NOT NULL DEFAULT 0,
    floor_job_id BIGINT NOT NULL DEFAULT 0,
    expires_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS quota_counters_expiry ON quota_counters (expires_at);

ALTER TABLE jobs ADD COLUMN counters TEXT;

ALTER TABLE jobs ADD COLUMN purged_at TEXT;
