-- Which of the configured image models (IMAGE_MODEL, IMAGE_MODELS) members of a server may use. No row: the
-- operator's IMAGE_MODEL only. models is a JSON list of model names.
-- (No semicolons inside statements or comments: bot/storage/db.py splits this file on them.)
CREATE TABLE IF NOT EXISTS guild_models (
    guild_id   INTEGER PRIMARY KEY,
    models     TEXT NOT NULL,
    updated_by INTEGER NOT NULL,
    updated_at TEXT NOT NULL
)
