SELECT pg_catalog.pg_advisory_unlock(%(k1)s, pg_catalog.hashtext('epstats.indexes:' || %(oid)s::text))
