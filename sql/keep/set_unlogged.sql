-- An unlogged rollup table's replacement is unlogged too (set while it is still empty).
ALTER TABLE {view} SET UNLOGGED
