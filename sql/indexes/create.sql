CREATE INDEX CONCURRENTLY {index} ON {table} USING {method} ({columns})
