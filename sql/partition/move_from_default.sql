-- Rows of a new partition's range that landed in the DEFAULT partition, moved into it before
-- it is attached (an ATTACH would fail on them).
WITH moved AS (DELETE FROM {default} WHERE {range} RETURNING {columns})
INSERT INTO {partition} ({columns}) SELECT {columns} FROM moved
