-- The bounds of the partitions of one interval ('day', 'week' or 'month': weeks start on
-- Monday) from the one holding day %(first)s through the one holding day %(last)s: local
-- midnights in %(tz)s as instants, and ({value}) as the timestamp column holds them.
SELECT start::date AS first_day,
       (start + %(step)s::interval)::date AS end_day,
       (start AT TIME ZONE %(tz)s) AS lower_ts,
       ((start + %(step)s::interval) AT TIME ZONE %(tz)s) AS upper_ts,
       {lower_value} AS lower_value,
       {upper_value} AS upper_value
FROM pg_catalog.generate_series(date_trunc(%(unit)s, %(first)s::date::timestamp),
                                date_trunc(%(unit)s, %(last)s::date::timestamp),
                                %(step)s::interval) start
ORDER BY start
