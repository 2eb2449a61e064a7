-- The value a latency histogram bucket {bucket} stands for (epstats_cli/latency.py): 2γ^k/(1+γ),
-- within α of every value in the bucket (its mirror image for a negative one); 0 for {zero},
-- -Infinity for {below} and Infinity for {beyond}.
CASE WHEN {bucket} = {zero} THEN 0::double precision
     WHEN {bucket} = {beyond} THEN 'Infinity'::double precision
     WHEN {bucket} = {below} THEN '-Infinity'::double precision
     WHEN {bucket} < {zero}
     THEN -2 * exp(({negative} - {bucket}) * {ln_gamma}::double precision)
          / (1 + exp({ln_gamma}::double precision))
     ELSE 2 * exp({bucket} * {ln_gamma}::double precision) / (1 + exp({ln_gamma}::double precision))
END
