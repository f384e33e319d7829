-- Prompt rules moderators set (bot/rules/): words and regular expressions a prompt may not contain.
-- (No semicolons inside statements or comments: bot/storage/db.py splits this file on them.)
-- Additions, removals and refusals are written to audit_log (actions add_rule, remove_rule,
-- prompt_refused). A refusal records who, when and which rule, never the prompt.
CREATE TABLE IF NOT EXISTS prompt_rules (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id   INTEGER NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('word', 'regex')),
    pattern    TEXT NOT NULL,                  -- as the moderator wrote it
    sfw_only   INTEGER NOT NULL DEFAULT 0 CHECK (sfw_only IN (0, 1)),   -- 1: not in age-restricted channels
    created_at TEXT NOT NULL,                  -- ISO-8601 UTC
    created_by INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS prompt_rules_guild ON prompt_rules (guild_id, id)
