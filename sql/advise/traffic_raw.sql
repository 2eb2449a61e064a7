-- Requests over the last 7 days and the busiest hour, from the raw rows (bounded by time).
SELECT coalesce(sum(per_hour), 0)::bigint AS requests,
       coalesce(max(per_hour), 0) AS peak_hour_requests,
       min(first_seen) AS first_seen
FROM (
    SELECT date_trunc('hour', {timestamp}) AS hour, count(*) AS per_hour,
           min({timestamp}) AS first_seen
    FROM {table}
    WHERE {timestamp} >= now() - interval '7 days' AND {timestamp} < now()
    GROUP BY 1
) h
