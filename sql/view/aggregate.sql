-- The rollup's data rows, shared by both strategies. {day} is the calendar day in
-- source.timezone whatever the session's TimeZone; total_response_time and response_count
-- let multi-day averages be weighted; max_timestamp is the newest row of the day; as_of and
-- snapshot belong to the bookkeeping row alone (NULL here). A row without an endpoint is in
-- no report, so in no rollup. {normalized} is the endpoint as reports name it (the column as
-- text, or normalized through the map that {join} adds: epstats_cli/endpoints.py). The status
-- classes add up to request_count (other: any other status, NULL included).
SELECT {normalized} AS endpoint,
       {day} AS day,
       count(*)::bigint AS request_count,
       avg({response_time}::double precision) AS avg_response_time,
       max({response_time})::double precision AS max_response_time,
       min({response_time})::double precision AS min_response_time,
       (count(*) FILTER (WHERE {status} >= {error_min}))::bigint AS error_count,
       sum({response_time}::double precision) AS total_response_time,
       count({response_time})::bigint AS response_count,
       max({instant})::timestamptz AS max_timestamp,
       (count(*) FILTER (WHERE {status} >= 200 AND {status} < 300))::bigint AS status_2xx,
       (count(*) FILTER (WHERE {status} >= 300 AND {status} < 400))::bigint AS status_3xx,
       (count(*) FILTER (WHERE {status} >= 400 AND {status} < 500))::bigint AS status_4xx,
       (count(*) FILTER (WHERE {status} >= 500 AND {status} < 600))::bigint AS status_5xx,
       (count(*) FILTER (WHERE {status} IS NULL OR {status} < 200 OR {status} >= 600))::bigint
           AS status_other,
       NULL::timestamptz AS as_of,
       NULL::text AS snapshot
FROM (
    -- the raw rows read (a subquery the planner pulls up: {where} may name system columns,
    -- which a join would hide)
    SELECT * FROM {table} WHERE {endpoint} IS NOT NULL AND {where}
) AS raw_rows
{join}
GROUP BY 1, 2
