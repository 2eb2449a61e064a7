DELETE FROM epstats.rollup_state WHERE view_name = %(view)s
