ALTER {kind} {view} ALTER COLUMN {field} SET STATISTICS {target}
