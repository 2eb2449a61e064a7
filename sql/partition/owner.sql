-- A relation's owner (partitions made ahead get the table's).
SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c WHERE c.oid = %(oid)s::oid
