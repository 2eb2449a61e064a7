-- The newest raw row dated up to now(), looked for only in a window before now (from_ts:
-- check.ingest_stalled's largest level), so the scan is a bounded range of the timestamp
-- column whatever index serves it. max() of the bare column (one end of a btree index),
-- converted to an instant afterwards; rows dated in the future do not count.
SELECT {instant} AS newest,
       extract(epoch FROM now() - {instant})::float8 AS age_seconds
FROM (SELECT max({timestamp}) AS {timestamp}
      FROM {table}
      WHERE {timestamp} <= {now} AND {timestamp} > {from_ts}) AS newest
