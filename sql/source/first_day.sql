-- The day (in source.timezone) of the oldest raw row dated from local midnight of %(from_day)s
-- on: min() of the bare column, one end of the timestamp index.
SELECT {day} AS day
FROM (SELECT min({timestamp}) AS {timestamp} FROM {table} WHERE {since}) AS oldest
