ALTER TABLE {table} RENAME CONSTRAINT {constraint} TO {new_name}
