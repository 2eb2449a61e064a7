-- Requests over the last 7 days and the busiest hour, from the raw rows (bounded by time).
-- {week_ago} and {now} are instants as bounds of the timestamp column; {instant} is the
-- column as an instant, so a naive column is read in source.naive_timezone.
SELECT coalesce(sum(per_hour), 0)::bigint AS requests,
       coalesce(max(per_hour), 0) AS peak_hour_requests,
       min(first_seen) AS first_seen
FROM (
    SELECT date_trunc('hour', {instant}) AS hour, count(*) AS per_hour,
           min({instant}) AS first_seen
    FROM {table}
    WHERE {timestamp} >= {week_ago} AND {timestamp} < {now}
    GROUP BY 1
) h
