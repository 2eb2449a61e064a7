-- The rollup's data rows, shared by both strategies. {day} is the calendar day in
-- source.timezone whatever the session's TimeZone; total_response_time and response_count
-- let multi-day averages be weighted; max_timestamp is the newest row of the day; as_of and
-- snapshot belong to the bookkeeping row alone (NULL here). A row without an endpoint is in
-- no report, so in no rollup.
SELECT {endpoint}::text AS endpoint,
       {day} AS day,
       count(*)::bigint AS request_count,
       avg({response_time}::double precision) AS avg_response_time,
       max({response_time})::double precision AS max_response_time,
       min({response_time})::double precision AS min_response_time,
       (count(*) FILTER (WHERE {status} >= {error_min}))::bigint AS error_count,
       sum({response_time}::double precision) AS total_response_time,
       count({response_time})::bigint AS response_count,
       max({instant})::timestamptz AS max_timestamp,
       NULL::timestamptz AS as_of,
       NULL::text AS snapshot
FROM {table}
WHERE {endpoint} IS NOT NULL AND {where}
GROUP BY 1, 2
