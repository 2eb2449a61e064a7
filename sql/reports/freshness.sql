-- The rollup's watermark and how many raw rows of the window lie past it.
WITH mark AS (SELECT max(max_timestamp) AS wm FROM {view})
SELECT mark.wm AS watermark,
       (SELECT count(*) FROM {table}
        WHERE {timestamp} > coalesce(mark.wm, '-infinity'::timestamptz)
          AND {timestamp} >= %(from_ts)s AND {timestamp} < %(to_ts)s) AS newer_rows
FROM mark
