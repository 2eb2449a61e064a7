-- Upgrades epstats's own tables in place when a newer version added a column.
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {type}
