"""The error contract: every row of errors.RULES, the fallbacks, the same errors from a server."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import errors as pgerrors

from epstats_cli import errors, permissions
from epstats_cli.errors import (
    RULES,
    ConnectError,
    ExitCode,
    Interrupted,
    OperationFailed,
    Rule,
    first_line,
    from_exception,
    rule_for,
)
from tests.conftest import Server, run_cli


@pytest.fixture(autouse=True)
def no_signal_noted() -> Iterator[None]:
    errors.clear_signal()
    yield
    errors.clear_signal()


def _rule(sqlstate: str | None, when: Callable[[BaseException], bool] | None = None) -> Rule:
    found = [r for r in RULES if r.sqlstate == sqlstate and r.when is when]
    assert len(found) == 1, (sqlstate, when)
    return found[0]


def _pg(code: str, message: str) -> psycopg.Error:
    """A real psycopg exception of the class psycopg raises for this SQLSTATE."""
    exc: psycopg.Error = pgerrors.lookup(code)(message)
    assert exc.sqlstate == code
    return exc


def _noted(exc: psycopg.Error, statement: str, version: int = 150000) -> psycopg.Error:
    """The exception as db.Session raises it: with its statement, role and server noted."""
    permissions.note(exc, statement, "alice", version)
    return exc


@dataclass(frozen=True)
class Row:
    """One table entry: an exception that must hit it, and what the user then sees."""

    rule: Rule
    exc: Callable[[], psycopg.Error]
    exit_code: int
    says: tuple[str, ...]
    signum: int | None = None


ROWS = [
    Row(
        _rule(None),
        lambda: psycopg.OperationalError("connection failed: Connection refused"),
        ExitCode.CONNECT,
        ("Connection refused",),
    ),
    Row(
        _rule("08"),
        lambda: _pg("08006", "server closed the connection unexpectedly"),
        ExitCode.CONNECT,
        ("lost the connection", "server closed the connection"),
    ),
    Row(
        _rule("28"),
        lambda: _pg("28P01", 'password authentication failed for user "u"'),
        ExitCode.CONNECT,
        ("refused the credentials", "password authentication failed"),
    ),
    Row(
        _rule("3D000", errors._connecting),
        lambda: _pg("3D000", 'database "nope" does not exist'),
        ExitCode.CONNECT,
        ('database "nope" does not exist', "database name"),
    ),
    Row(
        _rule("53300"),
        lambda: _pg("53300", "sorry, too many clients already"),
        ExitCode.CONNECT,
        ("too many clients", "max_connections"),
    ),
    Row(
        _rule("57P03"),
        lambda: _pg("57P03", "the database system is starting up"),
        ExitCode.CONNECT,
        ("starting up", "cannot connect now"),
    ),
    Row(
        _rule("57014", errors._signalled),
        lambda: _pg("57014", "canceling statement due to user request"),
        ExitCode.INTERRUPTED_TERM,
        ("interrupted by SIGTERM",),
        signum=signal.SIGTERM,
    ),
    Row(
        _rule("57014"),
        lambda: _pg("57014", "canceling statement due to statement timeout"),
        ExitCode.FAILED,
        ("statement_timeout", "database.statement_timeout", "role's setting"),
    ),
    Row(
        _rule("57P01"),
        lambda: _pg("57P01", "terminating connection due to administrator command"),
        ExitCode.FAILED,
        ("terminated by an administrator",),
    ),
    Row(
        _rule("55P03"),
        lambda: _pg("55P03", "canceling statement due to lock timeout"),
        ExitCode.FAILED,
        ("lock_timeout",),
    ),
    Row(
        _rule("53100"),
        lambda: _pg("53100", 'could not extend file "base/1/2": No space left on device'),
        ExitCode.FAILED,
        ("disk is full", "No space left"),
    ),
    Row(
        _rule("53200"),
        lambda: _pg("53200", "out of memory"),
        ExitCode.FAILED,
        ("out of memory",),
    ),
    Row(
        _rule("55006"),
        lambda: _pg("55006", 'database "x" is being accessed by other users'),
        ExitCode.FAILED,
        ("in use", "accessed by other users"),
    ),
    Row(
        _rule("42501", errors._not_owner),
        lambda: _noted(
            _pg("42501", "must be owner of table requests"),
            'CREATE INDEX CONCURRENTLY "i" ON "public"."requests" ("status")',
        ),
        ExitCode.FAILED,
        (
            "must be owner of table requests: connect as the owner of public.requests "
            "(or a member of its owning role)",
        ),
    ),
    Row(
        _rule("42501", errors._privilege_missing),
        lambda: _noted(
            _pg("42501", "permission denied for table runs"),
            "INSERT INTO epstats.runs (task) VALUES ('x') RETURNING id",
        ),
        ExitCode.FAILED,
        (
            "permission denied for table runs: INSERT on epstats.runs is missing: "
            "GRANT SELECT, INSERT, UPDATE, DELETE ON epstats.runs TO alice",
        ),
    ),
    Row(
        _rule("42501"),
        lambda: _pg("42501", "permission denied to create role"),
        ExitCode.FAILED,
        ("permission denied: permission denied to create role",),
    ),
    Row(
        _rule("25006"),
        lambda: _pg("25006", "cannot execute CREATE INDEX in a read-only transaction"),
        ExitCode.FAILED,
        ("read-only", "against the primary"),
    ),
]


def test_every_rule_has_a_row() -> None:
    assert sorted(map(id, (row.rule for row in ROWS))) == sorted(map(id, RULES))


def _row_id(row: Row) -> str:
    when = row.rule.when.__name__ if row.rule.when else ""
    return f"{row.rule.sqlstate or 'no-sqlstate'}{when}"


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_rule(row: Row) -> None:
    if row.signum is not None:
        errors.note_signal(row.signum)
    exc = row.exc()
    assert rule_for(exc) is row.rule
    mapped = from_exception(exc)
    assert mapped is not None
    assert mapped.exit_code == row.exit_code
    expected_class = {ExitCode.CONNECT: ConnectError, ExitCode.FAILED: OperationFailed}.get(
        ExitCode(row.exit_code), Interrupted
    )
    assert isinstance(mapped, expected_class)
    text = mapped.format_message()
    assert "\n" not in text
    for fragment in row.says:
        assert fragment in text, text


@pytest.mark.parametrize(
    ("signum", "code", "name"),
    [
        (signal.SIGINT, 130, "SIGINT"),
        (signal.SIGTERM, 143, "SIGTERM"),
        (signal.SIGHUP, 129, "SIGHUP"),
    ],
)
def test_cancel_on_a_signal_exits_128_plus_the_signal(signum: int, code: int, name: str) -> None:
    errors.note_signal(signum)
    mapped = from_exception(_pg("57014", "canceling statement due to user request"))
    assert mapped is not None and mapped.exit_code == code
    assert f"interrupted by {name}" in mapped.format_message()


@pytest.mark.parametrize(
    "code",
    [
        "53000",  # insufficient resources
        "53400",  # configuration limit exceeded
        "54001",  # statement too complex
        "55000",  # object not in prerequisite state
        "57000",  # operator intervention
        "57P02",  # crash shutdown
    ],
)
def test_other_operational_errors_are_failures_not_connection_errors(code: str) -> None:
    exc = _pg(code, f"something about {code}")
    assert isinstance(exc, psycopg.OperationalError)
    mapped = from_exception(exc)
    assert mapped is not None and mapped.exit_code == ExitCode.FAILED
    assert mapped.format_message() == f"something about {code}"


def test_any_other_psycopg_error_is_its_first_line() -> None:
    mapped = from_exception(_pg("42P01", 'relation "requestz" does not exist\nLINE 1: ...'))
    assert isinstance(mapped, OperationFailed)
    assert mapped.format_message() == 'relation "requestz" does not exist'
    mapped = from_exception(psycopg.InterfaceError("the connection is closed"))
    assert mapped is not None and mapped.exit_code == ExitCode.FAILED


def test_not_a_database_error_is_not_mapped() -> None:
    assert from_exception(ValueError("x")) is None
    assert rule_for(ValueError("x")) is None


@pytest.mark.parametrize("message", ["", "   ", "\n\n"])
def test_first_line_of_an_empty_message_is_the_class_name(message: str) -> None:
    assert first_line(psycopg.OperationalError(message)) == "OperationalError"
    assert first_line(_pg("53100", message)) == "DiskFull"
    mapped = from_exception(_pg("53100", message))
    assert mapped is not None and "DiskFull" in mapped.format_message()


def test_first_line_skips_blank_lines() -> None:
    assert first_line(RuntimeError("\n  first  \nsecond")) == "first"


@pytest.mark.parametrize(
    "message",
    [
        'could not connect with "postgresql://u:hunter2@h/db"',
        "invalid dsn: host=h password=hunter2 user=u",
        "bad: postgresql://u@h/db?password=hunter2&x=1",
        "bad: password='hunter2 with spaces' host=h",
    ],
)
def test_no_password_in_any_message(message: str) -> None:
    for exc in (psycopg.OperationalError(message), _pg("42501", message), _pg("57014", message)):
        mapped = from_exception(exc)
        assert mapped is not None
        assert "hunter2" not in mapped.format_message()
        assert "***" in mapped.format_message()


def test_main_reports_the_noted_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    from epstats_cli import cli as cli_module

    def stopped(*args: object, **kwargs: object) -> None:
        errors.note_signal(signal.SIGTERM)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module.cli, "run", stopped)
    r = run_cli("status")
    assert r.code == 143
    assert r.stderr == "epstats: interrupted by SIGTERM (the server-side statement was cancelled)\n"


def test_main_plain_ctrl_c_is_130(monkeypatch: pytest.MonkeyPatch) -> None:
    from epstats_cli import cli as cli_module

    def stopped(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module.cli, "run", stopped)
    r = run_cli("status")
    assert r.code == 130
    assert r.stderr == "epstats: interrupted (the server-side statement was cancelled)\n"


def test_main_maps_a_database_error_through_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from epstats_cli import cli as cli_module

    def disk_full(*args: object, **kwargs: object) -> None:
        raise _pg("53100", "could not extend file: No space left on device")

    monkeypatch.setattr(cli_module.cli, "run", disk_full)
    r = run_cli("status")
    assert r.code == 1
    assert r.stderr.startswith("epstats: error: the server's disk is full: could not extend")
    assert r.stderr.count("\n") == 1


# --- the same errors, raised by a real server -------------------------------------------------


def _raised(fn: Callable[[], object]) -> psycopg.Error:
    try:
        fn()
    except psycopg.Error as exc:
        return exc
    raise AssertionError("no error was raised")


def test_real_statement_timeout(server: Server) -> None:
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '10ms'")
        exc = _raised(lambda: conn.execute("SELECT pg_sleep(1)"))
    assert exc.sqlstate == "57014"
    mapped = from_exception(exc)
    assert mapped is not None and mapped.exit_code == ExitCode.FAILED
    assert "statement_timeout" in mapped.format_message()


def test_real_lock_timeout(server: Server) -> None:
    with (
        psycopg.connect(server.admin_dsn, autocommit=True) as holder,
        psycopg.connect(server.admin_dsn, autocommit=True) as waiter,
    ):
        holder.execute("SELECT pg_advisory_lock(424242)")
        waiter.execute("SET lock_timeout = '10ms'")
        exc = _raised(lambda: waiter.execute("SELECT pg_advisory_lock(424242)"))
    assert exc.sqlstate == "55P03"
    mapped = from_exception(exc)
    assert mapped is not None and mapped.exit_code == ExitCode.FAILED
    assert "lock_timeout" in mapped.format_message()


def test_real_terminate_backend(server: Server) -> None:
    with (
        psycopg.connect(server.admin_dsn, autocommit=True) as admin,
        psycopg.connect(server.admin_dsn, autocommit=True) as victim,
    ):
        admin.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))
        exc = _raised(lambda: victim.execute("SELECT 1"))
    mapped = from_exception(exc)
    assert mapped is not None
    if exc.sqlstate == "57P01":
        assert mapped.exit_code == ExitCode.FAILED
        assert "terminated by an administrator" in mapped.format_message()
    else:  # libpq saw the closed socket before the server's message: a lost connection
        assert exc.sqlstate is None and mapped.exit_code == ExitCode.CONNECT


def test_real_connect_errors_are_exit_4_without_the_password(server: Server) -> None:
    missing_db = _raised(lambda: psycopg.connect(server.dsn_for("no_such_db_xyz")))
    wrong_pw = _raised(lambda: psycopg.connect(server.dsn_for("postgres", password="hunter2-no")))
    for exc in (missing_db, wrong_pw):
        mapped = from_exception(exc)
        assert mapped is not None and mapped.exit_code == ExitCode.CONNECT, exc
        assert "hunter2" not in mapped.format_message()
    assert missing_db.sqlstate in (None, "3D000")


def test_real_3d000_in_a_statement_is_a_failure(server: Server) -> None:
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        exc = _raised(lambda: conn.execute("DROP DATABASE no_such_db_xyz"))
    assert exc.sqlstate == "3D000"
    mapped = from_exception(exc)
    assert mapped is not None and mapped.exit_code == ExitCode.FAILED


# --- permission hints: the object and the grant actually missing ------------------------------

RUNS_GRANT = "GRANT SELECT, INSERT, UPDATE, DELETE ON epstats.runs TO alice"


@pytest.mark.parametrize(
    ("line", "statement", "version", "says"),
    [
        # epstats' own tables: the privilege the statement needed; the grant of all it uses
        ("permission denied for table runs", "INSERT INTO epstats.runs (task) VALUES (1)",
         150000, f"INSERT on epstats.runs is missing: {RUNS_GRANT}"),
        ("permission denied for table runs", "UPDATE epstats.runs SET x = 1 WHERE id = 2",
         150000, f"UPDATE on epstats.runs is missing: {RUNS_GRANT}"),
        ("permission denied for table runs", "-- why\nSELECT task FROM epstats.runs",
         150000, f"SELECT on epstats.runs is missing: {RUNS_GRANT}"),
        ("permission denied for table rollup_state",
         'INSERT INTO "epstats"."rollup_state" AS s (a) SELECT 1 '
         'ON CONFLICT (a) DO UPDATE SET a = 1',
         150000, "INSERT on epstats.rollup_state is missing: GRANT SELECT, INSERT, UPDATE, DELETE"),
        # any other relation: what the statement needs there, schema-qualified
        ("permission denied for table requests",
         'INSERT INTO "public"."requests" ("endpoint") SELECT e FROM "public"."x"',
         150000, "INSERT on public.requests is missing: GRANT INSERT ON public.requests TO alice"),
        ("permission denied for table x",
         'INSERT INTO "public"."requests" ("endpoint") SELECT e FROM "public"."x"',
         150000, "SELECT on public.x is missing: GRANT SELECT ON public.x TO alice"),
        ("permission denied for materialized view endpoint_daily_stats",
         'SELECT * FROM "public"."endpoint_daily_stats" WHERE day > now() FOR UPDATE',
         150000, "SELECT on public.endpoint_daily_stats is missing: "
         "GRANT SELECT ON public.endpoint_daily_stats TO alice"),
        ('permission denied for table Api Logs', 'DELETE FROM "Ops"."Api Logs" WHERE true',
         150000, 'DELETE on "Ops"."Api Logs" is missing: '
         'GRANT SELECT, DELETE ON "Ops"."Api Logs" TO alice'),
        # from PostgreSQL 17, maintenance says "permission denied": MAINTAIN is missing
        ("permission denied for materialized view endpoint_daily_stats",
         'REFRESH MATERIALIZED VIEW CONCURRENTLY "public"."endpoint_daily_stats"', 180000,
         "MAINTAIN on public.endpoint_daily_stats is missing: "
         "GRANT MAINTAIN ON public.endpoint_daily_stats TO alice (or connect as its owner)"),
        # schemas and databases: USAGE to use, CREATE to create
        ("permission denied for schema epstats", "INSERT INTO epstats.runs (task) VALUES (1)",
         150000, "USAGE on schema epstats is missing: GRANT USAGE ON SCHEMA epstats TO alice"),
        ("permission denied for schema epstats", "CREATE TABLE IF NOT EXISTS epstats.runs ()",
         150000, "CREATE on schema epstats is missing: GRANT CREATE ON SCHEMA epstats TO alice"),
        ("permission denied for database stats", "CREATE SCHEMA IF NOT EXISTS epstats",
         150000, "CREATE on database stats is missing: GRANT CREATE ON DATABASE stats TO alice"),
        ("permission denied for function pg_ls_dir", "SELECT pg_ls_dir('.')",
         150000, "EXECUTE on function pg_ls_dir is missing: GRANT EXECUTE ON FUNCTION pg_ls_dir"),
        # the owner, and from PostgreSQL 17 MAINTAIN for maintenance statements
        ("must be owner of table requests", 'REINDEX INDEX CONCURRENTLY "public"."i"', 150000,
         "must be owner of table requests: connect as the owner of requests (or a member of "
         "its owning role)"),
        ("must be owner of materialized view endpoint_daily_stats",
         'REFRESH MATERIALIZED VIEW "public"."endpoint_daily_stats"', 170000,
         "connect as the owner of public.endpoint_daily_stats (or a member of its owning "
         "role), or GRANT MAINTAIN ON public.endpoint_daily_stats TO alice"),
    ],
)  # fmt: skip
def test_permission_hints_name_the_object_and_the_missing_grant(
    line: str, statement: str, version: int, says: str
) -> None:
    mapped = from_exception(_noted(_pg("42501", line), statement, version))
    assert mapped is not None and mapped.exit_code == ExitCode.FAILED
    text = mapped.format_message()
    assert text.startswith(line) and says in text, text
    assert "connect as the table owner" not in text


def test_a_permission_error_without_its_statement_names_the_object() -> None:
    text = str(from_exception(_pg("42501", "permission denied for table runs")))
    assert text == "permission denied for table runs: a privilege on table runs is missing: " + (
        "see its grants with \\dp runs"
    )
    text = str(from_exception(_pg("42501", "permission denied for schema epstats")))
    assert text.endswith(
        "USAGE on schema epstats is missing: GRANT USAGE ON SCHEMA epstats TO <role>"
    )
