-- Requests per whole day over the last 7 complete days, from the rollup, and the rollup's rows
-- of those days (one per endpoint and day).
SELECT coalesce(sum(request_count), 0)::bigint AS requests, count(DISTINCT day) AS days,
       count(*) AS rollup_rows
FROM {view}
WHERE day >= (now() AT TIME ZONE %(tz)s)::date - 7 AND day < (now() AT TIME ZONE %(tz)s)::date
