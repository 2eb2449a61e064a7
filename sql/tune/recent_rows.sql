-- Rows dated within the last day up to now: the insert rate, measured on the data itself
-- (one range of the timestamp index, bounded, never the whole table).
SELECT count(*) AS rows FROM {table} WHERE {since}
