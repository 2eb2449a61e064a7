-- The calendar day of an instant in source.timezone, whatever the session's TimeZone.
(({timestamp} AT TIME ZONE {tz})::date)
