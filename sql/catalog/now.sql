-- The server's clock: what "now", "today" and "the current hour" mean for every command.
SELECT now() AS now, date_trunc('hour', now()) AS hour
