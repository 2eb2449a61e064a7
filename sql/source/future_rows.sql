-- Raw rows dated after the server's now(): how many, the newest, and how far ahead of now()
-- it is. The condition is a range of the timestamp index, so this stays cheap whatever the
-- table's size.
SELECT count(*) AS count,
       max({instant}) AS latest,
       extract(epoch FROM max({instant}) - now())::double precision AS ahead_seconds
FROM {table}
WHERE {timestamp} > {now}
