-- Prompt rules (bot/rules/), as 0004_prompt_rules.sql, with PostgreSQL's types for ids.
-- (No semicolons inside statements or comments: bot/storage/db.py splits this file on them.)
CREATE TABLE IF NOT EXISTS prompt_rules (
    id         BIGSERIAL PRIMARY KEY,
    guild_id   BIGINT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('word', 'regex')),
    pattern    TEXT NOT NULL,
    sfw_only   INTEGER NOT NULL DEFAULT 0 CHECK (sfw_only IN (0, 1)),
    created_at TEXT NOT NULL,
    created_by BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS prompt_rules_guild ON prompt_rules (guild_id, id)
