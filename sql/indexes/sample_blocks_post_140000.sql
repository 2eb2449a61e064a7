-- The timestamps of the rows in a few chosen heap blocks (%(blocks)s, at most 1,024), each
-- block read once by a TID range scan (PostgreSQL 14+): the cost is those blocks, whatever
-- the table's size. How the measurement of `indexes.*.method: auto` sees how well block
-- ranges are ordered in time.
SELECT b.block,
       extract(epoch FROM t.ts)::float8 AS ts
FROM unnest(%(blocks)s::bigint[]) AS b(block)
CROSS JOIN LATERAL (
    SELECT s.{timestamp} AS ts
    FROM {table} AS s
    WHERE s.ctid >= ('(' || b.block || ',0)')::tid
      AND s.ctid < ('(' || b.block + 1 || ',0)')::tid
    OFFSET 0  -- planned on its own: the block is a parameter of a TID range scan per block
) AS t
WHERE t.ts IS NOT NULL
