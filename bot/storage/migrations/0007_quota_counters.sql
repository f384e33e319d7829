-- Quota counters (bot/quota/counters.py): one row per limit and period, so a reservation checks and consumes
-- each limit with one conditional UPDATE of its own row instead of summing the ledger under a lock that covers
-- the whole server. And the purge of personal text after the retention period (bot/quota/retention.py).
-- (No semicolons inside statements or comments: bot/storage/db.py splits this file on them.)

-- key names the limit and the period's start, e.g. d:<server>:<user>:<day start>. used is images, or USD for
-- budgets. /quota reset zeroes a person's counters and sets floor_job_id to the last job id then: refunds of
-- jobs up to it give nothing back here. expires_at is the period's end (rows past it are deleted).
CREATE TABLE IF NOT EXISTS quota_counters (
    key          TEXT PRIMARY KEY,
    used         REAL NOT NULL DEFAULT 0,
    floor_job_id INTEGER NOT NULL DEFAULT 0,
    expires_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS quota_counters_expiry ON quota_counters (expires_at);

-- The counter keys a job charged (space separated): settle, refund and crash recovery give back to these.
-- NULL for jobs from before counters: their counters are started from the ledger, which counts them.
ALTER TABLE jobs ADD COLUMN counters TEXT;

-- When the job's prompt and other personal text were purged (PROMPT_RETENTION_DAYS), NULL while kept.
ALTER TABLE jobs ADD COLUMN purged_at TEXT;
