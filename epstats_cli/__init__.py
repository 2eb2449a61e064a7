"""epstats: tune and maintain a PostgreSQL endpoint-statistics database."""

__version__ = "0.1.0"
