-- The rows sitting in the DEFAULT partition: how many, and their oldest and newest instants;
-- how many of them are dated before %(retired_before)s (older than source.retention: the
-- retention task retires them; NULL: no retention, none).
SELECT count(*) AS count, min({instant}) AS oldest, max({instant}) AS newest,
       count(*) FILTER (WHERE {instant} < %(retired_before)s) AS retired
FROM {default}
