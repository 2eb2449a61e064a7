-- A policy of the replaced table, on its replacement (in the swap, under the same name):
-- permissive: PERMISSIVE or RESTRICTIVE; command: ALL, SELECT, INSERT, UPDATE or DELETE;
-- using and check: " USING (...)" and " WITH CHECK (...)" as the server printed them, or empty.
CREATE POLICY {policy} ON {view} AS {permissive} FOR {command} TO {roles}{using}{check}
