-- A local midnight (a timestamp in source.timezone) as a naive column holds it: wall-clock
-- time in source.naive_timezone, as text.
to_char(({local} AT TIME ZONE {tz}) AT TIME ZONE {naive_tz}, 'YYYY-MM-DD"T"HH24:MI:SS.US')
