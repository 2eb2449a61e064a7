-- The capture trigger (SHARE ROW EXCLUSIVE on the source for the moment it is created).
CREATE TRIGGER {trigger} AFTER INSERT ON {table} REFERENCING NEW TABLE AS epstats_new_rows
FOR EACH STATEMENT EXECUTE FUNCTION {function}()
