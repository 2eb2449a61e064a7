-- Whether the table a retention run was retiring is still there, no partition any more (it
-- detached it, then was stopped before dropping it).
SELECT true FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = %(name)s AND c.relkind = 'r' AND NOT c.relispartition
