DELETE FROM {view} WHERE day >= %(from_day)s
