-- How long ago (by the server's clock) a day began in source.timezone, in seconds.
SELECT extract(epoch FROM now() - {midnight})::double precision AS seconds
