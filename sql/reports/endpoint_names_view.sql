SELECT DISTINCT endpoint FROM {view} WHERE day >= %(from_day)s
