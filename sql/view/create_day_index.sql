CREATE INDEX {index} ON {view} (day)
