-- The timestamps of the rows in a few chosen heap blocks (%(blocks)s, at most 1,024), read by
-- a TID scan of their first %(per_page)s line pointers (at most what a block can hold): the
-- cost is those blocks, whatever the table's size. How the measurement of `indexes.*.method: auto` sees how well block
-- ranges are ordered in time.
SELECT (t.ctid::text::point)[0]::bigint AS block,
       extract(epoch FROM t.{timestamp})::float8 AS ts
FROM {table} AS t
WHERE t.ctid = ANY (ARRAY(
          SELECT ('(' || b || ',' || i || ')')::tid
          FROM unnest(%(blocks)s::bigint[]) AS b,
               generate_series(1, least(coalesce(%(per_page)s, 291),
                                         (current_setting('block_size')::int - 24) / 28)) AS i))
  AND t.{timestamp} IS NOT NULL
