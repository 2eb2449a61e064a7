-- The late rows of a detached partition {table} merged into the rollup ({merge}, reading the
-- table itself), before it is dropped in the same transaction: how many rows it held, and how
-- many of them were late.
WITH merged AS (
    {merge}
    RETURNING 1
)
SELECT (SELECT count(*) FROM {table}) AS total_rows,
       (SELECT coalesce(sum(request_count), 0) FROM ({rows}) AS late) AS late_rows
