(({timestamp} AT TIME ZONE {tz})::date)
