-- Raw endpoints, normalized by the server as the rollup and the reports do (%(raws)s: text[]).
SELECT r.raw, {normalized} AS endpoint
FROM unnest(%(raws)s::text[]) WITH ORDINALITY AS r (raw, n)
ORDER BY r.n
