-- The rollup ({rollup}: the relation, or fragments/rollup_no_status.sql, as epstats_rollup) as
-- reports read it when an earlier epstats built it without the latency histograms: its
-- columns and NULL ones in their place (reports then show no percentiles, and say so).
(SELECT epstats_rollup.*,
        NULL::integer[] AS latency_buckets, NULL::bigint[] AS latency_counts
 FROM {rollup}) AS epstats_rollup
