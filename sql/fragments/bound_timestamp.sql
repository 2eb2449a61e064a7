-- An instant as wall-clock time in source.naive_timezone, compared with a naive column: the
-- conversion is on the value's side, so the column's index serves the comparison.
({value}::timestamptz AT TIME ZONE {naive_tz})
