-- The local days (in source.timezone) of the rows sitting in the DEFAULT partition {default}
-- up to %(to_day)s, and how many each: rows dated where no partition is (a late row of a day
-- whose partition retention dropped; a day before the first partition). Retention retires
-- them as a plain table's. The DEFAULT is kept empty, or nearly: a scan of it.
SELECT {day} AS day, count(*) AS rows FROM {default} WHERE {before} GROUP BY 1 ORDER BY 1
