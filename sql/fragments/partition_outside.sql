-- Rows outside the ranges the copy's batches cover (and rows without a timestamp).
({timestamp} IS NULL OR {timestamp} < {lower} OR {timestamp} >= {upper})
