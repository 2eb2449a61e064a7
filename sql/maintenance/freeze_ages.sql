-- The oldest transaction-ID and multixact ages of a relation, its partitions and their TOAST
-- tables (a partitioned parent has neither): what `vacuum --min-xid-age/--min-mxid-age`
-- compare, as vacuumdb does.
SELECT max(greatest(age(c.relfrozenxid),
                    CASE WHEN t.relfrozenxid <> '0' THEN age(t.relfrozenxid) END)) AS xid_age,
       max(greatest(mxid_age(c.relminmxid),
                    CASE WHEN t.relminmxid <> '0' THEN mxid_age(t.relminmxid) END)) AS mxid_age
FROM (SELECT %(oid)s::oid AS relid
      UNION
      SELECT tree.relid FROM pg_catalog.pg_partition_tree(%(oid)s::oid) tree) members
JOIN pg_catalog.pg_class c ON c.oid = members.relid AND c.relkind IN ('r', 'm')
LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
