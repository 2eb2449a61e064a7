-- The CHECK constraint has served (the partition constraint holds it now).
ALTER TABLE {partition} DROP CONSTRAINT IF EXISTS {constraint}
