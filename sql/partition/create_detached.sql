-- A partition made ahead, created on its own (no lock on the parent): the parent's columns,
-- defaults, constraints and storage, and the table's storage parameters.
CREATE TABLE {partition} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS
    INCLUDING STORAGE INCLUDING STATISTICS){reloptions}
