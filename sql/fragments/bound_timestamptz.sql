-- An instant compared with a timestamptz column.
({value}::timestamptz)
