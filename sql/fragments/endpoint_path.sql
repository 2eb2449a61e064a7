-- An endpoint's path: the text before its first '?' (the query string is no part of a route).
split_part({value}, '?', 1)
