-- A CHECK or FOREIGN KEY constraint of the replaced table, on its replacement (in the swap),
-- as pg_get_constraintdef printed it.
ALTER TABLE {view} ADD CONSTRAINT {constraint} {condition}
