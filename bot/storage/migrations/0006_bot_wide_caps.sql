-- The bot-wide caps (BOT_USER_DAILY_LIMIT, BOT_MONTHLY_BUDGET_USD) read one person's jobs in every server,
-- and every job of the month: two indexes so neither scans the whole ledger. Same SQL on both databases.
-- (No semicolons inside statements or comments: bot/storage/db.py splits this file on them.)
CREATE INDEX IF NOT EXISTS jobs_user_everywhere ON jobs (user_id, created_at);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
