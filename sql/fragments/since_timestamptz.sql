{timestamp} >= ({from_day}::date::timestamp AT TIME ZONE {tz})
