-- Completes a DETACH ... CONCURRENTLY that was interrupted (the partition is "detach pending").
ALTER TABLE {parent} DETACH PARTITION {partition} FINALIZE
