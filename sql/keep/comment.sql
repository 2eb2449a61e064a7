COMMENT ON {kind} {relation} IS {comment}
