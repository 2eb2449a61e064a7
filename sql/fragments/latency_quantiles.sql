-- Percentiles read from latency histograms (epstats_cli/latency.py), as the relation
-- latency_quantiles (key, percentiles). The statement names its histograms `histogram` (key,
-- bucket, n, low, high): the rollup's days and the raw rows bucketed the same way, several rows
-- of one key and bucket when several days or parts have it (summed here); low and high are the
-- smallest and largest response time of the rows a histogram row counts. For each key,
-- `percentiles` holds, for every q of %(quantiles)s in order, the value ({value}:
-- fragments/latency_value.sql) of the bucket holding rank ceil(q * n), at least 1, among the
-- key's n response times (nearest rank: what percentile_disc returns), clamped to the key's
-- [min, max]. A key without a response time has no row.
(SELECT key,
        array_agg(least(greatest({value}, low), high) ORDER BY i) AS percentiles
 FROM (
     SELECT key, bucket, n,
            sum(n) OVER (PARTITION BY key ORDER BY bucket) AS upto,
            sum(n) OVER (PARTITION BY key) AS total,
            min(low) OVER (PARTITION BY key) AS low,
            max(high) OVER (PARTITION BY key) AS high
     FROM (
         SELECT key, bucket, sum(n)::bigint AS n,
                min(low)::double precision AS low, max(high)::double precision AS high
         FROM histogram
         WHERE bucket IS NOT NULL AND n > 0
         GROUP BY 1, 2
     ) AS merged
 ) AS running
 JOIN unnest(%(quantiles)s::double precision[]) WITH ORDINALITY AS wanted(q, i)
   ON greatest(ceil(wanted.q * running.total), 1) > running.upto - running.n
  AND greatest(ceil(wanted.q * running.total), 1) <= running.upto
 GROUP BY key) AS latency_quantiles
