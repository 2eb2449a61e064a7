-- Summarize the block ranges a BRIN index has not summarized yet (autosummarize's requests
-- are dropped when its queue is full). Takes SHARE UPDATE EXCLUSIVE on the table: INSERTs go on.
SELECT pg_catalog.brin_summarize_new_values(%(oid)s::oid::regclass) AS ranges
