-- One batch of the copy: the source's rows in a range into the new table, and, in the same
-- snapshot, the captured rows of that range forgotten (this copy holds them: a row and its
-- capture were written by one transaction, so both are seen or neither).
WITH copied AS (
    INSERT INTO {new} ({columns}) SELECT {columns} FROM ONLY {table} WHERE {range} RETURNING 1
), known AS (
    DELETE FROM {captured} WHERE {range} RETURNING 1
)
SELECT (SELECT count(*) FROM copied) AS copied, (SELECT count(*) FROM known) AS known
