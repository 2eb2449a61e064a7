"""`epstats advise`: measure size and traffic (measure.py), then apply the performance guide's
sizing rules to the measurements (rules.py, pure)."""
