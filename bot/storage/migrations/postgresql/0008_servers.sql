-- As 0008_servers.sql, with PostgreSQL's types for ids.
-- (No semicolons inside statements or comments: bot/storage/db.py splits this file on them.)
CREATE TABLE IF NOT EXISTS approved_guilds (
    guild_id    BIGINT PRIMARY KEY,
    approved_by BIGINT NOT NULL,
    approved_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS guild_api_keys (
    guild_id      BIGINT PRIMARY KEY,
    key_encrypted TEXT NOT NULL,
    key_last4     TEXT NOT NULL,
    base_url      TEXT,
    set_by        BIGINT NOT NULL,
    set_at        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS operator_audit (
    id         BIGSERIAL PRIMARY KEY,
    actor_id   BIGINT NOT NULL,
    action     TEXT NOT NULL,
    guild_id   BIGINT,
    created_at TEXT NOT NULL
);
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS payer TEXT NOT NULL DEFAULT 'operator'
