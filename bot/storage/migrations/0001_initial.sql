-- Key/value settings the bot remembers (e.g. the hash of the last command sync).
CREATE TABLE IF NOT EXISTS kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The job ledger: one row per /imagine, edit or reroll. A row in status 'reserved' or 'running'
-- holds quota; it is settled ('done'/'partial') or refunded ('failed', 'blocked', 'cancelled',
-- 'crashed'). Buttons on results find their job here, so they keep working after a restart.
CREATE TABLE IF NOT EXISTS jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id        INTEGER,
    channel_id      INTEGER,
    user_id         INTEGER NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('generate', 'edit')),
    prompt          TEXT NOT NULL,
    settings        TEXT NOT NULL DEFAULT '{}',   -- JSON: size, quality, background, format, count, ...
    model           TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'reserved',
    images_reserved INTEGER NOT NULL DEFAULT 0,
    images_done     INTEGER NOT NULL DEFAULT 0,
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0,
    cost_estimate   REAL NOT NULL DEFAULT 0,
    cost_actual     REAL NOT NULL DEFAULT 0,
    error           TEXT,
    message_id      INTEGER,
    parent_job_id   INTEGER REFERENCES jobs(id),
    source_image_url TEXT,
    created_at      TEXT NOT NULL,             -- ISO-8601 UTC
    finished_at     TEXT
);
CREATE INDEX IF NOT EXISTS jobs_user_created ON jobs (guild_id, user_id, created_at);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE INDEX IF NOT EXISTS jobs_message ON jobs (message_id);
