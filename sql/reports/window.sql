-- The window in source.timezone, computed by the server so it is exact across DST changes:
-- from local midnight of the first day, --since's local time of day (resolved by the
-- server's rule in a DST gap or overlap) or now() less --hours (an absolute interval), to
-- now(), the end of --until's day or --until's local time, whichever comes first. to_day is
-- the window's last local day (the day before a to_ts at local midnight).
WITH t AS (
    SELECT now() AS as_of, (now() AT TIME ZONE %(tz)s)::date AS today
), b AS (
    SELECT CASE
               WHEN %(hours)s::double precision IS NOT NULL
                   THEN t.as_of - %(hours)s::double precision * interval '1 hour'
               ELSE coalesce(
                   %(from_local)s::timestamp,
                   coalesce(%(from_day)s::date, t.today - (%(days)s::int - 1))::timestamp
               ) AT TIME ZONE %(tz)s
           END AS from_ts,
           least(t.as_of,
                 coalesce(%(to_local)s::timestamp, (%(to_day)s::date + 1)::timestamp)
                     AT TIME ZONE %(tz)s) AS to_ts,
           t.as_of,
           t.today
    FROM t
)
SELECT (from_ts AT TIME ZONE %(tz)s)::date AS from_day,
       CASE WHEN to_ts >= as_of THEN today
            ELSE ((to_ts - interval '1 microsecond') AT TIME ZONE %(tz)s)::date
       END AS to_day,
       from_ts,
       to_ts,
       as_of
FROM b
