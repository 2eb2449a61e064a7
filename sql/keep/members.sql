-- What belongs to a relation and goes with it when it is dropped, beyond indices and
-- policies: its triggers (not the internal ones of its foreign keys), rules (not a view's
-- _RETURN), constraints (not NOT NULL) and extended statistics, each with the statement that
-- creates it as the server prints it (valid in this session, naming the relation), whether
-- it is enabled (O, D, R, A), and its comment. The constraint's text follows ADD CONSTRAINT
-- name; the statistics' owner and target are kept too.
SELECT 'trigger' AS member, t.oid AS objid, NULL::text AS schema, t.tgname::text AS name,
       pg_catalog.pg_get_triggerdef(t.oid) AS definition, t.tgenabled::text AS enabled,
       NULL::text AS type, NULL::text AS owner, NULL::int AS target,
       pg_catalog.obj_description(t.oid, 'pg_trigger') AS comment
FROM pg_catalog.pg_trigger t
WHERE t.tgrelid = %(oid)s AND NOT t.tgisinternal
UNION ALL
SELECT 'rule', r.oid, NULL, r.rulename::text, pg_catalog.pg_get_ruledef(r.oid),
       r.ev_enabled::text, NULL, NULL, NULL, pg_catalog.obj_description(r.oid, 'pg_rewrite')
FROM pg_catalog.pg_rewrite r
WHERE r.ev_class = %(oid)s AND r.rulename <> '_RETURN'
UNION ALL
SELECT 'constraint', c.oid, NULL, c.conname::text, pg_catalog.pg_get_constraintdef(c.oid),
       NULL, c.contype::text, NULL, NULL, pg_catalog.obj_description(c.oid, 'pg_constraint')
FROM pg_catalog.pg_constraint c
WHERE c.conrelid = %(oid)s AND c.contype <> 'n'
UNION ALL
SELECT 'statistics', s.oid, n.nspname::text, s.stxname::text,
       pg_catalog.pg_get_statisticsobjdef(s.oid), NULL, NULL,
       pg_catalog.pg_get_userbyid(s.stxowner),
       CASE WHEN s.stxstattarget >= 0 THEN s.stxstattarget::int END,
       pg_catalog.obj_description(s.oid, 'pg_statistic_ext')
FROM pg_catalog.pg_statistic_ext s
JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace
WHERE s.stxrelid = %(oid)s
ORDER BY 1, 3, 4
