-- How many raw rows the days %(from_day)s to %(to_day)s have in {table} (two ends of the
-- timestamp index): the whole of a progress bar over their DELETE batches, counted only for
-- a person watching at a terminal.
SELECT count(*) FROM {table} WHERE {since} AND {before}
