-- A bounded sample of a large source table: whole pages, the same ones on every read of the
-- same table (REPEATABLE), so that the statements of one `epstats endpoints` agree.
TABLESAMPLE SYSTEM (%(percent)s) REPEATABLE (0)
