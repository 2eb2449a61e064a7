-- Each batch starts from its own seed, so the same --seed gives the same rows.
SELECT setseed(%(seed)s)
