-- A naive column's wall-clock time in source.naive_timezone, as an instant.
({timestamp} AT TIME ZONE {naive_tz})
