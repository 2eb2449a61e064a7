-- What the running role may do about relations owned by `owner` in `schema` (PostgreSQL 16
-- and later: giving a relation to a role needs the SET option of the membership), and whether
-- the owner is a superuser (its role is never to be granted).
SELECT current_user AS me,
       (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) AS superuser,
       pg_catalog.pg_has_role(%(owner)s::name, 'USAGE') AS can_use,
       pg_catalog.pg_has_role(%(owner)s::name, 'SET') AS can_give,
       pg_catalog.has_schema_privilege(%(owner)s::name, %(schema)s::text, 'CREATE') AS owner_can_create,
       pg_catalog.has_schema_privilege(%(schema)s::text, 'CREATE') AS can_create,
       (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = %(owner)s) AS owner_superuser
