COMMENT ON TABLE {view} IS {comment}
