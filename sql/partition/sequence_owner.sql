ALTER SEQUENCE {sequence} OWNED BY {column}
