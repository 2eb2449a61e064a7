-- identity: FULL, NOTHING, or USING INDEX name (an index the replacement has by then)
ALTER TABLE {view} REPLICA IDENTITY {identity}
