-- The rows of {definition} inserted into the rollup {view}: the {columns} it has, in the
-- definition's order (a rollup built before the latency histograms lacks them, and gets the
-- rest).
INSERT INTO {view} ({columns})
SELECT {columns} FROM ({definition}) AS fresh
