CREATE INDEX {index} ON {table} USING {method} ({columns})
