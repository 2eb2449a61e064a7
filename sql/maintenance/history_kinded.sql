-- Whether epstats.runs records the kind of a failure (the column `failure`, which `epstats
-- init` adds to a table made by an older version).
SELECT EXISTS (
    SELECT 1 FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = to_regclass('epstats.runs') AND a.attname = 'failure'
      AND a.attnum > 0 AND NOT a.attisdropped
)
