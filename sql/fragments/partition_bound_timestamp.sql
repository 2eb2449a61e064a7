-- A partition bound's text as an instant, for a naive column (wall-clock time in
-- source.naive_timezone).
({text}::timestamp AT TIME ZONE {naive_tz})
