-- The timestamp before local midnight of the day after %(to_day)s (an index bound).
{timestamp} < {until_ts}
