-- The incremental rollup's bookkeeping: which days are settled and what was aggregated.
CREATE TABLE IF NOT EXISTS epstats.rollup_state (
    view_name text PRIMARY KEY,
    strategy text NOT NULL,
    timezone text NOT NULL,
    lookback interval NOT NULL,
    refreshed_at timestamptz,
    refreshed_through timestamptz,
    refresh_seconds double precision
)
