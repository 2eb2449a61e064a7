-- The CHECK constraint matching a partition's bounds: ATTACH PARTITION then skips its scan.
ALTER TABLE {partition} ADD CONSTRAINT {constraint}
    CHECK ({timestamp} IS NOT NULL AND {timestamp} >= {lower} AND {timestamp} < {upper})
