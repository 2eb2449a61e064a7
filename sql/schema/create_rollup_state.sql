-- The rollup's bookkeeping: how it is built, when it was last refreshed, the newest row it
-- had aggregated then, and (incremental) the last day that refresh left as settled.
CREATE TABLE IF NOT EXISTS epstats.rollup_state (
    view_name text PRIMARY KEY,
    strategy text NOT NULL,
    timezone text NOT NULL,
    lookback interval NOT NULL,
    refreshed_at timestamptz,
    watermark timestamptz,
    settled_through date,
    refresh_seconds double precision
)
