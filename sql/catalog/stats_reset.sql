SELECT stats_reset FROM pg_catalog.pg_stat_database WHERE datname = current_database()
