DELETE FROM epstats.runs WHERE started_at < now() - %(retention)s::interval
