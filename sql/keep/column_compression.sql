ALTER {kind} {view} ALTER COLUMN {field} SET COMPRESSION {compression}
