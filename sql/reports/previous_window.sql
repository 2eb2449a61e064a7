-- The window `report top --compare` compares with: the current one moved back by its own
-- number of local days n (from its first day to its last, both counted) on the calendar of
-- %(tz)s, each bound keeping its local time of day. A window of whole days gets the n days
-- right before it; one that ends at now() gets the same hours n days earlier (in_progress),
-- so a day still in progress is compared with the same part of its counterpart.
-- %(by_length)s (--hours, or --until with a time): the current window moved back by its
-- length instead, an absolute interval (the hours right before it).
WITH w AS (
    SELECT %(to_day)s::date - %(from_day)s::date + 1 AS n,
           make_interval(secs => extract(epoch FROM
               %(to_ts)s::timestamptz - %(from_ts)s::timestamptz)) AS length
), p AS (
    SELECT n,
           CASE WHEN %(by_length)s THEN %(from_ts)s::timestamptz - length
                ELSE ((%(from_ts)s::timestamptz AT TIME ZONE %(tz)s) - make_interval(days => n))
                    AT TIME ZONE %(tz)s
           END AS from_ts,
           CASE WHEN %(by_length)s THEN %(from_ts)s::timestamptz
                ELSE ((%(to_ts)s::timestamptz AT TIME ZONE %(tz)s) - make_interval(days => n))
                    AT TIME ZONE %(tz)s
           END AS to_ts
    FROM w
)
SELECT CASE WHEN %(by_length)s THEN (from_ts AT TIME ZONE %(tz)s)::date
            ELSE %(from_day)s::date - n END AS from_day,
       CASE WHEN %(by_length)s
            THEN ((to_ts - interval '1 microsecond') AT TIME ZONE %(tz)s)::date
            ELSE %(to_day)s::date - n END AS to_day,
       from_ts,
       to_ts,
       NOT %(by_length)s
           AND %(to_ts)s::timestamptz < ((%(to_day)s::date + 1)::timestamp AT TIME ZONE %(tz)s)
           AS in_progress
FROM p
