"""Per-invocation state shared by all commands: options, lazily loaded config, console, session."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

    from epstats_cli.config import Config
    from epstats_cli.db import Session
    from epstats_cli.execute import Executor
    from epstats_cli.render import Result


F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    config_path: str | None = None
    dsn_option: str | None = None
    # --format, given before or after the command (the last one wins), one of kinds.FORMATS and
    # already checked against what the running command produces (kinds.PRODUCES): "yaml" only
    # reaches `config show` and `advise`, "openmetrics" only `check` and `status`, whose
    # renderer (cli/health.py) writes it.
    fmt: str = "table"
    quiet: bool = False
    verbose: bool = False
    no_color: bool = False
    debug: bool = False
    console_file: Any = None
    _config: Config | None = field(default=None, repr=False)
    _console: Console | None = field(default=None, repr=False)
    _err_console: Console | None = field(default=None, repr=False)

    def close(self) -> None:
        """Nothing to release yet; sessions are closed by their context managers."""

    @property
    def config(self) -> Config:
        if self._config is None:
            from epstats_cli import config

            self._config = config.load(self.config_path)
        return self._config

    def use_config(self, config: Config) -> None:
        """Run with this configuration instead of the loaded one (e.g. demo's own schema)."""
        self._config = config

    def dsn(self) -> str:
        """--dsn, else $EPSTATS_DSN, else database.dsn, else "" (libpq's PG* variables)."""
        return self._resolve(
            self.dsn_option or os.environ.get("EPSTATS_DSN") or self.config.database.dsn or ""
        )

    def _resolve(self, dsn: str) -> str:
        if dsn.strip() == "embedded":
            from epstats_cli import embedded

            dsn = embedded.ensure_server(log=self.note)
        return dsn

    def maintenance_dsn(self) -> str | None:
        """database.maintenance_dsn; None (the primary DSN) when unset or when --dsn or
        $EPSTATS_DSN name the server, which they do for every command."""
        configured = self.config.database.maintenance_dsn
        if not configured or self.dsn_option or os.environ.get("EPSTATS_DSN"):
            return None
        return self._resolve(configured)

    def session_fix(self, maintenance: str | None) -> str:
        """How to get a changing command past a pooler, given where it connected."""
        if maintenance is not None:
            return (
                "database.maintenance_dsn names it: "
                "point it at the server itself or at a session-mode pool"
            )
        if self.dsn_option or os.environ.get("EPSTATS_DSN"):
            return (
                "give --dsn (or $EPSTATS_DSN) the server itself or a session-mode pool "
                "(they override database.maintenance_dsn)"
            )
        return "set database.maintenance_dsn to the server itself or to a session-mode pool"

    @contextmanager
    def session(self, changing: bool | None = None) -> Iterator[Session]:
        """A session for the running command. `changing` (default: as cli/kinds.py classifies
        the command) connects to database.maintenance_dsn and needs one server session."""
        from epstats_cli import db
        from epstats_cli.cli import kinds

        ctx = click.get_current_context(silent=True)
        if changing is None:
            assert ctx is not None
            changing = kinds.changes(kinds.command_path(ctx))
        maintenance = self.maintenance_dsn()
        if changing:
            with db.session(
                self.config,
                maintenance or self.dsn(),
                changing=True,
                fix=self.session_fix(maintenance),
                note=self.verbose_note,
            ) as s:
                from epstats_cli import preflight

                if ctx is not None:  # every right it needs, all missing ones named at once
                    preflight.require(s, kinds.command_path(ctx), ctx.params)
                yield s
            return
        path = kinds.command_path(ctx) if ctx is not None else ""
        with db.closing(self._reading(path)) as s:
            s.maintenance_dsn = maintenance
            if ctx is not None and kinds.command_path(ctx) in kinds.PREFLIGHT_READ_ONLY:
                from epstats_cli import preflight

                preflight.require(s, kinds.command_path(ctx), ctx.params)
            yield s

    def _reading(self, path: str) -> Session:
        """A read-only session: on database.replica_dsn for the commands that read there
        (kinds.REPLICA_READS), else, or when it cannot be reached within connect_timeout, on
        the primary DSN (the session's replica_fallback says why; the command says it)."""
        from epstats_cli import db
        from epstats_cli.cli import kinds
        from epstats_cli.errors import ConnectError

        replica = self.config.database.replica_dsn
        fallback = None
        if replica and path in kinds.REPLICA_READS:
            try:
                return db.connect(self.config, replica, named_by="database.replica_dsn")
            except ConnectError as exc:
                fallback = f"database.replica_dsn: {exc}; read from the primary instead"
        s = db.connect(self.config, self.dsn())
        s.replica_fallback = fallback
        return s

    @property
    def console(self) -> Console:
        if self._console is None:
            from epstats_cli.render import make_console

            self._console = make_console(self.no_color, file=self.console_file)
        return self._console

    @property
    def err_console(self) -> Console:
        if self._err_console is None:
            from epstats_cli.render import make_console

            self._err_console = make_console(self.no_color, file=sys.stderr)
        return self._err_console

    def show_progress(self) -> bool:
        """Progress bars only for a person at a terminal."""
        return not self.quiet and self.fmt == "table" and sys.stderr.isatty()

    def progress_console(self) -> Console | None:
        """Where progress bars go: the stderr console when show_progress(), else nowhere."""
        return self.err_console if self.show_progress() else None

    def executor(self, session: Session, dry_run: bool = False, record: bool = False) -> Executor:
        """The step executor for a changing command, drawing progress on progress_console()
        and saying whom a long wait is for when a person watches (or with -v)."""
        from epstats_cli.execute import Executor

        watched = self.show_progress() or (self.verbose and not self.quiet)
        console = self.err_console
        return Executor(
            session,
            dry_run,
            self.progress_console(),
            record,
            (lambda line: console.out(line, highlight=False)) if watched else None,
        )

    def out(self, result: Result, *, force: bool = False) -> None:
        """Render a result to stdout; --quiet suppresses it unless `force` (failures)."""
        from epstats_cli.render import render, write_data

        if self.fmt != "table":  # JSON and CSV need no Console (nor rich's import time)
            file = self._console.file if self._console is not None else self.console_file
            write_data(result, self.fmt, file if file is not None else sys.stdout)
            return
        if self.quiet and not force:
            return
        render(result, self.fmt, self.console)

    def note(self, message: str) -> None:
        """A line for people on stderr (suppressed by --quiet)."""
        if not self.quiet:
            click.echo(message, err=True)

    def verbose_note(self, message: str) -> None:
        if self.verbose and not self.quiet:
            click.echo(message, err=True)


def shown_option(name: str, kind: Any, default: Any, help: str) -> Callable[[F], F]:
    """A click option whose default is shown in --help."""
    return click.option(name, type=kind, default=default, show_default=True, help=help)


def get_app() -> App:
    """The App of the running command."""
    app = click.get_current_context().find_object(App)
    assert app is not None
    return app


def stdout_to_devnull() -> None:
    """After a closed pipe: what is still buffered goes nowhere, so that the interpreter's
    last flush does not print "Exception ignored ... BrokenPipeError"."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (a test's captured stdout)
        pass
