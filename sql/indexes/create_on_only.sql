-- A recommended index on a partitioned table itself, not its partitions: instant (no rows),
-- invalid until an index of every partition is attached to it.
CREATE INDEX IF NOT EXISTS {index} ON ONLY {table} USING {method} ({columns}){with_options}
