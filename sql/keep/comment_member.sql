-- The comment on a trigger, rule, policy or constraint (member: TRIGGER name, ...) of the
-- replaced table, given again to the one on its replacement.
COMMENT ON {member} ON {view} IS {comment}
