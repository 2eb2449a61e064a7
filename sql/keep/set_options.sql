-- Storage parameters a replacement keeps (fillfactor, autovacuum_*, toast.*), on the new
-- relation or one of its indices (kind INDEX).
ALTER {kind} {view} SET ({settings})
