-- Who pays for a server's images: servers the operator approved at run time, the API keys servers bring
-- (encrypted: only the last 4 characters are kept readable), and on each job who paid for it.
-- (No semicolons inside statements or comments: bot/storage/db.py splits this file on them.)
CREATE TABLE IF NOT EXISTS approved_guilds (
    guild_id    INTEGER PRIMARY KEY,
    approved_by INTEGER NOT NULL,
    approved_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS guild_api_keys (
    guild_id      INTEGER PRIMARY KEY,
    key_encrypted TEXT NOT NULL,
    key_last4     TEXT NOT NULL,
    base_url      TEXT,
    set_by        INTEGER NOT NULL,
    set_at        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS operator_audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_id   INTEGER NOT NULL,
    action     TEXT NOT NULL,
    guild_id   INTEGER,
    created_at TEXT NOT NULL
);
ALTER TABLE jobs ADD COLUMN payer TEXT NOT NULL DEFAULT 'operator'
