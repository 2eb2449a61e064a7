-- The capture trigger's function: copies the rows each INSERT statement wrote (a transition
-- table) to the capture table, as the table's owner (the API's role needs no right on it).
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO {captured} ({columns}) SELECT {columns} FROM epstats_new_rows;
    RETURN NULL;
END
$$
