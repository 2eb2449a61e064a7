-- Raw rows dated after the server's now(): how many, and the newest. The condition is a range
-- of the timestamp index, so this stays cheap whatever the table's size.
SELECT count(*) AS count, max({instant}) AS latest
FROM {table}
WHERE {timestamp} > {now}
