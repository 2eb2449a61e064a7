GRANT {privileges} ON TABLE {relation} TO {grantee}{option}
