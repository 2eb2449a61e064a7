-- The day (in source.timezone) of the oldest raw row dated from local midnight of %(from_day)s
-- on, bounded by a window so that it stays cheap without a btree on the timestamp (a BRIN
-- finds no min(): unbounded, it reads every block range from %(from_day)s on). First the rows
-- before {to_ts} (a day after the column's oldest value in its statistics); only when none is
-- there (statistics older than a retention DELETE) the rest: coalesce() runs that subquery
-- only then. Either way the oldest row from %(from_day)s on.
SELECT {day} AS day
FROM (SELECT coalesce(
          (SELECT min({timestamp}) FROM {table} WHERE {since} AND {timestamp} < {to_ts}),
          (SELECT min({timestamp}) FROM {table} WHERE {since})) AS {timestamp}) AS oldest
