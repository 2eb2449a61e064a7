-- The rollup's bookkeeping: how it is built, when it was last refreshed, the newest row it
-- had aggregated then, and (incremental) the last day that refresh left as settled; and the
-- mark that epstats built it: the relation's oid and the parameters it was built with
-- (written in the transaction that builds or refreshes it; its COMMENT is its users').
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
    parameters jsonb
)
