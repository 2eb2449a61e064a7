ALTER {kind} {view} RENAME TO {new_name}
