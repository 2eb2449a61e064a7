INSERT INTO epstats.runs (task, target, started_at, status, reason, sql)
VALUES (%(task)s, %(target)s, clock_timestamp(), 'running', %(reason)s, %(sql)s)
RETURNING id
