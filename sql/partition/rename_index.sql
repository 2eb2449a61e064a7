ALTER INDEX {index} RENAME TO {new_name}
