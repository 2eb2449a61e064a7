-- The bookkeeping row: the instant the rollup is complete through, and the snapshot its
-- refresh read with.
SELECT as_of, snapshot FROM {view} WHERE endpoint IS NULL AND day IS NULL
