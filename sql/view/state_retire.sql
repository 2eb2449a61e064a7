-- The retention horizon, recorded before any raw row of a day up to it is touched: from then
-- on no refresh, repair or verify recomputes those days from the raw rows (an interrupted
-- retention leaves no half-deleted day they could "repair" the rollup down to). It never
-- moves earlier. RETURNING: the row exists (else nothing was recorded).
UPDATE epstats.rollup_state
SET retired_through = greatest(retired_through, %(through)s::date)
WHERE view_name = %(view)s
RETURNING retired_through
