-- For the statement that aggregates the rollup's rows, in its transaction (rollup/aggregate.py
-- planner_settings): the planner cannot tell how many latency buckets the rows make either.
-- For the statement that joins the map, in its transaction: the planner cannot estimate how
-- many normalized endpoints the rows make (it takes the coalesce of the map's endpoint and the
-- expression for as many groups as rows), so it sorts every row read (an external sort of
-- 10M rows at 10M) to group them, where hashing them keeps one entry per normalized endpoint
-- and day (benchmarks/README.md: the build at 10M rows). A sort the plan cannot do without
-- is still made.
SET LOCAL enable_sort = off
