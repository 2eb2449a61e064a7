-- What the running role may do about relations owned by `owner` in `schema`: drop or rename
-- them (the owner's privileges), give a new relation to the owner (membership: ALTER ... OWNER
-- TO), whether the owner may own one there (CREATE on the schema, unless we are superuser),
-- whether the running role may create one there, and whether the owner is a superuser (its
-- role is never to be granted).
SELECT current_user AS me,
       (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) AS superuser,
       pg_catalog.pg_has_role(%(owner)s::name, 'USAGE') AS can_use,
       pg_catalog.pg_has_role(%(owner)s::name, 'MEMBER') AS can_give,
       pg_catalog.has_schema_privilege(%(owner)s::name, %(schema)s::text, 'CREATE') AS owner_can_create,
       pg_catalog.has_schema_privilege(%(schema)s::text, 'CREATE') AS can_create,
       (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = %(owner)s) AS owner_superuser
