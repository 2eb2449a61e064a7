-- `analyze --in-stages`: this transaction's default_statistics_target (a stage's), as
-- SET LOCAL would set it; a parameter cannot be bound in SET itself.
SELECT pg_catalog.set_config('default_statistics_target', %(target)s, true)
