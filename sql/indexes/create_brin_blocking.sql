CREATE INDEX {index} ON {table} USING brin ({columns}){with_options}
