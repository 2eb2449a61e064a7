VACUUM ({options}) {table}
