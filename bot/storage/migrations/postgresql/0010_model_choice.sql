-- As 0010_model_choice.sql, with PostgreSQL's type for Discord ids.
-- (No semicolons inside statements or comments: bot/storage/db.py splits this file on them.)
CREATE TABLE IF NOT EXISTS guild_models (
    guild_id   BIGINT PRIMARY KEY,
    models     TEXT NOT NULL,
    updated_by BIGINT NOT NULL,
    updated_at TEXT NOT NULL
)
