-- Which of %(privileges)s (CREATE, ...) the current role lacks on the current database.
SELECT current_database() AS database,
       ARRAY(SELECT p FROM unnest(%(privileges)s::text[]) AS p
             WHERE NOT pg_catalog.has_database_privilege(current_database(), p)) AS missing
