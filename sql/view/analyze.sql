-- The new rollup's statistics, in the transaction that builds it: reports plan their reads of
-- its days and latency histograms from them at once (unanalyzed, the planner takes the rollup
-- for a few rows and sorts the histograms' buckets on disk: 130 ms against 40 ms for 30 days).
ANALYZE {view}
