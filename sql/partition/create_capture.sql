-- The capture table: every row written to the source while it is converted, in order.
CREATE TABLE {captured} (LIKE {table}, epstats_captured_id bigserial)
