-- One partition of a partitioned table (created with it, before it holds rows).
CREATE TABLE {partition} PARTITION OF {parent} FOR VALUES FROM ({lower}) TO ({upper}){reloptions}
