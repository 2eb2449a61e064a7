"""Exceptions that carry SPEC.md's exit codes, and the one place that maps others onto them."""

from __future__ import annotations

import enum
import sys
from typing import IO, Any

import click


class ExitCode(enum.IntEnum):
    """Process exit codes (SPEC.md, "Exit codes")."""

    OK = 0
    FAILED = 1
    USAGE = 2
    CONFIG = 3
    CONNECT = 4
    LOCKED = 75
    INTERRUPTED = 130


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


def from_exception(exc: BaseException) -> EpstatsError | None:
    """Map a database exception onto an EpstatsError, or None when it is not an expected one."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a hard dependency
        return None
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return OperationFailed(f"could not get a lock within lock_timeout: {first_line(exc)}")
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return OperationFailed(f"statement cancelled: {first_line(exc)}")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return OperationFailed(f"permission denied: {first_line(exc)} (connect as the table owner)")
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return OperationFailed(
            "the server is read-only (a hot standby or default_transaction_read_only): "
            "run this command against the primary"
        )
    if isinstance(exc, psycopg.OperationalError):
        return ConnectError(f"lost the connection to the server: {first_line(exc)}")
    if isinstance(exc, psycopg.Error):
        return OperationFailed(first_line(exc))
    return None


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
