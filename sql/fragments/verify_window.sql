-- The raw rows the rollup holds for the days from %(from_day)s to %(to_day)s: those it
-- aggregated (dated up to its as-of and seen by its snapshot).
{since} AND {day} <= %(to_day)s AND {timestamp} <= {as_of} AND NOT {unaggregated}
