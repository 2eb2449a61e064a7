-- The rows sitting in the DEFAULT partition: how many, and their oldest and newest instants.
SELECT count(*) AS count, min({instant}) AS oldest, max({instant}) AS newest FROM {default}
