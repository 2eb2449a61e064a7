CREATE {unique}INDEX {index} ON {relation} USING {indexed}
