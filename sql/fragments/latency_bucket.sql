-- The latency histogram bucket of a response time {value} (epstats_cli/latency.py): for a
-- finite v > 0, ceil(ln v / ln gamma) with gamma = (1 + alpha) / (1 - alpha) ({ln_gamma} is
-- ln gamma); 0 has the bucket {zero}; a finite v < 0 (bad data, kept as exactly as the rest)
-- the mirror image below it, {negative} - ceil(ln(-v) / ln gamma); -Infinity the lowest,
-- {below}; Infinity and NaN the highest, {beyond}. NULL has none (left out, as from the
-- averages). Bucket order is value order.
CASE WHEN {value}::double precision > 0 AND {value}::double precision < 'Infinity'::double precision
     THEN ceil(ln({value}::double precision) / {ln_gamma}::double precision)::integer
     WHEN {value}::double precision = 0 THEN ({zero})::integer
     WHEN {value}::double precision < 0 AND {value}::double precision > '-Infinity'::double precision
     THEN ({negative})::integer
          - ceil(ln(-{value}::double precision) / {ln_gamma}::double precision)::integer
     WHEN {value}::double precision = '-Infinity'::double precision THEN ({below})::integer
     WHEN {value} IS NOT NULL THEN ({beyond})::integer
END
