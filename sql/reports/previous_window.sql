-- The window `report top --compare` compares with: the current one moved back by its own
-- number of local days n (from its first day to its last, both counted) on the calendar of
-- %(tz)s, each bound keeping its local time of day. A window of whole days gets the n days
-- right before it; one that ends at now() gets the same hours n days earlier (in_progress),
-- so a day still in progress is compared with the same part of its counterpart.
WITH w AS (
    SELECT %(to_day)s::date - %(from_day)s::date + 1 AS n
)
SELECT %(from_day)s::date - n AS from_day,
       %(to_day)s::date - n AS to_day,
       ((%(from_ts)s::timestamptz AT TIME ZONE %(tz)s) - make_interval(days => n))
           AT TIME ZONE %(tz)s AS from_ts,
       ((%(to_ts)s::timestamptz AT TIME ZONE %(tz)s) - make_interval(days => n))
           AT TIME ZONE %(tz)s AS to_ts,
       %(to_ts)s::timestamptz < ((%(to_day)s::date + 1)::timestamp AT TIME ZONE %(tz)s)
           AS in_progress
FROM w
