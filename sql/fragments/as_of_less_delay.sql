-- The earliest instant a row the last refresh could not see may be dated at.
(%(as_of)s::timestamptz - %(commit_delay)s::interval)
