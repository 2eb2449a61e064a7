-- In the transaction that recomputes days from %(from_day)s on: fails (division by zero,
-- SQLSTATE 22012, which the step names) when the retention horizon recorded now reaches those
-- days, so a refresh planned before a retention run recorded it never recomputes a retired
-- day from what is left of its raw rows.
SELECT 1 / (count(*) = 0)::int
FROM epstats.rollup_state
WHERE view_name = %(view)s AND retired_through >= %(from_day)s::date
