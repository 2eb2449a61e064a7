-- The source table ({table}) in a FROM clause that also joins the endpoint map: its columns
-- and its xmin as one of them (the rows a rollup has not aggregated are told by their xmin,
-- fragments/xmin_xid8, and a join hides a table's system columns). A plain subquery: the
-- planner pulls it up, so the timestamp index serves the window as on the table itself.
(SELECT epstats_source.*, epstats_source.xmin FROM {table} AS epstats_source) AS epstats_source
