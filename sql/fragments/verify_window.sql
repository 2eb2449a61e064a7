-- The raw rows the rollup holds for the days from %(from_day)s to %(to_day)s: those it
-- aggregated (dated up to its as-of and seen by its snapshot). {since} and {before} make it a
-- range of the timestamp index.
{since} AND {before} AND {day} <= %(to_day)s AND {timestamp} <= {as_of} AND NOT {unaggregated}
