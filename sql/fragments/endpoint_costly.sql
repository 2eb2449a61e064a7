-- A raw endpoint whose `auto` normalization takes the long expression (fragments/endpoint_auto:
-- 16 consecutive characters of A-Z a-z 0-9 _ -): only those are worth a place in the map,
-- the others are normalized as they are read, by the short one, for less than a lookup costs.
{value} ~ '[A-Za-z0-9_-]{{16}}'
