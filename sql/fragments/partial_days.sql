-- A raw row of a window's partial days, which auto reads from the raw rows, not the rollup:
-- its head, %(from_ts)s to %(head_to)s, or its tail, %(tail_from)s to %(to_ts)s (two ranges
-- of the timestamp index). NULL parameters: no such part (the condition is then not true).
(({timestamp} >= {from_ts} AND {timestamp} < {head_to})
 OR ({timestamp} >= {tail_from} AND {timestamp} < {to_ts}))
