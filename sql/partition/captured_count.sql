-- Rows captured and not yet moved into the new table.
SELECT count(*) FROM {captured}
