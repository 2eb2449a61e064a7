-- The tablespace a replaced relation (or index: kind INDEX) was in, for its replacement.
ALTER {kind} {view} SET TABLESPACE {tablespace}
