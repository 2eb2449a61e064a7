-- The instant a calendar day begins in source.timezone (exact across DST changes).
({day}::date::timestamp AT TIME ZONE {tz})
