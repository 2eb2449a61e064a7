-- One batch of a retired day's raw rows deleted (at most %(batch)s, found by the timestamp
-- index, deleted by their ctid), and in the same statement the late ones among them ({late}:
-- not counted by the rollup) merged into it ({merge} reads them from `gone`): no row is
-- deleted uncounted. Its own short transaction, under lock_timeout.
WITH gone AS (
    DELETE FROM {table} AS t
    WHERE ctid = ANY (ARRAY(SELECT ctid FROM {table} WHERE {since} AND {before} LIMIT %(batch)s))
      AND {since} AND {before}
    RETURNING t.*, {late} AS epstats_late
), merged AS (
    {merge}
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS deleted,
       (SELECT count(*) FROM gone WHERE epstats_late) AS late
