-- The days `endpoint_cardinality` looks at: yesterday and today in source.timezone, from local
-- midnight of yesterday through now (the server's clock; exact across DST changes).
WITH t AS (
    SELECT now() AS as_of, (now() AT TIME ZONE %(tz)s)::date AS today
)
SELECT today - 1 AS from_day,
       today AS to_day,
       (today - 1)::timestamp AT TIME ZONE %(tz)s AS from_ts,
       today::timestamp AT TIME ZONE %(tz)s AS today_ts,
       as_of
FROM t
