-- The watermark kept in the rollup's own contents, and its extent.
SELECT max(max_timestamp) AS watermark,
       count(*) AS row_count,
       min(day) AS first_day,
       max(day) AS last_day
FROM {view}
