-- SHARE UPDATE EXCLUSIVE on the parent: INSERTs go on; ACCESS EXCLUSIVE on the new partition
-- (nobody uses it yet) and, when there is one, on the DEFAULT partition, which is scanned.
ALTER TABLE {parent} ATTACH PARTITION {partition} FOR VALUES FROM ({lower}) TO ({upper})
