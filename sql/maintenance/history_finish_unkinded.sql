-- history_finish for an epstats.runs made by an older version, without the column `failure`
-- (until `epstats init` adds it).
UPDATE epstats.runs
SET finished_at = clock_timestamp(), status = %(status)s, reason = %(reason)s,
    sql = %(sql)s, error = %(error)s
WHERE id = %(id)s
