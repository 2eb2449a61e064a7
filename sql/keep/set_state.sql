-- A trigger or rule that was not simply enabled: state DISABLE, ENABLE REPLICA or ENABLE
-- ALWAYS; switched: TRIGGER name or RULE name.
ALTER TABLE {view} {state} {switched}
