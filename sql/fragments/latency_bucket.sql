-- The latency histogram bucket of a response time {value} (epstats_cli/latency.py): for a
-- finite v > 0, ceil(ln v / ln γ) with γ = (1 + α) / (1 - α) ({ln_gamma} is ln γ); zero and
-- negative values (bad data) share the lowest bucket {zero}, Infinity and NaN the highest
-- {beyond}; NULL has none (left out, as from the averages).
CASE WHEN {value}::double precision > 0 AND {value}::double precision < 'Infinity'::double precision
     THEN ceil(ln({value}::double precision) / {ln_gamma}::double precision)::integer
     WHEN {value}::double precision <= 0 THEN ({zero})::integer
     WHEN {value} IS NOT NULL THEN ({beyond})::integer
END
