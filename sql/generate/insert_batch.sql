-- Synthetic requests, generated inside the server (no rows travel from the client).
-- Per-endpoint names, median latencies and 5xx rates come in as small arrays, so each row
-- costs a few lookups: skewed popularity (index = K * u1 * u2 * u3: a few hot endpoints, a
-- long tail), log-normal latencies (Box-Muller) around each endpoint's median, a daily cycle
-- (a flat base plus a midday peak in UTC), and 2xx / 4xx / 5xx statuses. Rows come day by
-- day in time order, as an API appends them, so the table's physical order follows time.
INSERT INTO {table} ({endpoint}, {timestamp}, {response_time}, {status})
SELECT (%(names)s::text[])[s.k],
       to_timestamp(%(start_epoch)s::float8 + 86400.0 * (
           s.day_index + CASE WHEN s.tod >= %(offset)s::float8 THEN s.tod - %(offset)s::float8
                              ELSE s.tod - %(offset)s::float8 + 1 END)),
       (%(medians)s::float8[])[s.k]
         * exp(%(sigma)s::float8 * sqrt(-2.0 * ln(s.u1)) * cos(6.283185307179586 * s.u2)),
       CASE WHEN s.u3 < (%(errors)s::float8[])[s.k]
              THEN (ARRAY[500, 500, 502, 503, 504])[1 + (s.u3 / (%(errors)s::float8[])[s.k] * 5)::int %% 5]
            WHEN s.u3 >= 0.96
              THEN (ARRAY[400, 401, 403, 404, 404, 404, 409, 422, 429])[1 + ((s.u3 - 0.96) * 225)::int %% 9]
            ELSE (ARRAY[200, 200, 200, 200, 200, 200, 200, 200, 201, 204])[1 + (s.u3 * 1000)::int %% 10]
       END
FROM (
    SELECT 1 + (%(endpoints)s::int * random() * random() * random())::int %% %(endpoints)s::int AS k,
           floor((%(first)s::float8 + g - 0.5) * %(days)s::int / %(total)s::float8)::int AS day_index,
           CASE WHEN random() < 0.4 THEN random() ELSE (random() + random()) * 0.5 END AS tod,
           1.0 - random() AS u1,
           random() AS u2,
           random() AS u3
    FROM generate_series(1, %(rows)s::int) AS g
) s
