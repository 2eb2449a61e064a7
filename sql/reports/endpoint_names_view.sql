SELECT DISTINCT endpoint FROM {view} WHERE endpoint IS NOT NULL AND day >= %(from_day)s
