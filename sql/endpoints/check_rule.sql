-- The server compiles a rule's pattern (an error names what is wrong with it).
SELECT regexp_replace('', %(pattern)s, %(replace)s, 'g')
