CREATE UNIQUE INDEX {index} ON {view} (endpoint, day)
