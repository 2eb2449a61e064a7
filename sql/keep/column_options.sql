-- n_distinct and n_distinct_inherited
ALTER {kind} {view} ALTER COLUMN {field} SET ({column_settings})
