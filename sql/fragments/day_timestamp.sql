-- The calendar day, in source.timezone, of wall-clock time in source.naive_timezone.
((({timestamp} AT TIME ZONE {naive_tz}) AT TIME ZONE {tz})::date)
