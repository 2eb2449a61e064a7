{timestamp} <= {now}
