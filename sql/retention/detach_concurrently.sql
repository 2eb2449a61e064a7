-- A retired partition detached without blocking writers (PostgreSQL 14+, and only without a
-- default partition); outside any transaction block.
ALTER TABLE {parent} DETACH PARTITION {partition} CONCURRENTLY
