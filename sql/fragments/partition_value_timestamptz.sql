-- A local midnight (a timestamp in source.timezone) as a timestamptz column holds it, as text
-- with its offset (a partition bound, whatever the session's TimeZone).
to_char({local} AT TIME ZONE {tz} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')
