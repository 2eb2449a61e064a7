-- source.endpoint_ids: auto. A path segment (between two '/', or at either end) that is an
-- identifier becomes {id}: a decimal number; 16 or more hex digits; a UUID (8-4-4-4-12 hex
-- digits); or a token: 16 or more of A-Z a-z 0-9 _ -, with a digit and a letter, where a
-- letter is followed by a digit at least twice or no run of lowercase letters is longer than
-- 5 (so that words such as CreateOauth2CredentialProvider stay). tests/endpoint_oracle.py is
-- the same rule in Python, and the README shows it. Braces are doubled for psycopg.sql.
-- A path without 16 consecutive characters of A-Z a-z 0-9 _ - holds no identifier but
-- decimal numbers: one short regular expression. Any other is split into its segments, each
-- tested with anchored regular expressions without bounded repetitions and with length and
-- substr: a bounded repetition (a UUID's {{8}}-{{4}}-...) costs several times as much, and
-- translate() with a long list of characters ten times as much (benchmarks/README.md).
CASE WHEN {value} ~ '[A-Za-z0-9_-]{{16}}'
THEN array_to_string(ARRAY(
    SELECT CASE WHEN s ~ '^[0-9]+$' THEN '{{id}}'
                WHEN length(s) < 16 THEN s
                WHEN s ~ '^[0-9a-fA-F]+$' THEN '{{id}}'
                WHEN length(s) = 36
                     AND s ~ '^[0-9a-fA-F]+-[0-9a-fA-F]+-[0-9a-fA-F]+-[0-9a-fA-F]+-[0-9a-fA-F]+$'
                     AND substr(s, 9, 1) = '-' AND substr(s, 14, 1) = '-'
                     AND substr(s, 19, 1) = '-' AND substr(s, 24, 1) = '-' THEN '{{id}}'
                WHEN s ~ '^[A-Za-z0-9_-]+$' AND s ~ '[0-9]' AND s ~ '[A-Za-z]'
                     AND (s ~ '[A-Za-z][0-9].*[A-Za-z][0-9]' OR s !~ '[a-z]{{6}}') THEN '{{id}}'
                ELSE s
           END
    FROM unnest(string_to_array({value}, '/')) WITH ORDINALITY AS epstats_segment (s, n)
    ORDER BY n
), '/')
ELSE regexp_replace({value}, '(?<![^/])[0-9]+(?![^/])', '{{id}}', 'g')
END
