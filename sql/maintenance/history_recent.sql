SELECT id, task, target, started_at, finished_at, status, reason, error
FROM epstats.runs ORDER BY started_at DESC, id DESC LIMIT %(limit)s
