-- The days a refresh recomputes, and the bookkeeping row it writes anew.
DELETE FROM {view} WHERE day >= %(from_day)s OR (endpoint IS NULL AND day IS NULL)
