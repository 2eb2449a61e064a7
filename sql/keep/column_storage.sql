-- storage: PLAIN, EXTERNAL, EXTENDED or MAIN
ALTER {kind} {view} ALTER COLUMN {field} SET STORAGE {storage}
