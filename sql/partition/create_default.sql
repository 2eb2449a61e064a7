-- The DEFAULT partition: rows outside every range (a late row before the first partition, a
-- row dated beyond the partitions made ahead) land here instead of failing the INSERT.
CREATE TABLE {partition} PARTITION OF {parent} DEFAULT{reloptions}
