-- The value a latency histogram bucket {bucket} stands for (epstats_cli/latency.py): 2γ^k/(1+γ),
-- within α of every value in the bucket; 0 for the zero bucket {zero} and Infinity for {beyond}.
CASE WHEN {bucket} = {zero} THEN 0::double precision
     WHEN {bucket} = {beyond} THEN 'Infinity'::double precision
     ELSE 2 * exp({bucket} * {ln_gamma}::double precision) / (1 + exp({ln_gamma}::double precision))
END
