-- The rollup's as-of and extent: its data rows and the newest timestamp they hold (a scan).
SELECT (SELECT as_of FROM {view} WHERE endpoint IS NULL AND day IS NULL) AS watermark,
       count(*) AS row_count,
       min(day) AS first_day,
       max(day) AS last_day,
       max(max_timestamp) AS newest
FROM {view}
WHERE endpoint IS NOT NULL
