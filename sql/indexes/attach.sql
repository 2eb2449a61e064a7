-- A partition's index attached to its parent's: short (no scan); the parent's becomes valid
-- when every partition's is attached.
ALTER INDEX {parent_index} ATTACH PARTITION {partition_index}
