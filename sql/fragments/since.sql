{timestamp} >= {from_ts}
