-- Synthetic requests, generated inside the server (no rows travel from the client).
-- `shape` is built once per statement from the seeded random() sequence: sorted samples of
-- a log-normal latency factor (Box-Muller) and of the time of day (a flat base plus a midday
-- peak in UTC), and 1,000 statuses for each class of endpoint (endpoint k has class
-- (k - 1) mod the number of classes; a class has its own 5xx rate, 4% 4xx, the rest 2xx). A row then costs a few random numbers and array lookups: skewed endpoint popularity
-- (index = K * u1 * u2 * u3: a few hot endpoints, a long tail), the endpoint's median
-- latency times a latency sample, a time of day, a status. Rows come day by day in time
-- order, as an API appends them, so the table's physical order follows time.
WITH shape AS MATERIALIZED (
    SELECT
        (SELECT array_agg(v ORDER BY v) FROM (
            SELECT exp(%(sigma)s::float8 * sqrt(-2.0 * ln(1.0 - random()))
                       * cos(6.283185307179586 * random())) AS v
            FROM generate_series(1, 4096)) l) AS latency,
        -- in seconds, scaled by 4095/4096 so that a sample plus its jitter (below) stays
        -- within the day
        (SELECT array_agg((CASE WHEN v >= %(offset)s::float8 THEN v - %(offset)s::float8
                                ELSE v - %(offset)s::float8 + 1 END) * (86400.0 * 4095 / 4096)
                          ORDER BY v) FROM (
            SELECT CASE WHEN random() < 0.4 THEN random()
                        ELSE (random() + random()) * 0.5 END AS v
            FROM generate_series(1, 4096)) t) AS time_of_day,
        (SELECT array_agg(
            CASE WHEN j < round((%(errors)s::float8[])[k] * 1000)
                   THEN (ARRAY[500, 500, 502, 503, 504])[1 + j %% 5]
                 WHEN j < round((%(errors)s::float8[])[k] * 1000) + 40
                   THEN (ARRAY[400, 401, 403, 404, 404, 404, 409, 422, 429])[1 + j %% 9]
                 ELSE (ARRAY[200, 200, 200, 200, 200, 200, 200, 200, 201, 204])[1 + j %% 10]
            END ORDER BY k, j)
         FROM generate_series(1, cardinality(%(errors)s::float8[])) k,
              generate_series(0, 999) j) AS statuses
)
INSERT INTO {table} ({endpoint}, {timestamp}, {response_time}, {status})
SELECT (%(names)s::text[])[s.k],
       to_timestamp(s.day_start + shape.time_of_day[1 + s.i1] + (s.x1 - s.i1) * 21.09375),
       (%(medians)s::float8[])[s.k] * shape.latency[1 + (s.u2 * 4096 - 0.5)::int],
       shape.statuses[((s.k - 1) %% %(classes)s::int) * 1000 + 1
                      + (s.u3 * 1000)::int %% 1000]
FROM shape, (
    -- (x - 0.5)::int is floor(x) for x >= 0 without a function call per row
    SELECT k, day_start, x1, (x1 - 0.5)::int AS i1, u2, u3
    FROM (
        SELECT 1 + (%(endpoints)s::int * random() * random() * random())::int
                   %% %(endpoints)s::int AS k,
               %(start_epoch)s::float8
                 + ((%(first)s::bigint + g - 1) * %(days)s::int / %(total)s::bigint) * 86400
                   AS day_start,
               random() * 4096 AS x1,
               random() AS u2,
               random() AS u3
        FROM generate_series(1, %(rows)s::int) AS g
    ) r
) s
