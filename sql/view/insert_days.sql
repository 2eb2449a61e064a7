INSERT INTO {view} {definition}
