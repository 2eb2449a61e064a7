-- Raw rows newer than the rollup's watermark: not in it yet.
SELECT count(*) FROM {table} WHERE {timestamp} > %(watermark)s
