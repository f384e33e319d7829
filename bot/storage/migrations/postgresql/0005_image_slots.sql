-- Image stream slots shared by every process (bot/jobs/cluster.py): one cap, MAX_CONCURRENT_IMAGES, for
-- the whole bot, and one fair queue, round-robin between users, across processes.
-- (No semicolons inside statements or comments: bot/storage/db.py splits this file on them.)

-- One row per image stream that waits for a slot or holds one. A row belongs to the instance
-- (bot/storage/leases.py) that waits: when its lease expires the row is deleted and its slot freed.
CREATE TABLE IF NOT EXISTS image_slots (
    id          BIGSERIAL PRIMARY KEY,
    instance_id TEXT NOT NULL,
    user_id     BIGINT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'running')),
    queued_at   TEXT NOT NULL,             -- ISO-8601 UTC
    granted_at  TEXT
);
CREATE INDEX IF NOT EXISTS image_slots_state ON image_slots (state, id);
CREATE INDEX IF NOT EXISTS image_slots_instance ON image_slots (instance_id);

-- The round-robin: a user waiting gets a turn number, the next slot goes to the waiting user with
-- the lowest, who then moves to the end of the line. Users with nothing waiting or running leave it.
CREATE TABLE IF NOT EXISTS image_turns (
    user_id BIGINT PRIMARY KEY,
    turn    BIGINT NOT NULL
)
