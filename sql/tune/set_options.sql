-- One table's (or partition's) storage parameters: takes SHARE UPDATE EXCLUSIVE, which
-- INSERTs do not wait for; under lock_timeout like every epstats change.
ALTER TABLE {table} SET ({settings})
