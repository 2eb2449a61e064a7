-- The rollup's bookkeeping row. relation_oid, parameters, retired_through and retiring through
-- to_jsonb:
-- a schema that `epstats init` has not upgraded yet (no such columns) reads them as NULL, so
-- reading never needs the upgrade.
SELECT strategy, timezone, lookback, refreshed_at, watermark, settled_through, refresh_seconds,
       (to_jsonb(s) ->> 'relation_oid')::oid AS relation_oid,
       to_jsonb(s) -> 'parameters' AS parameters,
       (to_jsonb(s) ->> 'retired_through')::date AS retired_through,
       to_jsonb(s) -> 'retiring' AS retiring
FROM epstats.rollup_state s WHERE view_name = %(view)s
