-- A replacement's days up to the retention horizon, copied from the old rollup {old}: their
-- raw rows are retired, so the rollup alone keeps them (with the parameters it was built with).
INSERT INTO {view} ({columns})
SELECT {columns} FROM {old}
WHERE endpoint IS NOT NULL AND day <= %(through)s::date
