-- Whether the endpoint has any raw row, at any time (run only when an index leads with it).
SELECT EXISTS (SELECT 1 FROM {table} WHERE {endpoint} = %(endpoint)s) AS seen
