CREATE INDEX CONCURRENTLY {index} ON {table} USING brin ({columns}){with_options}
