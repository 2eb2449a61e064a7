SELECT pg_advisory_unlock(%(k1)s, hashtext(%(key)s))
