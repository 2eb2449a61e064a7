-- The rollup ({rollup}: the relation, as epstats_rollup) as reports read it when an earlier
-- epstats built it without the status classes: its columns and NULL ones in their place
-- (reports then show no status mix).
(SELECT epstats_rollup.*,
        NULL::bigint AS status_2xx, NULL::bigint AS status_3xx, NULL::bigint AS status_4xx,
        NULL::bigint AS status_5xx, NULL::bigint AS status_other
 FROM {rollup}) AS epstats_rollup
