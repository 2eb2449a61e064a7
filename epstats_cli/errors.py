"""Exceptions that carry SPEC.md's exit codes, and the one place that maps others onto them.

Database errors are mapped by SQLSTATE through one table, RULES: an exact code or a two-character
class, an optional condition, the exit code and the message. `from_exception` reads it; nothing
else decides what a database error means to the user.
"""

from __future__ import annotations

import enum
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import click

from epstats_cli import permissions, received

# The signals received (received.py) are part of this module's contract: the first decides
# how epstats ends.
clear_signal = received.clear_signal
handled_signals = received.handled_signals
later_signals = received.later_signals
note_arrival = received.note_arrival
note_signal = received.note_signal
noted_signal = received.noted_signal
noted_signals = received.noted_signals
read_arrivals_with = received.read_arrivals_with
settle_signals = received.settle_signals


class ExitCode(enum.IntEnum):
    """Process exit codes (SPEC.md, "Exit codes")."""

    OK = 0
    FAILED = 1
    USAGE = 2
    CONFIG = 3
    CONNECT = 4
    LOCKED = 75
    INTERRUPTED_HUP = 129
    INTERRUPTED = 130
    INTERRUPTED_TERM = 143


class EpstatsError(click.ClickException):
    """An expected error: one line on stderr, no traceback, a documented exit code."""

    exit_code = ExitCode.FAILED

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"epstats: error: {self.format_message()}", file=file or sys.stderr)


class OperationFailed(EpstatsError):
    """A database operation failed (exit 1)."""

    exit_code = ExitCode.FAILED


class ConfigError(EpstatsError):
    """The configuration is invalid (exit 3)."""

    exit_code = ExitCode.CONFIG

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))

    def show(self, file: IO[Any] | None = None) -> None:
        for problem in self.problems:
            click.echo(f"epstats: error: {problem}", file=file or sys.stderr)


class ConnectError(EpstatsError):
    """The server cannot be reached or refused the credentials (exit 4)."""

    exit_code = ExitCode.CONNECT


class LockedError(EpstatsError):
    """Another epstats run holds the maintenance lock (exit 75, EX_TEMPFAIL)."""

    exit_code = ExitCode.LOCKED


class UsageLine(click.UsageError):
    """A usage error said in one line, without click's usage banner (exit 2)."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"epstats: error: {self.format_message()}", file=file or sys.stderr)


class Interrupted(EpstatsError):
    """epstats was stopped by SIGINT and cancelled its server statement (exit 130)."""

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, signum: int | None = None, message: str | None = None) -> None:
        self.signum = signum
        super().__init__(message or interrupted_message(signum))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"epstats: {self.format_message()}", file=file or sys.stderr)


class InterruptedTerm(Interrupted):
    """Stopped by SIGTERM (exit 143)."""

    exit_code = ExitCode.INTERRUPTED_TERM


class InterruptedHup(Interrupted):
    """Stopped by SIGHUP (exit 129)."""

    exit_code = ExitCode.INTERRUPTED_HUP


# --- signals -----------------------------------------------------------------------------------

_INTERRUPTED_BY: dict[int, type[Interrupted]] = {
    signal.SIGINT: Interrupted,
    signal.SIGTERM: InterruptedTerm,
    signal.SIGHUP: InterruptedHup,
}


def interrupted(signum: int | None = None, message: str | None = None) -> Interrupted:
    """The error for an interruption by `signum` (SIGINT when None), with its exit code."""
    cls = _INTERRUPTED_BY.get(signal.SIGINT if signum is None else signum, Interrupted)
    return cls(signum, message)


def signal_name(signum: int) -> str:
    """SIGTERM for 15; `signal N` for a number Python has no name for."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def interrupted_message(signum: int | None) -> str:
    """`interrupted by SIGTERM (...)`; plain `interrupted (...)` when no signal was recorded."""
    by = "" if signum is None else f" by {signal_name(signum)}"
    return f"interrupted{by} (the server-side statement was cancelled)"


# --- the SQLSTATE table ------------------------------------------------------------------------

NO_SQLSTATE = None  # libpq's own errors (cannot connect, connection lost) carry no SQLSTATE


def _connecting(exc: BaseException) -> bool:
    """Raised while connecting: no statement ever produced a result for it."""
    return getattr(exc, "pgresult", None) is None


def _signalled(exc: BaseException) -> bool:
    """epstats itself cancelled the statement because it received a signal."""
    return bool(noted_signals())


def _missing(
    exc: BaseException, read: Callable[[str, permissions.Context], permissions.Missing | None]
) -> dict[str, str]:
    found = read(first_line(exc), permissions.context_of(exc))
    return {} if found is None else {"what": found.what, "fix": found.fix}


def _not_owner(exc: BaseException) -> bool:
    """`must be owner of ...`."""
    return bool(_missing(exc, permissions.not_owner))


def _not_owner_fix(exc: BaseException) -> dict[str, str]:
    return _missing(exc, permissions.not_owner)


def _privilege_missing(exc: BaseException) -> bool:
    """`permission denied for table|schema|database|... name`."""
    return bool(_missing(exc, permissions.privilege))


def _privilege_fix(exc: BaseException) -> dict[str, str]:
    return _missing(exc, permissions.privilege)


@dataclass(frozen=True)
class Rule:
    """One row of the error contract.

    `sqlstate`: an exact five-character code, a two-character class, or NO_SQLSTATE (matches an
    OperationalError without one). `when`: an extra condition, or None. `exit_code`: None means
    "the recorded signal's". `message`: a template with {line} (the error's first line),
    {signal} (the recorded signal's name) and whatever `details` reads from the exception.
    """

    sqlstate: str | None
    exit_code: ExitCode | None
    message: str
    when: Callable[[BaseException], bool] | None = None
    # more {names} for the message, read from the exception
    details: Callable[[BaseException], dict[str, str]] | None = None


RULES: tuple[Rule, ...] = (
    # cannot connect or authenticate: exit 4
    Rule(NO_SQLSTATE, ExitCode.CONNECT, "cannot connect, or lost the connection: {line}"),
    Rule("08", ExitCode.CONNECT, "lost the connection to the server: {line}"),
    Rule(
        "28",
        ExitCode.CONNECT,
        "the server refused the credentials: {line} "
        "(check the role, .pgpass, PGPASSWORD or database.password_env)",
    ),
    Rule(
        "3D000",
        ExitCode.CONNECT,
        "cannot connect: {line} (check the database name in the DSN)",
        when=_connecting,
    ),
    Rule(
        "53300",
        ExitCode.CONNECT,
        "cannot connect: {line} (the server is at max_connections; retry later or use a pooler)",
    ),
    Rule(
        "57P03",
        ExitCode.CONNECT,
        "cannot connect now: {line} (the server is starting, stopping or in recovery)",
    ),
    # cancelled: by us on a signal (130/143/129), else by statement_timeout or another session
    Rule(
        "57014",
        None,
        "interrupted by {signal} (the server-side statement was cancelled)",
        when=_signalled,
    ),
    Rule(
        "57014",
        ExitCode.FAILED,
        "cancelled by statement_timeout (database.statement_timeout or the role's setting) "
        "or by another session: {line}",
    ),
    Rule(
        "57P01",
        ExitCode.FAILED,
        "terminated by an administrator (pg_terminate_backend or a server shutdown): {line}",
    ),
    Rule(
        "55P03",
        ExitCode.FAILED,
        "could not get a lock within lock_timeout (database.lock_timeout): {line}",
    ),
    Rule("53100", ExitCode.FAILED, "the server's disk is full: {line}"),
    Rule("53200", ExitCode.FAILED, "the server is out of memory: {line}"),
    Rule("55006", ExitCode.FAILED, "the object is in use by another session: {line}"),
    # permission errors name neither the schema nor the privilege: the statement does
    Rule("42501", ExitCode.FAILED, "{line}: {fix}", when=_not_owner, details=_not_owner_fix),
    Rule(
        "42501",
        ExitCode.FAILED,
        "{line}: {what} is missing: {fix}",
        when=_privilege_missing,
        details=_privilege_fix,
    ),
    Rule("42501", ExitCode.FAILED, "permission denied: {line}"),
    Rule(
        "25006",
        ExitCode.FAILED,
        "the server is read-only (a hot standby or default_transaction_read_only): "
        "run this command against the primary",
    ),
)
# Any other psycopg.Error: exit 1 with its first line.


def rule_for(exc: BaseException) -> Rule | None:
    """The first row that applies to a psycopg error: exact code, then its class; or None."""
    import psycopg

    if not isinstance(exc, psycopg.Error):
        return None
    code = exc.sqlstate
    candidates: list[str | None]
    if code is None:
        candidates = [NO_SQLSTATE] if isinstance(exc, psycopg.OperationalError) else []
    else:
        candidates = [code, code[:2]]
    for key in candidates:
        for rule in RULES:
            if rule.sqlstate == key and (rule.when is None or rule.when(exc)):
                return rule
    return None


def from_exception(exc: BaseException) -> EpstatsError | None:
    """Map a database exception onto an EpstatsError, or None when it is not an expected one."""
    import psycopg

    if not isinstance(exc, psycopg.Error):
        return None
    line = first_line(exc)
    rule = rule_for(exc)
    if rule is None:
        return OperationFailed(line)
    signum = noted_signal()
    message = rule.message.format(
        line=line,
        signal="a signal" if signum is None else signal_name(signum),
        **(rule.details(exc) if rule.details else {}),
    )
    if rule.exit_code is None:
        return interrupted(signum, message)
    if rule.exit_code == ExitCode.CONNECT:
        return ConnectError(message)
    return OperationFailed(message)


# --- messages ----------------------------------------------------------------------------------

_URI_PASSWORD = re.compile(r"(postgres(?:ql)?://[^/@:\s]*):[^/@\s]*@")
# Over-redacts a query string's later parameters; an error message loses nothing that matters.
_KEYWORD_PASSWORD = re.compile(r"((?:^|[\s?&])password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def redact_secrets(text: str) -> str:
    """The text with any password in a URI or `password=` setting replaced by ***."""
    text = _URI_PASSWORD.sub(r"\1:***@", text)
    return _KEYWORD_PASSWORD.sub(r"\1***", text)


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (its class name if it has none),
    with passwords redacted."""
    for line in str(exc).splitlines():
        if line.strip():
            return redact_secrets(line.strip())
    return type(exc).__name__
