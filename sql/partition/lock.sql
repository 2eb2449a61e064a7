-- The swap's lock on the source: INSERTs wait from here to COMMIT (a few statements).
LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE
