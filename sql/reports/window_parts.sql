-- How `auto` splits a window that does not cover whole local days of %(tz)s: its head, from
-- from_ts to the next local midnight (or to_ts, for a window inside one day), and its tail,
-- from the last local midnight to to_ts, are read from the raw rows; the days between from
-- the rollup. NULL: no such part. A window that ends at now() has no tail: its last day,
-- today, is read as --days reads it (the rollup plus the raw rows it has not aggregated).
WITH w AS (
    SELECT %(from_ts)s::timestamptz AS from_ts,
           %(to_ts)s::timestamptz AS to_ts,
           (%(from_ts)s::timestamptz AT TIME ZONE %(tz)s)::date AS first,
           (%(to_ts)s::timestamptz AT TIME ZONE %(tz)s)::date AS last
), m AS (
    SELECT from_ts, to_ts,
           first::timestamp AT TIME ZONE %(tz)s AS first_midnight,
           (first + 1)::timestamp AT TIME ZONE %(tz)s AS next_midnight,
           last::timestamp AT TIME ZONE %(tz)s AS last_midnight
    FROM w
)
SELECT CASE WHEN from_ts < to_ts AND from_ts > first_midnight
            THEN least(next_midnight, to_ts) END AS head_to,
       CASE WHEN from_ts < to_ts AND to_ts < %(as_of)s::timestamptz
                 AND to_ts > last_midnight AND last_midnight >= from_ts
            THEN last_midnight END AS tail_from
FROM m
