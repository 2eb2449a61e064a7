{timestamp}
