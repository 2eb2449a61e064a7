-- The rollup ({view}) as view verify reads it when it was built before the latency histograms:
-- its columns and NULL histograms in their place (not compared: %(histograms)s is false).
(SELECT epstats_rollup.*,
        NULL::integer[] AS latency_buckets, NULL::bigint[] AS latency_counts
 FROM {view} AS epstats_rollup) AS epstats_rollup
