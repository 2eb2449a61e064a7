-- Whether the endpoint has any request at all, outside the window too: a day of the rollup
-- (its unique (endpoint, day) index), or a raw row the rollup has not aggregated ({unaggregated}
-- bounds the timestamp below by its as-of less view.commit_delay; {normalized} and {join}: as
-- in top_raw).
SELECT EXISTS (SELECT 1 FROM {view} WHERE endpoint = %(endpoint)s)
    OR EXISTS (SELECT 1 FROM {table} {join} WHERE {normalized} = %(endpoint)s AND {unaggregated}) AS seen
