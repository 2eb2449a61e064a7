-- The data rows of the days from %(from_day)s to %(to_day)s (a repair recomputes them; the
-- bookkeeping row stays).
DELETE FROM {view} WHERE endpoint IS NOT NULL AND day >= %(from_day)s AND day <= %(to_day)s
