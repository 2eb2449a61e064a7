-- The rollup's bookkeeping: how it is built, when it was last refreshed, the newest row it
-- had aggregated then, and (incremental) the last day that refresh left as settled; the
-- mark that epstats built it: the relation's oid and the parameters it was built with
-- (written in the transaction that builds or refreshes it; its COMMENT is its users'); and
-- the retention horizon: the last day whose raw rows retention retires (those days are kept
-- by the rollup alone, never recomputed) and what retention is retiring (the snapshot its rows
-- were counted in, for a run that resumes a half-deleted day).
CREATE TABLE IF NOT EXISTS epstats.rollup_state (
    view_name text PRIMARY KEY,
    strategy text NOT NULL,
    timezone text NOT NULL,
    lookback interval NOT NULL,
    refreshed_at timestamptz,
    watermark timestamptz,
    settled_through date,
    refresh_seconds double precision,
    relation_oid oid,
    parameters jsonb,
    retired_through date,
    retiring jsonb
)
