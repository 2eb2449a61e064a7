-- The window in source.timezone: local midnight of the first day (or --since's local time of
-- day, resolved by the server's rule in a DST gap or overlap) through now (or the end of the
-- last day), computed by the server so it is exact across DST changes.
WITH t AS (
    SELECT now() AS as_of, (now() AT TIME ZONE %(tz)s)::date AS today
), d AS (
    SELECT coalesce(%(from_day)s::date, t.today - (%(days)s::int - 1)) AS from_day,
           least(coalesce(%(to_day)s::date, t.today), t.today) AS to_day,
           t.as_of
    FROM t
)
SELECT from_day,
       to_day,
       coalesce(%(from_local)s::timestamp, from_day::timestamp) AT TIME ZONE %(tz)s AS from_ts,
       least(as_of, ((to_day + 1)::timestamp AT TIME ZONE %(tz)s)) AS to_ts,
       as_of
FROM d
