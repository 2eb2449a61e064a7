CREATE INDEX IF NOT EXISTS runs_task_started_at ON epstats.runs (task, started_at DESC)
