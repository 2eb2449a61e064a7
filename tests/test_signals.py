"""SIGTERM and SIGHUP stop epstats as Ctrl-C does (issue 13, item 4): the server statement is
cancelled, what the step left is repaired within a few seconds (or left to cleanup, and
said), the run is recorded as interrupted, and the exit code says which signal it was. Real
processes (`python -m epstats_cli`), real signals, a real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from epstats_cli import history
from epstats_cli.config import Config
from epstats_cli.db import connect
from epstats_cli.execute import Executor, Statement, Step
from tests.conftest import Server, run_cli
from tests.helpers import fill, invalid_indexes

pytestmark = pytest.mark.one_version  # heavy: the first server version only


def _epstats(cfg: str, dsn: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PGOPTIONS": "-c maintenance_work_mem=1MB"}  # a slow enough build
    env.pop("EPSTATS_CONFIG", None)
    env.pop("EPSTATS_DSN", None)
    return subprocess.Popen(
        [sys.executable, "-m", "epstats_cli", "-c", cfg, "--dsn", dsn, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for(conn: psycopg.Connection[Any], proc: subprocess.Popen[str], query: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if conn.execute(query).fetchone():
            return
        time.sleep(0.02)
    raise AssertionError(f"never saw: {query}")


BUILDING = (
    "SELECT 1 FROM pg_stat_progress_create_index p JOIN pg_stat_activity a ON a.pid = p.pid "
    "WHERE a.application_name = 'epstats' AND p.phase LIKE 'building index%%'"
)
WAITING = (
    "SELECT 1 FROM pg_stat_activity WHERE application_name = 'epstats' "
    "AND wait_event_type = 'Lock' AND query LIKE 'CREATE INDEX CONCURRENTLY%%'"
)


def _runs(conn: psycopg.Connection[Any], task: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT target, status, error, finished_at IS NOT NULL FROM epstats.runs "
        "WHERE task = %s ORDER BY id",
        (task,),
    ).fetchall()


def _ready(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path, rows: int) -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("database: {lock_timeout: 2s}\n")
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, rows)
    return str(cfg)


def test_sigterm_during_reindex_cancels_repairs_and_records(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path, 600_000)
    assert run_cli("-c", cfg, "--dsn", dsn, "indexes", "apply").code == 0
    proc = _epstats(cfg, dsn, "reindex", "--index", "idx_requests_endpoint_timestamp")
    _wait_for(conn, proc, BUILDING)
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, (out, err)
    assert time.monotonic() - start < 8
    assert err.startswith("epstats: interrupted by SIGTERM (the server-side statement was "), err
    assert "reindex public.idx_requests_endpoint_timestamp did not finish" in err
    assert "Traceback" not in err
    if invalid_indexes(conn):  # a loaded machine: not dropped within the few seconds, and said
        left = "the invalid index idx_requests_endpoint_timestamp_ccnew could not be dropped"
        assert left in err and "epstats maintain --only cleanup" in err, err
        assert run_cli("-c", cfg, "--dsn", dsn, "maintain", "--only", "cleanup").code == 0
    assert invalid_indexes(conn) == []  # the _ccnew copy was dropped in time, or by cleanup
    assert conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'epstats'"
    ).fetchone() == (0,)
    [(target, status, error, finished)] = _runs(conn, "reindex")
    assert (target, status, finished) == (
        "public.idx_requests_endpoint_timestamp",
        "interrupted",
        True,
    )
    assert error.startswith("interrupted by SIGTERM")
    # the whole task (`reindex` of every index): its own row is interrupted too
    proc = _epstats(cfg, dsn, "reindex")
    _wait_for(conn, proc, BUILDING)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, (out, err)
    rows = _runs(conn, "reindex")[1:]
    assert rows[0][:2] == ("indices of public.requests", "interrupted"), (rows, err)
    assert rows[-1][1] == "interrupted" and all(r[3] for r in rows)
    if invalid_indexes(conn):
        assert "could not be dropped in time" in err, err
        assert run_cli("-c", cfg, "--dsn", dsn, "maintain", "--only", "cleanup").code == 0
    assert invalid_indexes(conn) == []


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_signal_while_waiting_leaves_the_leftover_to_cleanup(
    signum: int, code: int, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path, 20_000)
    holder = psycopg.connect(dsn)  # an old transaction: the build waits for it
    try:
        holder.execute("SELECT count(*) FROM requests")
        holder.execute("INSERT INTO requests VALUES ('/old', now(), 1, 200)")
        proc = _epstats(cfg, dsn, "indexes", "apply")
        _wait_for(conn, proc, WAITING)
        start = time.monotonic()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - start
        assert proc.returncode == code, (out, err)
        assert elapsed < 10  # a few seconds of repair at most, though the drop must wait
        by = f" by {signal.Signals(signum).name}"  # SIGINT too: noted like the others
        assert err.startswith(f"epstats: interrupted{by} (the server-side statement"), err
        assert "the invalid index idx_requests_timestamp could not be dropped in time" in err
        assert "epstats maintain --only cleanup" in err
        assert invalid_indexes(conn) == ["idx_requests_timestamp"]
        [(target, status, error, finished)] = _runs(conn, "create")
        assert (target, status, finished) == ("idx_requests_timestamp", "interrupted", True)
        assert error.startswith(f"interrupted{by} (")
    finally:
        holder.rollback()
        holder.close()
    r = run_cli("-c", cfg, "--dsn", dsn, "maintain", "--only", "cleanup")
    assert r.code == 0, r.stderr
    assert invalid_indexes(conn) == []


def test_after_sigkill_cleanup_says_the_run_was_interrupted(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """SIGKILL leaves no time to record anything: the run stays `running` until cleanup sees
    that its server process is gone."""
    cfg = _ready(dsn, conn, tmp_path, 600_000)
    assert run_cli("-c", cfg, "--dsn", dsn, "indexes", "apply").code == 0
    proc = _epstats(cfg, dsn, "reindex", "--index", "idx_requests_endpoint_timestamp")
    _wait_for(conn, proc, BUILDING)
    proc.kill()
    proc.communicate(timeout=30)
    assert _runs(conn, "reindex")[0][1:] == ("running", None, False)
    deadline = time.monotonic() + 60  # the server finishes the statement, then notices
    while conn.execute(
        "SELECT 1 FROM pg_stat_activity WHERE application_name = 'epstats'"
    ).fetchone():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    r = run_cli("-c", cfg, "--dsn", dsn, "maintain", "--only", "cleanup")
    assert r.code == 0, r.stderr
    [(target, status, error, finished)] = _runs(conn, "reindex")
    assert (target, status, finished) == (
        "public.idx_requests_endpoint_timestamp",
        "interrupted",
        True,
    )
    assert error.startswith("its epstats process ended before the run did")
    assert invalid_indexes(conn) == []


def test_an_interruption_psycopg_could_not_cancel_is_still_recorded(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """When the server is too slow to confirm the cancel, psycopg gives up waiting and the
    connection stays busy: the repair and the record go through a fresh one."""
    _ready(dsn, conn, tmp_path, 10)
    s = connect(Config(), dsn)
    ex = Executor(s, record=True)
    step = Step("reindex", "public.x", "why", [Statement(sql.SQL("SELECT 1"))])
    run_id = history.start(s, "reindex", "public.x", "why", "SELECT 1")
    busy = s.conn
    busy.pgconn.send_query(b"SELECT pg_sleep(3)")  # as psycopg leaves it after a cancel timeout
    try:
        error = ex._interrupted(step, "SELECT 1", run_id, time.monotonic())
        assert error.exit_code == 130 and "reindex public.x did not finish" in str(error)
        assert ex.session.conn is not busy
        assert _runs(conn, "reindex") == [("public.x", "interrupted", str(error), True)]
    finally:
        ex.session.conn.close()
        busy.close()


# --- two signals, ignored signals, signals after the end: one deterministic outcome -----------

ACTIVE = (
    "SELECT pid, state, left(query, 60) FROM pg_stat_activity "
    "WHERE application_name = 'epstats' AND state <> 'idle'"
)


def _apply_waiting(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path, **popen: Any
) -> tuple[psycopg.Connection[Any], subprocess.Popen[str], str]:
    """`indexes apply` waiting (CREATE INDEX CONCURRENTLY) for an old transaction it holds."""
    cfg = _ready(dsn, conn, tmp_path, 20_000)
    holder = psycopg.connect(dsn)
    holder.execute("SELECT count(*) FROM requests")
    holder.execute("INSERT INTO requests VALUES ('/old', now(), 1, 200)")
    env = {**os.environ}
    env.pop("EPSTATS_CONFIG", None)
    env.pop("EPSTATS_DSN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "epstats_cli", "-c", cfg, "--dsn", dsn, "indexes", "apply"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **popen,
    )
    _wait_for(conn, proc, WAITING)
    return holder, proc, cfg


CODE: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


@pytest.mark.parametrize(
    "signals", [(signal.SIGINT, signal.SIGTERM), (signal.SIGTERM, signal.SIGINT)], ids=str
)
def test_sigterm_with_a_ctrl_c_at_once_ends_as_the_first_and_cancels_everything(
    signals: tuple[int, int], dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A supervisor's SIGTERM and a Ctrl-C at the same instant: whichever the process received
    first (sent back to back, the kernel may deliver them in either order) decides, and the
    exit code, the message and the history agree on it; one interruption (the second signal
    does not cut the first one's cancel and repair short), nothing of epstats still running
    on the server, the run recorded."""
    holder, proc, cfg = _apply_waiting(dsn, conn, tmp_path)
    try:
        for signum in signals:
            proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode in (130, 143), (out, err)
        first = signal.SIGINT if proc.returncode == 130 else signal.SIGTERM
        other = signal.SIGTERM if first == signal.SIGINT else signal.SIGINT
        assert err.startswith(f"epstats: interrupted by {first.name} ("), err
        assert f"{other.name} came later" in err and "Traceback" not in err, err
        assert conn.execute(ACTIVE).fetchall() == []  # no statement left running
        [(target, status, error, finished)] = _runs(conn, "create")
        assert (target, status, finished) == ("idx_requests_timestamp", "interrupted", True)
        assert error.startswith(f"interrupted by {first.name} (")
    finally:
        holder.rollback()
        holder.close()
    assert run_cli("-c", cfg, "--dsn", dsn, "maintain", "--only", "cleanup").code == 0
    assert invalid_indexes(conn) == []


REPAIRING = (
    "SELECT 1 FROM pg_stat_activity WHERE application_name = 'epstats' "
    "AND query LIKE 'DROP INDEX CONCURRENTLY%%'"
)


def test_sigterm_during_the_repair_after_ctrl_c_is_130_and_recorded(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Ctrl-C, then (while epstats drops the invalid index the cancelled build left) SIGTERM:
    the repair and the record go on, and the exit code is the first signal's, SIGINT's."""
    holder, proc, cfg = _apply_waiting(dsn, conn, tmp_path)
    try:
        proc.send_signal(signal.SIGINT)
        _wait_for(conn, proc, REPAIRING)  # the drop waits for the holder too
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, (out, err)
        assert err.startswith("epstats: interrupted by SIGINT (the server-side statement"), err
        assert "create idx_requests_timestamp did not finish" in err
        assert "SIGTERM came later" in err and "Traceback" not in err
        [(target, status, error, finished)] = _runs(conn, "create")
        assert (target, status, finished) == ("idx_requests_timestamp", "interrupted", True)
        assert error.startswith("interrupted by SIGINT (")
    finally:
        holder.rollback()
        holder.close()
    assert run_cli("-c", cfg, "--dsn", dsn, "maintain", "--only", "cleanup").code == 0


def test_a_sighup_the_parent_ignores_stays_ignored(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """`nohup epstats indexes apply`: SIGHUP was set to be ignored, and epstats keeps it so:
    the build goes on and succeeds once the old transaction ends."""

    def ignore_hup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    holder, proc, _cfg = _apply_waiting(dsn, conn, tmp_path, preexec_fn=ignore_hup)
    try:
        proc.send_signal(signal.SIGHUP)
    finally:
        holder.rollback()
        holder.close()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, (out, err)
    assert invalid_indexes(conn) == []
    assert [r[:2] for r in _runs(conn, "create")] == [
        ("idx_requests_timestamp", "ok"),
        ("idx_requests_endpoint_timestamp", "ok"),
    ]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_two_signals_pending_together_end_as_one_of_them_said_consistently() -> None:
    """SIGTERM and SIGINT pending together (blocked, then let through at once): which one the
    process receives first is the kernel's choice (Linux delivers both before either handler
    runs, and Python then runs SIGINT's handler first, by number, whatever the order of
    arrival); epstats ends as the first to arrive, its exit code and message agreeing, the other
    said, one line, no traceback."""
    r = _python(
        "import os, signal, sys, time\n"
        "from epstats_cli import cli\n"
        "def run(*args, **kwargs):\n"
        "    both = {signal.SIGINT, signal.SIGTERM}\n"
        "    signal.pthread_sigmask(signal.SIG_BLOCK, both)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    signal.pthread_sigmask(signal.SIG_UNBLOCK, both)\n"
        "    time.sleep(30)\n"
        "cli.cli.run = run\n"
        "sys.exit(cli.main(['status']))\n"
    )
    assert r.returncode in (130, 143), r.stderr
    first, other = ("SIGINT", "SIGTERM") if r.returncode == 130 else ("SIGTERM", "SIGINT")
    assert r.stderr == (
        f"epstats: interrupted by {first} (the server-side statement was cancelled); "
        f"{other} came later (noted: the first signal decides)\n"
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_as_epstats_ends_decides_its_exit_code(signum: int) -> None:
    """A signal while epstats ends (its atexit functions), after its command decided exit 0
    (the console script): the first signal decides, as at any other moment before the
    process has exited; no traceback, no death by the signal."""
    name = signal.Signals(signum).name
    r = _python(
        "import atexit, os, signal, sys\n"
        "from epstats_cli import cli\n"
        "cli.cli.run = lambda *args, **kwargs: 0\n"
        f"atexit.register(lambda: os.kill(os.getpid(), {int(signum)}))\n"
        "sys.argv = ['epstats', 'status']\n"
        "sys.exit(cli.main())\n"
    )
    assert (r.returncode, r.stderr) == (
        CODE[signum],
        f"epstats: interrupted by {name} as it ended (the command itself had finished, "
        "with exit code 0)\n",
    )


def test_a_signal_after_the_outcome_was_decided_still_decides_before_the_exit() -> None:
    """A signal in the instant between the decision of the exit code and the end of the
    process (the trial's refresh, signalled 30 ms after it finished, ended 0 in silence): the
    first signal still decides, said in one line."""
    r = _python(
        "import os, signal, sys\n"
        "from epstats_cli import cli\n"
        "from epstats_cli.cli import signals\n"
        "decide = signals.late\n"
        "sent = []\n"
        "def late(code):\n"
        "    decided = decide(code)\n"
        "    if not sent:\n"
        "        sent.append(1)\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return decided\n"
        "signals.late = late\n"
        "cli.cli.run = lambda *args, **kwargs: 0\n"
        "sys.argv = ['epstats', 'status']\n"
        "sys.exit(cli.main())\n"
    )
    assert (r.returncode, r.stderr) == (
        143,
        "epstats: interrupted by SIGTERM as it ended (the command itself had finished, "
        "with exit code 0)\n",
    )


def test_a_signal_in_the_interpreters_shutdown_cannot_kill_epstats() -> None:
    """Python puts the default handlers back while it shuts down, and then tears down modules
    (running __del__ methods): a signal there used to kill the process (exit -15, -2) after
    epstats had decided its exit code. The console script ends before that shutdown."""
    r = _python(
        "import os, signal, sys\n"
        "from epstats_cli import cli\n"
        "class Late:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "late = Late()\n"
        "cli.cli.run = lambda *args, **kwargs: 0\n"
        "sys.argv = ['epstats', 'status']\n"
        "sys.exit(cli.main())\n"
    )
    assert (r.returncode, r.stderr) == (0, "")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_python_cannot_raise_where_it_lands_still_interrupts(signum: int) -> None:
    """A signal whose handler runs inside a __del__ (or the weakref callback importlib runs as
    a lazy import ends: the soak found it there) cannot raise there: Python used to print
    "Exception ignored in ... KeyboardInterrupt" and the command ran on to its end. It is
    delivered again until it interrupts the command where it can: no traceback, the
    interruption's exit code, the command stopped (it never printed 'finished')."""
    name = signal.Signals(signum).name
    r = _python(
        "import os, signal, sys, time\n"
        "from epstats_cli import cli\n"
        "class Dying:\n"
        "    def __del__(self):\n"
        f"        os.kill(os.getpid(), {int(signum)})\n"
        "        sum(range(1000))\n"  # the handler runs here, inside __del__
        "def run(*args, **kwargs):\n"
        "    Dying()\n"
        "    deadline = time.monotonic() + 20\n"
        "    while time.monotonic() < deadline:\n"
        "        sum(range(1000))\n"
        "    print('finished')\n"
        "    return 0\n"
        "cli.cli.run = run\n"
        "sys.argv = ['epstats', 'status']\n"
        "sys.exit(cli.main())\n"
    )
    assert r.returncode == CODE[signum], r.stderr
    assert "Exception ignored" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert r.stdout == ""
    assert r.stderr.startswith(f"epstats: interrupted by {name}"), r.stderr
    assert len(r.stderr.splitlines()) == 1, r.stderr


def test_a_signal_python_wraps_in_another_error_is_an_interruption() -> None:
    """Python 3.11 wraps a KeyboardInterrupt raised while a class is created (a lazy import of
    a module with a dataclass, as the soak found) in a RuntimeError: still the interruption,
    not an internal error."""
    r = _python(
        "import os, signal, sys, time\n"
        "from epstats_cli import cli\n"
        "def run(*args, **kwargs):\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(20)\n"
        "    except KeyboardInterrupt as e:\n"
        "        raise RuntimeError('Error calling __set_name__') from e\n"
        "cli.cli.run = run\n"
        "sys.argv = ['epstats', 'status']\n"
        "sys.exit(cli.main())\n"
    )
    assert r.returncode == 130, r.stderr
    assert r.stderr.startswith("epstats: interrupted by SIGINT"), r.stderr
    assert "internal error" not in r.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_the_command_line_is_imported_ends_in_one_line(signum: int) -> None:
    """A signal in the fraction of a second the console script spends importing epstats'
    modules: its exit code and one line (Python used to print a traceback for Ctrl-C, and die
    of SIGTERM without a word)."""
    name = signal.Signals(signum).name
    r = _python(
        "import builtins, os, signal, sys, time\n"
        "from epstats_cli import entry\n"
        "real = builtins.__import__\n"
        "def importing(name, *args, **kwargs):\n"
        "    if name == 'epstats_cli.cli':\n"
        f"        os.kill(os.getpid(), {int(signum)})\n"
        "        time.sleep(20)\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = importing\n"
        "sys.argv = ['epstats', 'status']\n"
        "sys.exit(entry.main())\n"
    )
    assert (r.returncode, r.stderr) == (
        CODE[signum],
        f"epstats: interrupted by {name} while starting (nothing was done)\n",
    )


def test_the_console_script_starts_at_the_entry_point() -> None:
    """`epstats` and `python -m epstats_cli` both start where the signals are caught first."""
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert 'epstats = "epstats_cli.entry:main"' in pyproject
    main_module = (Path(__file__).parents[1] / "epstats_cli" / "__main__.py").read_text()
    assert "from epstats_cli.entry import main" in main_module


def test_without_a_signal_the_console_script_ends_as_before() -> None:
    """No signal: the exit code is the command's, atexit functions run, output is flushed."""
    r = _python(
        "import atexit, sys\n"
        "from epstats_cli import cli\n"
        "def run(*args, **kwargs):\n"
        "    print('out', end='')\n"
        "    return 3\n"
        "cli.cli.run = run\n"
        "atexit.register(lambda: print(' bye', end=''))\n"
        "sys.argv = ['epstats', 'status']\n"
        "sys.exit(cli.main())\n"
    )
    assert (r.returncode, r.stdout, r.stderr) == (3, "out bye", "")


# --- every pair of signals, close together, real processes ------------------------------------

PAIRS = [
    (signal.SIGTERM, signal.SIGINT),
    (signal.SIGINT, signal.SIGTERM),
    (signal.SIGHUP, signal.SIGINT),
    (signal.SIGINT, signal.SIGHUP),
    (signal.SIGTERM, signal.SIGTERM),
]
DELAYS = (0.02, 0.1, 0.3)  # the second during the cancel, the repair, the record or the exit
PAIRS_PG_VERSION = 15  # the signals are the client's: every pair on one server version


def _default_signals() -> None:
    """Whatever the test runner's shell ignores, the child gets the default handlers."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


@pytest.fixture(scope="module")
def reindexing(
    server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """A database with 600,000 rows and the recommended indices, for REINDEX runs to signal;
    its DSN and configuration."""
    name = f"epstats_pairs_{os.getpid()}"
    server.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    try:
        dsn = server.dsn_for(name)
        cfg = tmp_path_factory.mktemp("pairs") / "c.yaml"
        cfg.write_text("database: {lock_timeout: 2s}\n")
        assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
        with psycopg.connect(dsn, autocommit=True) as c:
            fill(c, 600_000)
        assert run_cli("-c", str(cfg), "--dsn", dsn, "indexes", "apply").code == 0
        yield dsn, str(cfg)
    finally:
        server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize(
    "pair", PAIRS, ids=lambda p: "+".join(signal.Signals(s).name[3:] for s in p)
)
def test_two_signals_close_together_the_first_decides(
    pair: tuple[int, int], server: Server, reindexing: tuple[str, str]
) -> None:
    """`reindex --index X`, the first signal while it builds, the second 0.02, 0.1 or 0.3 s
    later (during the cancel, the repair, the history record, or the exit): every time the
    exit code and the message are the first signal's, the second (if it came in time) is said
    and changes nothing, the process is never killed by it, and the history says the first."""
    if server.version != PAIRS_PG_VERSION and pair != PAIRS[0]:
        pytest.skip(f"every pair on PostgreSQL {PAIRS_PG_VERSION}; the tester's first here")
    dsn, cfg = reindexing
    first, second = pair
    name = signal.Signals(first).name
    with psycopg.connect(dsn, autocommit=True) as conn:
        for delay in DELAYS:
            env = {**os.environ, "PGOPTIONS": "-c maintenance_work_mem=1MB"}
            env.pop("EPSTATS_CONFIG", None)
            env.pop("EPSTATS_DSN", None)
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "epstats_cli",
                    "-c",
                    cfg,
                    "--dsn",
                    dsn,
                    "reindex",
                    "--index",
                    "idx_requests_endpoint_timestamp",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                preexec_fn=_default_signals,  # noqa: PLW1509 (no threads here)
            )
            _wait_for(conn, proc, BUILDING)
            proc.send_signal(first)
            time.sleep(delay)
            proc.send_signal(second)
            _out, err = proc.communicate(timeout=30)
            seen = (delay, proc.returncode, err)
            assert proc.returncode == CODE[first], seen
            assert err.startswith(f"epstats: interrupted by {name} (the server-side "), seen
            assert "Traceback" not in err and err.count("\n") == 1, seen
            if second != first:
                said = f"{signal.Signals(second).name} came later"
                assert said in err or "came later" not in err, seen
            last = conn.execute(
                "SELECT status, error FROM epstats.runs WHERE task = 'reindex' "
                "ORDER BY id DESC LIMIT 1"
            ).fetchone()
            assert last is not None and last[0] == "interrupted", (seen, last)
            assert last[1].startswith(f"interrupted by {name} ("), (seen, last)
            if invalid_indexes(conn):
                r = run_cli("-c", cfg, "--dsn", dsn, "maintain", "--only", "cleanup")
                assert r.code == 0, r.stderr
            assert invalid_indexes(conn) == []
