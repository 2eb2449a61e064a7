-- The verify task's summaries of the last %(within)s, newest first (check's late_rows).
SELECT started_at, status, reason FROM epstats.runs
WHERE task = 'verify' AND target = %(target)s AND status IN ('ok', 'failed')
  AND started_at > now() - %(within)s::interval
ORDER BY started_at DESC
