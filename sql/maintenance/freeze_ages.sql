-- The transaction-ID and multixact ages of a relation or, partitioned, of each of its leaf
-- partitions (a partitioned parent has neither), each with its TOAST table's if older: what
-- `vacuum --min-xid-age/--min-mxid-age` compare, relation by relation, as vacuumdb does.
SELECT c.oid, n.nspname AS schema, c.relname AS name,
       greatest(age(c.relfrozenxid),
                CASE WHEN t.relfrozenxid <> '0' THEN age(t.relfrozenxid) END) AS xid_age,
       greatest(mxid_age(c.relminmxid),
                CASE WHEN t.relminmxid <> '0' THEN mxid_age(t.relminmxid) END) AS mxid_age
FROM (SELECT %(oid)s::oid AS relid
      UNION
      SELECT tree.relid FROM pg_catalog.pg_partition_tree(%(oid)s::oid) tree) members
JOIN pg_catalog.pg_class c ON c.oid = members.relid AND c.relkind IN ('r', 'm')
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
ORDER BY n.nspname, c.relname
