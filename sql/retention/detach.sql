-- A retired partition detached (ACCESS EXCLUSIVE on the parent, briefly, under lock_timeout;
-- no scan): no row can land in it any more.
ALTER TABLE {parent} DETACH PARTITION {partition}
