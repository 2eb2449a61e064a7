-- What a partitioned copy of the table cannot keep as it is, one row each: a PRIMARY KEY or
-- UNIQUE constraint or index without the timestamp column (kind unique), a view reading it,
-- a trigger (not epstats's own), a foreign key to or from it, an identity column, row-level
-- security, a rule, membership of a publication.
SELECT 'unique' AS kind, ic.relname::text AS name,
       pg_catalog.pg_get_indexdef(i.indexrelid) AS detail
FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = %(oid)s::oid AND i.indisunique
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = %(oid)s::oid AND a.attname = %(timestamp)s
                    AND a.attnum = ANY (i.indkey::int2[]))
UNION ALL
SELECT DISTINCT 'view', v.oid::regclass::text, 'a view reads it'
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_catalog.pg_rewrite'::regclass
JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
WHERE d.refobjid = %(oid)s::oid AND v.oid <> %(oid)s::oid
UNION ALL
SELECT 'trigger', t.tgname::text, pg_catalog.pg_get_triggerdef(t.oid)
FROM pg_catalog.pg_trigger t
WHERE t.tgrelid = %(oid)s::oid AND NOT t.tgisinternal AND t.tgname <> %(trigger)s
UNION ALL
SELECT 'foreign key', co.conname::text, pg_catalog.pg_get_constraintdef(co.oid)
FROM pg_catalog.pg_constraint co
WHERE co.contype = 'f' AND (co.conrelid = %(oid)s::oid OR co.confrelid = %(oid)s::oid)
UNION ALL
SELECT 'identity', a.attname::text, 'an identity column'
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = %(oid)s::oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity <> ''
UNION ALL
SELECT 'row security', c.relname::text, 'row-level security is enabled'
FROM pg_catalog.pg_class c WHERE c.oid = %(oid)s::oid AND c.relrowsecurity
UNION ALL
SELECT 'rule', r.rulename::text, pg_catalog.pg_get_ruledef(r.oid)
FROM pg_catalog.pg_rewrite r WHERE r.ev_class = %(oid)s::oid AND r.rulename <> '_RETURN'
UNION ALL
SELECT 'publication', p.pubname::text, 'the table is published'
FROM pg_catalog.pg_publication_rel pr JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid
WHERE pr.prrelid = %(oid)s::oid
