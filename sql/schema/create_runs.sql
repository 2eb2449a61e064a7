-- One row per maintenance task run: what `maintain` schedules from and `status` shows.
CREATE TABLE IF NOT EXISTS epstats.runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task text NOT NULL,
    target text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    status text NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'skipped', 'interrupted')),
    reason text,
    sql text,
    error text,
    pid integer NOT NULL DEFAULT pg_backend_pid(),
    failure text  -- a failed run's kind: lock_busy, left_behind or error
)
