-- Forget the mappings of every rule but those still in use (a rule's mappings are only ever
-- read with that rule, so the others are dead weight).
DELETE FROM epstats.endpoint_map WHERE rule <> ALL (%(keep)s::bigint[])
