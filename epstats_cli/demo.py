"""`epstats demo`: the whole job (init, generate, indices, rollup, maintain, report, check) on
the embedded PostgreSQL, or in a schema of its own on a given server. Returns data; the click
layer prints it."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from epstats_cli import db, dsn, embedded
from epstats_cli.config import Config, QualifiedName
from epstats_cli.errors import OperationFailed
from epstats_cli.history import TaskResult

SCHEMA = "epstats_demo"


@dataclass(frozen=True)
class Where:
    """Where the demo runs: the embedded server, or schema epstats_demo of a given one."""

    dsn: str  # "embedded", or the user's DSN

    @property
    def embedded(self) -> bool:
        return self.dsn.strip() == "embedded"

    @property
    def description(self) -> str:
        if self.embedded:
            return f"the embedded server in {embedded.pgdata()}"
        return f"schema {SCHEMA} of {dsn.target(self.dsn)}"


@dataclass(frozen=True)
class DemoStep:
    name: str
    seconds: float
    detail: str


@dataclass
class DemoRun:
    steps: list[DemoStep] = field(default_factory=list)
    dsn: str = ""  # the server it ran on (the embedded one resolved)
    top: Any = None  # reports.top's report
    checks: list[Any] = field(default_factory=list)  # health.CheckResult
    seconds: float = 0.0


def commands(rows: int, days: int) -> list[str]:
    """The demo's steps, as the epstats commands that do the same (for --dry-run)."""
    return [
        "init --with-requests-table",
        f"generate --rows {rows} --days {days} --truncate",
        "indexes apply",
        "view build (--replace when it exists)",
        "maintain",
        "report top --days 30",
        "check",
    ]


def demo_config(config: Config, where: Where) -> Config:
    """On a given server, never the user's own table: a schema of the demo's own."""
    if where.embedded:
        return config
    return replace(config, source=replace(config.source, table=QualifiedName(SCHEMA, "requests")))


def reset(config: Config, where: Where, fix: str = db.SESSION_FIX) -> bool:
    """Wipe the demo: the embedded server and its data, or the demo's schema. Whether there
    was an embedded server to wipe (always True for a schema)."""
    if where.embedded:
        return embedded.reset()
    from epstats_cli import schema

    with db.session(config, where.dsn, changing=True, fix=fix) as s:
        schema.drop_demo(s)
    return True


def _fail_on(results: Sequence[TaskResult]) -> None:
    bad = [r for r in results if r.status == "failed"]
    if bad:
        raise OperationFailed("; ".join(f"{r.task} {r.target}: {r.reason}" for r in bad))


def run(
    config: Config,
    where: Where,
    rows: int,
    days: int,
    on_step: Callable[[DemoStep], None] = lambda step: None,
    log: Callable[[str], None] = lambda message: None,
    fix: str = db.SESSION_FIX,
) -> DemoRun:
    """Every step in turn, each timed and passed to on_step as it finishes; `log` gets the
    embedded server's start-up notes."""
    from epstats_cli import health, indexes, maintain, reports, rollup, schema, synth
    from epstats_cli.execute import Executor

    out = DemoRun()
    started = time.monotonic()
    table = str(config.source.table)

    def step(name: str, fn: Callable[[], str]) -> None:
        start = time.monotonic()
        detail = fn()
        done = DemoStep(name, time.monotonic() - start, detail)
        out.steps.append(done)
        on_step(done)

    def start_server() -> str:
        out.dsn = embedded.ensure_server(log=log) if where.embedded else where.dsn
        with db.session(config, out.dsn) as s:
            return f"PostgreSQL {s.server.version}"

    step("server", start_server)
    with db.session(config, out.dsn, changing=True, fix=fix) as s:

        def do_init() -> str:
            created = [st.object for st in schema.init(s, True, Executor(s)) if not st.present]
            return "created " + ", ".join(created) if created else "schema and table present"

        def do_generate() -> str:
            res = synth.generate(s, synth.GenerateOptions(rows, days, truncate=True), Executor(s))
            return f"{res.rows:,} requests over {days} days into {table}"

        def do_indexes() -> str:
            _plan, results = indexes.apply(s, Executor(s))
            _fail_on(results)
            built = [r.target for r in results if r.task == "create"]
            return "built " + ", ".join(built) + " CONCURRENTLY" if built else "already present"

        def do_view() -> str:
            exists = rollup.facts(s).exists
            _fail_on(rollup.build(s, replace=exists))
            info = rollup.facts(s)
            return f"{info.name}: {info.row_count:,} endpoint-days ({info.strategy})"

        def do_maintain() -> str:
            report = maintain.maintain(s, maintain.MaintainOptions(), Executor(s, record=True))
            _fail_on(report.results)
            done = sorted({r.task for r in report.results if r.status == "ok"})
            return "ran " + ", ".join(done) if done else "nothing due (it ran a moment ago)"

        def do_report() -> str:
            out.top = reports.top(s, days=30)
            rep = out.top
            return f"top {len(rep.rows)} endpoints in {rep.seconds * 1000:.1f} ms ({rep.source})"

        def do_check() -> str:
            # nothing logs into the demo's table (its rows end at the start of this hour)
            out.checks = health.run_checks(s, [c for c in health.CHECKS if c != "ingest_stalled"])
            return health.nagios_line(out.checks).split(" | ")[0]

        step("init", do_init)
        step("generate", do_generate)
        step("indexes apply", do_indexes)
        step("view build", do_view)
        step("maintain", do_maintain)
        step("report top", do_report)
        step("check", do_check)
    out.seconds = time.monotonic() - started
    return out


def psql_command(dsn: str, where: Where) -> str:
    """A psql command line for the demo's server, without any password (psql finds it where
    libpq does)."""
    from psycopg import conninfo

    params = conninfo.conninfo_to_dict(dsn)
    params.pop("password", None)
    binary = embedded.psql_path() if where.embedded else "psql"
    return f"{binary} '{conninfo.make_conninfo(**params)}'"  # type: ignore[arg-type]


def program(
    argv0: str | None = None, executable: str | None = None, on_path: str | None = None
) -> str:
    """How to run this epstats again from the same directory, as typed: `epstats` when that is
    the one on PATH, else the path it was started by (`.venv/bin/epstats` after the README's
    first command), or `python -m epstats_cli` for that interpreter."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    if on_path is None:
        on_path = shutil.which("epstats") or ""
    if os.path.basename(argv0) == "epstats":
        if os.sep not in argv0 or (
            on_path and os.path.realpath(on_path) == os.path.realpath(argv0)
        ):
            return "epstats"
        return shlex.quote(argv0)
    return f"{shlex.quote(executable)} -m epstats_cli"


def next_commands(where: Where, program: str = "epstats") -> list[str]:
    """What to try next, as command lines that run as shown (`program` is how to run
    epstats: see program())."""
    flag = "--dsn embedded" if where.embedded else "--dsn '$EPSTATS_DSN'"
    cfg = "" if where.embedded else f" -c <config with source.table: {SCHEMA}.requests>"
    return [
        f"{program} {flag}{cfg} report top --sort error_rate",
        f"{program} {flag}{cfg} report endpoint /api/v1/orders --days 14",
        f"{program} {flag}{cfg} status",
        f"{program} {flag}{cfg} maintain --dry-run",
        f"{program} {flag}{cfg} advise",
        f"{program} demo --reset"
        + ("" if where.embedded else " --dsn '$EPSTATS_DSN'")
        + "   (wipe the demo)",
    ]


def reset_plan(where: Where) -> list[str]:
    """What `demo --reset` would do, for --dry-run."""
    if where.embedded:
        data = embedded.pgdata()
        if not data.exists():
            return ["nothing: no embedded server was started there"]
        return [f"stop the embedded server in {data}", f"delete {data} and everything in it"]
    from epstats_cli import queries

    return [f"run: {queries.get('schema/drop_demo').as_string()}"]
