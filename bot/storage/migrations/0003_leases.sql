-- Jobs owned by a process. Each process (an "instance") renews a lease in this table while it
-- runs, and writes its id into the jobs it reserves. Crash recovery refunds only jobs whose
-- owner's lease has expired, never a live sibling's running job (bot/storage/leases.py).
-- (No semicolons inside statements or comments: bot/storage/db.py splits this file on them.)

-- The instance that reserved the job. NULL for jobs from before leases: any instance recovers them at start.
ALTER TABLE jobs ADD COLUMN owner TEXT;

CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY,
    lease_until TEXT NOT NULL,      -- ISO-8601 UTC, like every timestamp in this database
    started_at  TEXT NOT NULL,
    renewed_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_owner_status ON jobs (owner, status);
