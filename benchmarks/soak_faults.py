"""The soak's driver: changing epstats commands as subprocesses, at most N at a time, some of
them killed at random; the schema drifting under them; the writer's lock waits sampled.

Used by benchmarks/soak.py and tests/test_soak.py; nothing here prints.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.soak_writer import APPLICATION_NAME as WRITER_APP

ROOT = Path(__file__).resolve().parent.parent
DRIVER_APP = "soak-driver"
MAINTAIN_TASKS = ("cleanup", "vacuum", "analyze", "reindex", "refresh")
FAULTS = ("SIGKILL", "SIGTERM", "SIGINT", "pg_terminate_backend")
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
# Every changing command the soak runs, with equal odds.
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("indexes apply", ("indexes", "apply")),
    ("indexes apply --prune-redundant", ("indexes", "apply", "--prune-redundant")),
    ("reindex", ("reindex",)),
    ("vacuum", ("vacuum",)),
    ("analyze", ("analyze",)),
    ("view refresh", ("view", "refresh")),
    ("view build --replace", ("view", "build", "--replace")),
    ("maintain --force", ("maintain", "--force")),
    ("maintain", ("maintain",)),
)
# A stray index a DBA might add: covered by the recommended (endpoint, timestamp).
REDUNDANT = "soak_redundant_endpoint"
# The backends of one command: its connections' client ports (over TCP), or every epstats
# backend of the database when the command's connections cannot be told apart (a Unix socket).
TERMINATE = """
SELECT count(pg_terminate_backend(pid))
FROM pg_stat_activity
WHERE datname = current_database() AND application_name LIKE 'epstats%%'
  AND pid <> pg_backend_pid() AND (%(all)s OR client_port = ANY (%(ports)s))
"""
EPSTATS_BACKENDS = """
SELECT pid, wait_event_type, query FROM pg_stat_activity
WHERE datname = current_database() AND application_name = 'epstats' AND state = 'active'
"""
WRITER_LOCK_WAIT = """
SELECT extract(epoch FROM clock_timestamp() - w.query_start)::float8,
       coalesce((SELECT string_agg(b.application_name || ': ' || left(b.query, 80), ' | ')
                 FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(w.pid))), '?')
FROM pg_stat_activity w
WHERE w.application_name = %(app)s AND w.state = 'active' AND w.wait_event_type = 'Lock'
"""


def client_ports(pid: int) -> list[int]:
    """The local TCP ports of process `pid`'s sockets: pg_stat_activity.client_port of its
    connections."""
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    for fd in fds:
        with contextlib.suppress(OSError):  # closed meanwhile
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


# The commands get the default dispositions of the signals the soak sends, and none blocked,
# whatever the soak itself inherited: a job a shell started in the background ignores SIGINT
# (`nohup`: SIGHUP), an ignored signal stays ignored across exec, and epstats keeps it so; the
# fault would not be delivered at all. A wrapper that resets them, then execs the command
# (the same process: its pid is the command's), rather than a preexec_fn, which is not safe
# in a process with threads (the soak has some).
DEFAULT_SIGNALS = (
    "import os, signal, sys\n"
    "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):\n"
    "    signal.signal(s, signal.SIG_DFL)\n"
    "signal.pthread_sigmask(signal.SIG_SETMASK, [])\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def with_default_signals(argv: list[str]) -> list[str]:
    """`argv` run with SIGINT, SIGTERM and SIGHUP at their defaults, none blocked."""
    return [sys.executable, "-c", DEFAULT_SIGNALS, *argv]


def epstats_argv(config: Path, args: tuple[str, ...]) -> list[str]:
    """`python -m epstats_cli -c CONFIG -q ARGS`: the real command line, a process of its own."""
    return [sys.executable, "-m", "epstats_cli", "-c", str(config), "-q", *args]


def epstats_env(dsn: str) -> dict[str, str]:
    """The environment of every epstats subprocess: the DSN, no colour, no stray config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPSTATS_")}
    return {**env, "EPSTATS_DSN": dsn, "NO_COLOR": "1", "COLUMNS": "200"}


@dataclass
class Command:
    """One epstats process of the soak, and the fault planned for it."""

    label: str
    argv: list[str]
    proc: subprocess.Popen[bytes]
    started: float
    stderr_path: Path
    fault: str | None = None
    fault_at: float = 0.0
    injected: bool = False
    collateral: bool = False  # running when another command's fault terminated every backend
    ended: float = 0.0
    code: int | None = None
    stderr: str = ""

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class Tally:
    """What the driver did: commands, their outcomes, faults, drift."""

    commands: list[Command] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    faults_missed: int = 0  # planned, but the command had already finished (or was exiting)
    backends_terminated: int = 0
    drift: Counter[str] = field(default_factory=Counter)

    @property
    def injected(self) -> int:
        return sum(self.faults.values())

    def exit_codes(self) -> dict[str, dict[str, int]]:
        """Per command label, how many runs ended with each exit code (negative: signal)."""
        out: dict[str, Counter[str]] = {}
        for c in self.commands:
            out.setdefault(c.label, Counter())[str(c.code)] += 1
        return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}

    def fault_outcomes(self) -> dict[str, dict[str, int]]:
        """Per fault, the exit codes it ended in (negative: the signal's default action)."""
        out: dict[str, Counter[str]] = {}
        for c in self.commands:
            if c.injected and c.fault:
                out.setdefault(c.fault, Counter())[str(c.code)] += 1
        return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}

    def interpreter_tracebacks(self) -> list[str]:
        """SIGINT outside epstats's main(), while Python still imports (exit -2, or 1 in its
        `site` module): Python prints its own traceback there, as for any Python program.
        (After main() epstats ends at once, with the first signal's exit code: no such
        traceback.)"""
        return [_line(c) for c in self.commands if _outside_main(c)]

    def internal_errors(self) -> list[str]:
        """Tracebacks and `internal error` lines: a bug whatever the fault was."""
        return [
            _line(c)
            for c in self.commands
            if ("internal error" in c.stderr or "Traceback" in c.stderr) and not _outside_main(c)
        ]

    def not_delivered(self) -> list[str]:
        """Signals sent whose command then exited 0: the signal was ignored or blocked (a
        command that received one ends with its exit code, 130/143/129, or dies of it), so
        the fault was never injected; a soak with any is no soak (its verdict fails). SIGKILL
        can be neither ignored nor blocked: a 0 after it means the process was already in the
        kernel's exit, where /proc does not show it yet (a fault missed, as _exiting says)."""
        return [
            _line(c)
            for c in self.commands
            if c.injected and c.fault in SIGNALS and c.fault != "SIGKILL" and c.code == 0
        ]

    def unfaulted_failures(self) -> list[str]:
        """Runs that failed although no fault hit them (lock contention, bugs)."""
        return [
            _line(c)
            for c in self.commands
            if not c.injected and not c.collateral and c.code not in (0, 75)
        ]


def _exiting(pid: int, signum: int) -> bool:
    """Whether the process a signal was just sent to was already exiting, so that the signal
    could not change how it ends: gone, a zombie, or with the signal blocked (epstats blocks
    the stopping signals once its exit code is decided, right before os._exit). A signal sent
    there ends in the command's own exit code (0 often): a fault missed, not one ignored.
    (A signal the process ignores shows in SigIgn instead, and counts as not delivered.)"""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    if fields.get("State", "").strip()[:1] in ("Z", "X"):
        return True
    blocked = int(fields.get("SigBlk", "0").strip() or "0", 16)
    return bool(blocked & (1 << (signum - 1)))


def _outside_main(c: Command) -> bool:
    """SIGINT before epstats' main() runs: Python dies of it (-2) with its own traceback, or,
    while the interpreter still imports its `site` module, says "Fatal Python error:
    init_import_site" and exits 1."""
    last = (c.stderr.strip().splitlines() or [""])[-1]
    if c.fault != "SIGINT" or not last.startswith("KeyboardInterrupt"):
        return False
    return c.code == -signal.SIGINT or (
        c.code == 1 and c.stderr.startswith("Fatal Python error: init_import_site")
    )


def _line(c: Command) -> str:
    last = (c.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1][:200]
    return f"{c.label} ({c.fault or 'no fault'}): exit {c.code}: {last}"


class Driver:
    """Launches commands (at most `concurrency` at a time) and injects the planned faults."""

    def __init__(
        self,
        dsn: str,
        config: Path,
        workdir: Path,
        rng: random.Random,
        concurrency: int,
        fault_share: float,
        drift: bool,
        recommended: list[str],
    ) -> None:
        self.dsn = dsn
        self.config = config
        self.workdir = workdir
        self.rng = rng
        self.concurrency = concurrency
        self.fault_share = fault_share
        self.drift = drift
        self.recommended = recommended
        self.tally = Tally()
        self.running: list[Command] = []
        self.expected: dict[str, float] = {}  # label -> typical seconds of an unfaulted run
        self._conn = psycopg.connect(dsn, autocommit=True, application_name=DRIVER_APP)
        self._unix_socket = self._conn.info.host.startswith("/")
        # Commands waiting for the drift DDL planned before them: (its thread, label, ...).
        self.pending: list[tuple[threading.Thread, str, str, tuple[str, ...]]] = []
        self._n = 0

    def close(self) -> None:
        """Wait for the drift DDL; kill (SIGKILL) and reap any command still running."""
        for item in self.pending:
            item[0].join()
        self.pending.clear()
        for c in self.running:
            with contextlib.suppress(ProcessLookupError):
                c.proc.kill()
            c.proc.wait()
        self._reap()
        self._conn.close()

    # --- the loop ---------------------------------------------------------------------------

    def run_until(self, deadline: float) -> None:
        """Keep `concurrency` commands running and inject faults until `deadline`."""
        while True:
            self._inject_due()
            if time.monotonic() >= deadline:
                return
            self._start_pending()
            while len(self.running) + len(self.pending) < self.concurrency:
                self._launch()
            time.sleep(0.02)

    def drain(self, timeout: float) -> int:
        """Start nothing more; let the running commands finish, their planned faults included
        (SIGINT past `timeout`); how many had to be interrupted."""
        for item in self.pending:  # the commands waiting for a drift are not started
            item[0].join()
        self.pending.clear()
        deadline = time.monotonic() + timeout
        stopped = 0
        while self.running:
            self._inject_due()
            if self.running and time.monotonic() >= deadline:
                for c in self.running:
                    with contextlib.suppress(ProcessLookupError):
                        c.proc.send_signal(signal.SIGINT)
                    stopped += 1
                for c in self.running:
                    c.proc.wait()
                deadline = float("inf")
            time.sleep(0.02)
        return stopped

    def _inject_due(self) -> None:
        self._reap()
        now = time.monotonic()
        for c in list(self.running):
            if c.fault and not c.injected and c.code is None and now >= c.fault_at:
                self._inject(c)

    def _reap(self) -> None:
        for c in list(self.running):
            code = c.proc.poll()
            if code is None:
                continue
            c.code = code
            c.ended = time.monotonic()
            c.stderr = c.stderr_path.read_text(errors="replace")
            self.running.remove(c)
            if not c.injected and code == 0:
                old = self.expected.get(c.label)
                self.expected[c.label] = c.seconds if old is None else 0.7 * old + 0.3 * c.seconds

    def _launch(self) -> None:
        label, args = self.rng.choice(COMMANDS)
        run_label = label
        if label == "maintain --force":
            tasks = ",".join(self.rng.sample(MAINTAIN_TASKS, self.rng.randint(1, 3)))
            args, run_label = (*args, tasks), f"maintain --force {tasks}"
        drift = self._drift_before(label) if self.drift else None
        if drift is None:
            self._start_planned(label, run_label, args)
        else:  # the command starts once the drift is done (else the two race each other)
            self.pending.append((drift, label, run_label, args))

    def _start_pending(self) -> None:
        for item in list(self.pending):
            if not item[0].is_alive():
                self.pending.remove(item)
                self._start_planned(*item[1:])

    def _start_planned(self, label: str, run_label: str, args: tuple[str, ...]) -> None:
        cmd = self._start(run_label, args)
        if self.rng.random() < self.fault_share:
            cmd.fault = self.rng.choice(FAULTS)
            # Mostly inside the run: a share of the typical length of this command.
            typical = self.expected.get(label, 1.5)
            cmd.fault_at = cmd.started + self.rng.uniform(0.1, 1.0) * typical

    def _inject(self, c: Command) -> None:
        assert c.fault is not None
        if c.proc.poll() is not None:
            self.tally.faults_missed += 1
            c.fault = None
            return
        if c.fault == "pg_terminate_backend":
            every = self._unix_socket
            ports = [] if every else client_ports(c.proc.pid)
            row = self._conn.execute(TERMINATE, {"all": every, "ports": ports}).fetchone()
            n = int(row[0]) if row else 0
            if n == 0:  # not connected yet, or between connections: try again shortly
                c.fault_at = time.monotonic() + 0.05
                return
            self.tally.backends_terminated += n
            for other in self.running:
                if every and other is not c:
                    other.collateral = True
        else:
            try:
                c.proc.send_signal(SIGNALS[c.fault])
            except ProcessLookupError:
                self.tally.faults_missed += 1
                c.fault = None
                return
            if _exiting(c.proc.pid, SIGNALS[c.fault]):
                self.tally.faults_missed += 1
                c.fault = None
                return
        c.injected = True
        self.tally.faults[c.fault] += 1

    # --- the last faults: leave a leftover of each kind for the recovery to repair -----------

    def final_faults(self, rollup: str, timeout: float = 60.0) -> list[str]:
        """Alone (after drain()): terminate a REINDEX CONCURRENTLY's backend while it builds
        (an invalid `*_ccnew` stays), and SIGKILL a `view build --replace` whose swap waits
        behind a reader (`<rollup>_epstats_new` stays). Later commands of the soak repair most
        leftovers of earlier faults; these make sure one plain maintain has work to do."""
        done = []
        # 1. REINDEX CONCURRENTLY: its `_ccnew` copies exist from its first transaction on.
        cmd = self._start("reindex", ("reindex",))
        pid = self._wait_for(
            cmd,
            timeout,
            lambda rows: next(
                (
                    r[0]
                    for r in rows
                    if str(r[2]).startswith("REINDEX") and self._exists("%\\_ccnew%")
                ),
                None,
            ),
        )
        if pid is not None:
            self._conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            self._count(cmd, "pg_terminate_backend")
            done.append("reindex: backend terminated while building its _ccnew copies")
        else:
            done.append("reindex: ended before its backend could be terminated")
        self._finish(cmd)
        # 2. view build --replace: a reader holds the old rollup, so the swap waits for it.
        with psycopg.connect(self.dsn, application_name=DRIVER_APP) as reader:
            reader.execute(f'SELECT 1 FROM "{rollup}" LIMIT 1')
            cmd = self._start("view build --replace", ("view", "build", "--replace"))
            pid = self._wait_for(
                cmd,
                timeout,
                lambda rows: next(
                    (
                        r[0]
                        for r in rows
                        if r[1] == "Lock" and self._exists(f"{rollup}\\_epstats\\_new")
                    ),
                    None,
                ),
            )
            if pid is not None:
                cmd.proc.send_signal(signal.SIGKILL)
                self._count(cmd, "SIGKILL")
                done.append("view build --replace: SIGKILL while its swap waited for a reader")
            else:
                done.append("view build --replace: its swap never waited (nothing killed)")
            self._finish(cmd)
            reader.rollback()
        return done

    def _start(self, label: str, args: tuple[str, ...]) -> Command:
        self._n += 1
        stderr_path = self.workdir / f"cmd{self._n:05d}.err"
        argv = epstats_argv(self.config, args)
        with stderr_path.open("wb") as err:
            proc = subprocess.Popen(
                with_default_signals(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=epstats_env(self.dsn),
                cwd=ROOT,
            )
        cmd = Command(label, argv, proc, time.monotonic(), stderr_path)
        self.running.append(cmd)
        self.tally.commands.append(cmd)
        return cmd

    def _wait_for(
        self, cmd: Command, timeout: float, pick: Callable[[list[tuple[Any, ...]]], int | None]
    ) -> int | None:
        """Poll the epstats backends until `pick` names one; None if the command ended."""
        deadline = time.monotonic() + timeout
        while cmd.proc.poll() is None and time.monotonic() < deadline:
            pid = pick(self._conn.execute(EPSTATS_BACKENDS).fetchall())
            if pid is not None:
                return pid
            time.sleep(0.005)
        return None

    def _exists(self, like: str) -> bool:
        row = self._conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname LIKE %s", (like,)
        ).fetchone()
        return bool(row and row[0])

    def _count(self, cmd: Command, fault: str) -> None:
        cmd.fault = fault
        cmd.injected = True
        self.tally.faults[fault] += 1

    def _finish(self, cmd: Command) -> None:
        cmd.proc.wait()
        self._reap()

    # --- drift: give `indexes apply` real work to do (and to be killed in) --------------------

    def _drift_before(self, label: str) -> threading.Thread | None:
        if self.pending:  # one drift at a time
            return None
        if label == "indexes apply" and self.rng.random() < 0.5:
            index = self.rng.choice(self.recommended)
            return self._drift(
                "drop a recommended index", f'DROP INDEX CONCURRENTLY IF EXISTS "{index}"'
            )
        if label == "indexes apply --prune-redundant" and self.rng.random() < 0.5:
            return self._drift(
                "add a redundant index",
                f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{REDUNDANT}" ON requests (endpoint)',
            )
        return None

    def _drift(self, what: str, statement: str) -> threading.Thread:
        """Run a DBA's DDL (in a thread: it may wait for the commands running)."""

        def run() -> None:
            try:
                with psycopg.connect(
                    self.dsn, autocommit=True, application_name=DRIVER_APP
                ) as conn:
                    conn.execute("SET lock_timeout = '10s'")
                    conn.execute(statement.encode())
                self.tally.drift[what] += 1
            except psycopg.Error:
                self.tally.drift[f"{what}: failed (busy or raced)"] += 1

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t


class LockWaitSampler:
    """Samples pg_stat_activity every `every` s: is the writer waiting for a lock, and on whom."""

    def __init__(self, dsn: str, every: float = 0.1) -> None:
        self.dsn = dsn
        self.every = every
        self.samples = 0
        self.waiting = 0
        self.longest = 0.0
        self.blockers: Counter[str] = Counter()
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LockWaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True, application_name=DRIVER_APP) as conn:
                while not self._stop.wait(self.every):
                    rows = conn.execute(WRITER_LOCK_WAIT, {"app": WRITER_APP}).fetchall()
                    self.samples += 1
                    for waited, blocker in rows:
                        self.waiting += 1
                        self.longest = max(self.longest, float(waited))
                        self.blockers[str(blocker)] += 1
        except psycopg.Error as exc:  # reported, never raised in a thread
            self.error = f"{type(exc).__name__}: {exc}"

    def summary(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "samples_waiting": self.waiting,
            "longest_seen_s": round(self.longest, 3),
            "blockers": dict(self.blockers.most_common(5)),
            "error": self.error,
        }
