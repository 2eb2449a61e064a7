-- The partitions directly under a partitioned table, with their range bounds as instants
-- ({lower}/{upper}: the bound's text as the timestamp column's type, made an instant; NULL for
-- MINVALUE, MAXVALUE and a DEFAULT partition) and the local days they span in %(tz)s.
WITH parts AS (
    SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind,
           greatest(c.reltuples, 0)::bigint AS rows,
           pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound
    FROM pg_catalog.pg_inherits i
    JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE i.inhparent = %(oid)s::oid
), texts AS (
    SELECT parts.*, bound = 'DEFAULT' AS is_default,
           substring(bound FROM 'FROM \(''([^'']+)''\)') AS lower_text,
           substring(bound FROM 'TO \(''([^'']+)''\)') AS upper_text
    FROM parts
), instants AS (
    SELECT texts.*, ({lower})::timestamptz AS lower_ts, ({upper})::timestamptz AS upper_ts
    FROM texts
)
SELECT oid, schema, name, relkind, rows, bound, is_default, lower_ts, upper_ts,
       (lower_ts AT TIME ZONE %(tz)s)::date AS first_day,
       ((upper_ts - interval '1 microsecond') AT TIME ZONE %(tz)s)::date AS last_day,
       coalesce((lower_ts AT TIME ZONE %(tz)s)::time = '00:00'
                AND (upper_ts AT TIME ZONE %(tz)s)::time = '00:00', false) AS whole_days
FROM instants
ORDER BY is_default, lower_ts NULLS FIRST, name
