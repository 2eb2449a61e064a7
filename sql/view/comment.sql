-- The short description a first `view build` gives the rollup; from then on the comment is
-- its users' (epstats's own bookkeeping is in epstats.rollup_state).
COMMENT ON {kind} {view} IS {comment}
