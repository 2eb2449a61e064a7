UPDATE epstats.runs
SET finished_at = clock_timestamp(), status = %(status)s, reason = %(reason)s,
    sql = %(sql)s, error = %(error)s, failure = %(failure)s
WHERE id = %(id)s
