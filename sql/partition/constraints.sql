-- The PRIMARY KEY and UNIQUE constraints of the table with their indices' names (a
-- partitioned copy recreates those that include the timestamp column), as the server prints
-- them.
SELECT co.conname::text AS name, ic.relname::text AS index,
       pg_catalog.pg_get_constraintdef(co.oid) AS definition
FROM pg_catalog.pg_constraint co
JOIN pg_catalog.pg_class ic ON ic.oid = co.conindid
WHERE co.conrelid = %(oid)s::oid AND co.contype IN ('p', 'u')
ORDER BY co.conname
