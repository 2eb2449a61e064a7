-- A raw row the rollup has not aggregated: dated after its as-of, or dated up to commit_delay
-- before it by a transaction the refresh's snapshot could not see (still open then). Rows
-- without an endpoint are in no report.
({endpoint} IS NOT NULL AND {timestamp} > {after}
 AND ({timestamp} > {as_of} OR NOT pg_visible_in_snapshot({xid8}, %(snapshot)s::pg_snapshot)))
