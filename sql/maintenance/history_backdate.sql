-- A task recorded after it ran: its start is its end minus how long it took.
UPDATE epstats.runs SET started_at = clock_timestamp() - make_interval(secs => %(seconds)s)
WHERE id = %(id)s
