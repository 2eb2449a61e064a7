-- For the statement that joins the map, in its transaction: the planner cannot know how often
-- a Memoize over the map's index would hit (most raw endpoints are seen once or twice), and
-- often prefers it, missing, to a hash join several times faster (benchmarks/normalize.py).
-- Without it, it weighs one index lookup per row against a hash join, and costs both right.
SET LOCAL enable_memoize = off
