DROP VIEW {views}
