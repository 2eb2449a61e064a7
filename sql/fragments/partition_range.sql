-- Rows of one range of the timestamp column.
({timestamp} >= {lower} AND {timestamp} < {upper})
