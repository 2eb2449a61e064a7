-- The verify task's latest summary that says where it got to (the next run goes on from there).
SELECT reason FROM epstats.runs
WHERE task = 'verify' AND target = %(target)s AND reason LIKE '%%last checked %%'
ORDER BY started_at DESC
LIMIT 1
