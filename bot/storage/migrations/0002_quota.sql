-- Quotas: limits, per-server settings, usage resets and the moderators' audit log.
-- (No semicolons inside statements or comments: bot/storage/db.py splits this file on them.)

-- When a job started running (mark_running), next to created_at/finished_at.
ALTER TABLE jobs ADD COLUMN started_at TEXT;

-- Budget and reports sum a server's jobs of the month.
CREATE INDEX IF NOT EXISTS jobs_guild_created ON jobs (guild_id, created_at);

-- Per-server settings. A server without a row uses UTC, no budget and no manager role.
CREATE TABLE IF NOT EXISTS guild_settings (
    guild_id        INTEGER PRIMARY KEY,
    timezone        TEXT NOT NULL DEFAULT 'UTC',      -- IANA name, validated with zoneinfo
    budget_usd      REAL CHECK (budget_usd IS NULL OR budget_usd >= 0),   -- monthly, NULL = none
    manager_role_id INTEGER,
    updated_at      TEXT NOT NULL
);

-- Image limits set by moderators. One row per (server, level, target, period). A missing row
-- means "not set here, inherit"; max_images NULL means unlimited and 0 means blocked.
-- scope 'user' and 'role' name the user or role in target_id, scope 'server' uses target_id 0.
CREATE TABLE IF NOT EXISTS quota_limits (
    guild_id   INTEGER NOT NULL,
    scope      TEXT NOT NULL CHECK (scope IN ('user', 'role', 'server')),
    target_id  INTEGER NOT NULL,
    period     TEXT NOT NULL CHECK (period IN ('daily', 'monthly')),
    max_images INTEGER CHECK (max_images IS NULL OR max_images >= 0),
    updated_at TEXT NOT NULL,
    updated_by INTEGER NOT NULL,
    PRIMARY KEY (guild_id, scope, target_id, period)
);

-- /quota reset user: usage counts only jobs with id > last_job_id of the latest reset.
-- (Job ids come from AUTOINCREMENT, so they only grow, and equal timestamps cannot blur it.)
CREATE TABLE IF NOT EXISTS quota_resets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    last_job_id INTEGER NOT NULL,
    reset_at    TEXT NOT NULL,
    actor_id    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS quota_resets_user ON quota_resets (guild_id, user_id, id);

-- Everything a moderator changes: who, what, when. details is JSON (old and new values).
CREATE TABLE IF NOT EXISTS audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id   INTEGER NOT NULL,
    actor_id   INTEGER NOT NULL,
    action     TEXT NOT NULL,
    target_id  INTEGER,
    details    TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_guild ON audit_log (guild_id, id)
