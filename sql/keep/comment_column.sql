COMMENT ON COLUMN {attribute} IS {comment}
