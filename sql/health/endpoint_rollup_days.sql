-- The rollup's data rows of each day from %(from_day)s through %(to_day)s (by its day index):
-- one row per endpoint and day, so the distinct endpoints of each day as the rollup holds them.
SELECT day, count(*) AS endpoints
FROM {view}
WHERE day >= %(from_day)s AND day <= %(to_day)s AND endpoint IS NOT NULL
GROUP BY day
ORDER BY day
