-- The session's statement_timeout: bounds the repairs after an interruption.
SELECT set_config('statement_timeout', %(timeout)s, false)
