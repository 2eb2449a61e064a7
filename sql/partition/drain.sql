-- Move the oldest captured rows into the new table (each moved once: deleted as copied).
WITH moved AS (
    DELETE FROM {captured} WHERE epstats_captured_id IN (
        SELECT epstats_captured_id FROM {captured} ORDER BY epstats_captured_id LIMIT %(limit)s)
    RETURNING {columns}
)
INSERT INTO {new} ({columns}) SELECT {columns} FROM moved
