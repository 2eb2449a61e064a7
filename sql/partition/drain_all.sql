-- Move every captured row left into the new table (in the swap, while INSERTs wait).
WITH moved AS (DELETE FROM {captured} RETURNING {columns})
INSERT INTO {new} ({columns}) SELECT {columns} FROM moved
