-- The partitioned table beside the source: same columns, defaults, NOT NULL and CHECK
-- constraints, storage, comments and statistics targets; range-partitioned by the timestamp.
CREATE TABLE {new} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE
    INCLUDING COMMENTS INCLUDING STATISTICS INCLUDING GENERATED) PARTITION BY RANGE ({timestamp})
