"""A real PgBouncer in front of a test cluster, in session, transaction or statement mode.

PgBouncer comes from Debian (`apt-get install pgbouncer`, /usr/sbin/pgbouncer). It refuses to
run as root, so as root it runs as the unprivileged user the clusters already run as
(`tests.pgcluster.SERVER_USER`); its directory (ini, auth_file, log) is owned by that user.

Authentication is SCRAM end to end, without a plain password on disk: the auth_file holds
each role's SCRAM secret as read from `pg_authid`, PgBouncer checks the client's SCRAM proof
against it and, having seen the proof, logs in to the server with the same secret. Every
database name maps to the cluster (`* = ...`), and pools are per (database, user), so a test
that uses a fresh database also gets a fresh pool. `default_pool_size` is small (2 unless
told) so that clients share server connections the way they do in production.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import psycopg

from tests.pgcluster import SUPERUSER_PASSWORD, Cluster, _free_port, _server_user

# A login role that is not in admin_users/stats_users: PgBouncer's console refuses it.
# The pooler fixtures (tests/conftest_pooler.py) create it before starting PgBouncer.
APP_ROLE = "epstats_app"
APP_PASSWORD = "app-test-pw"

PoolMode = Literal["session", "transaction", "statement"]
POOL_MODES: tuple[PoolMode, ...] = ("session", "transaction", "statement")


def pgbouncer_binary() -> Path | None:
    """The pgbouncer executable, or None when it is not installed."""
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")
    return Path(found) if found else None


def scram_secrets(cluster: Cluster) -> dict[str, str]:
    """Every login role of the cluster that has a SCRAM secret: {name: secret}."""
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT rolname, rolpassword FROM pg_authid"
            " WHERE rolcanlogin AND rolpassword LIKE 'SCRAM-SHA-256$%'"
        ).fetchall()
    return {str(name): str(secret) for name, secret in rows}


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@dataclass
class PgBouncer:
    """One running PgBouncer; `dsn_for` gives DSNs through it, `admin` runs console commands."""

    cluster: Cluster
    pool_mode: PoolMode
    pool_size: int
    port: int
    workdir: Path
    user: str | None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def dsn_for(
        self, dbname: str, user: str = "postgres", password: str = SUPERUSER_PASSWORD
    ) -> str:
        """A DSN for `dbname` on the cluster, through this PgBouncer."""
        return f"host=127.0.0.1 port={self.port} user={user} password={password} dbname={dbname}"

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    @property
    def log(self) -> str:
        """PgBouncer's log so far (for assertion messages)."""
        path = self.workdir / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def admin(self, command: str) -> list[dict[str, Any]]:
        """Run a console command (`SHOW POOLS`, `SHOW SERVERS`, ...) as the admin user."""
        from psycopg.rows import dict_row

        # The console speaks the simple protocol only and knows no transactions.
        with psycopg.connect(self.dsn_for("pgbouncer"), autocommit=True) as conn:
            cur = psycopg.ClientCursor(conn, row_factory=dict_row)
            cur.execute(command)
            return cur.fetchall() if cur.description else []

    def write_auth_file(self) -> None:
        """(Re)write the auth_file from the cluster's current SCRAM secrets."""
        lines = [f"{_quote(n)} {_quote(s)}" for n, s in sorted(scram_secrets(self.cluster).items())]
        path = self.workdir / "userlist.txt"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        self._chown(path)

    def reload(self) -> None:
        """Re-read the roles' secrets (after CREATE ROLE / ALTER ROLE ... PASSWORD) and reload."""
        self.write_auth_file()
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)
        time.sleep(0.2)

    def _chown(self, path: Path) -> None:
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _write_ini(self, settings: dict[str, str | int]) -> Path:
        values: dict[str, str | int] = {
            "listen_addr": "127.0.0.1",
            "listen_port": self.port,
            "unix_socket_dir": "",
            "auth_type": "scram-sha-256",
            "auth_file": str(self.workdir / "userlist.txt"),
            "admin_users": "postgres",
            "pool_mode": self.pool_mode,
            "default_pool_size": self.pool_size,
            "max_client_conn": 200,
            # A client waiting for a server connection fails after 10s, not PgBouncer's 120s.
            "query_wait_timeout": 10,
            "logfile": str(self.workdir / "pgbouncer.log"),
            "log_connections": 0,
            "log_disconnections": 0,
        }
        values.update(settings)
        ini = self.workdir / "pgbouncer.ini"
        body = [
            "[databases]",
            f"* = host=127.0.0.1 port={self.cluster.port}",
            "",
            "[pgbouncer]",
            *(f"{key} = {value}" for key, value in values.items()),
        ]
        ini.write_text("\n".join(body) + "\n")
        self._chown(ini)
        return ini

    def start(self, settings: dict[str, str | int] | None = None) -> None:
        binary = pgbouncer_binary()
        if binary is None:
            raise FileNotFoundError("pgbouncer is not installed (apt-get install pgbouncer)")
        self.write_auth_file()
        ini = self._write_ini(settings or {})
        self.process = subprocess.Popen(
            [str(binary), str(ini)],
            user=self.user,
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {self.process.returncode}:\n{self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"pgbouncer did not listen on {self.port} within 15s:\n{self.log}")

    def stop(self) -> None:
        """Stop PgBouncer (SIGTERM: immediate shutdown) and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_pgbouncer(
    cluster: Cluster,
    pool_mode: PoolMode,
    *,
    pool_size: int = 2,
    settings: dict[str, str | int] | None = None,
) -> PgBouncer:
    """Start PgBouncer in `pool_mode` in front of `cluster` on a free 127.0.0.1 port.

    `settings` adds or overrides `[pgbouncer]` keys. Use it as a context manager or call stop().
    """
    user = _server_user()
    workdir = Path(tempfile.mkdtemp(prefix=f"epstats-pgbouncer-{pool_mode}-"))
    workdir.chmod(0o700)
    bouncer = PgBouncer(cluster, pool_mode, pool_size, _free_port(), workdir, user)
    bouncer._chown(workdir)
    try:
        bouncer.start(settings)
    except BaseException:
        bouncer.stop()
        raise
    return bouncer
