-- The raw rows dated up to the rollup's as-of for the days from %(from_day)s to %(to_day)s,
-- whatever their xmin: those it aggregated and those written since by a transaction its
-- snapshot could not see. The rollup equals these when the difference from verify_window is
-- only rows rewritten since its refresh (an UPDATE, pg_repack): counted, but with a new xmin.
{since} AND {before} AND {day} <= %(to_day)s AND {timestamp} <= {as_of}
