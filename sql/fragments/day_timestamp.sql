({timestamp}::date)
