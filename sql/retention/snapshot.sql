-- The snapshot a comparison read with (in the same REPEATABLE READ transaction): every raw row
-- of the compared days it could see is counted by the rollup; any other is a late row.
SELECT pg_current_snapshot()::text
