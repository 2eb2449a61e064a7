{timestamp} >= {from_day}::date
