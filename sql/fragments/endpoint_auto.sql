-- source.endpoint_ids: auto. A path segment (between two '/', or at either end) that is an
-- identifier becomes {id}: a decimal number; a UUID (8-4-4-4-12 hex digits); 16 or more hex
-- digits; or a token: 16 or more of A-Z a-z 0-9 _ -, with a digit and a letter, where a letter
-- is followed by a digit at least twice or no run of lowercase letters is longer than 5 (so
-- that words such as CreateOauth2CredentialProvider stay). Braces are doubled for
-- psycopg.sql; tests/endpoint_oracle.py is the same rule in Python, and the README shows it.
regexp_replace(
    {value},
    '(?<![^/])(?:[0-9]+|[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}|[0-9a-fA-F]{{16,}}|(?=[A-Za-z0-9_-]{{16}})(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[A-Za-z])(?:(?=(?:[A-Za-z0-9_-]*?[A-Za-z][0-9]){{2}})|(?![A-Za-z0-9_-]*[a-z]{{6}}))[A-Za-z0-9_-]+)(?![^/])',
    '{{id}}',
    'g'
)
