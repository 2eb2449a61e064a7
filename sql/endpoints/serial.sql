-- For `epstats endpoints`, in its read-only transaction: no parallel plans. Its sample is
-- bounded, and a parallel DISTINCT over raw endpoints whose number the planner underestimates
-- can spill into hundreds of thousands of batches (seen on PostgreSQL 18: minutes, where the
-- serial plan takes a second).
SET LOCAL max_parallel_workers_per_gather = 0
