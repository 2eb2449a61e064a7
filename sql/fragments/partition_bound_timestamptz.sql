-- A partition bound's text (as pg_get_expr prints it) as an instant, for a timestamptz column.
({text}::timestamptz)
