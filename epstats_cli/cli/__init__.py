"""The click layer: global options, lazy command loading, and where errors become exit codes.

Nothing here imports psycopg or rich at module level, so `epstats --help` stays as fast as click.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from typing import Any

import click

from epstats_cli import __version__
from epstats_cli.cli.app import App
from epstats_cli.errors import (
    EpstatsError,
    ExitCode,
    clear_signal,
    from_exception,
    interrupted,
    note_signal,
    noted_signal,
)

# name -> (module, attribute, one-line help); modules are imported only when the command runs.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("setup", "init", "Create the epstats schema (and optionally the requests table)."),
    "config": ("setup", "config", "Show or check the effective configuration."),
    "indexes": ("indexes", "indexes", "Plan, apply and inspect the recommended indices."),
    "view": ("view", "view", "Build, refresh, inspect and verify the daily-stats rollup."),
    "endpoints": ("endpoints", "endpoints", "Endpoint cardinality, raw and normalized."),
    "generate": ("generate", "generate", "Load synthetic request data, generated in the server."),
    "vacuum": ("maintain", "vacuum", "VACUUM the source table and rollup (SKIP_LOCKED)."),
    "analyze": ("maintain", "analyze", "ANALYZE the source table and rollup."),
    "reindex": ("maintain", "reindex", "REINDEX CONCURRENTLY the table's indices."),
    "maintain": ("maintain", "maintain", "Cron entry point: run whatever maintenance is due."),
    "report": ("report", "report", "Top-N endpoints and one endpoint's days."),
    "check": ("health", "check", "Health checks with Nagios exit codes."),
    "advise": ("advise", "advise", "Resource, pool and layout advice from size and traffic."),
    "demo": ("generate", "demo", "The whole job on an embedded PostgreSQL, no set-up."),
    "status": ("health", "status", "One-screen overview of database, table, indices and rollup."),
}


class StdoutClosed(Exception):
    """The reader of stdout went away (`epstats report top | head -3`): not an OSError, so
    that click does not turn it into exit 1."""


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, with help listed from COMMANDS."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise StdoutClosed() from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(f"epstats_cli.cli.{entry[0]}")
        command: click.Command = getattr(module, entry[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "-c",
    "config_path",
    metavar="PATH",
    help="Config file (else $EPSTATS_CONFIG, ./epstats.yaml, ~/.config/epstats/config.yaml).",
)
@click.option(
    "--dsn",
    metavar="DSN",
    help="Connection string, or 'embedded' (else $EPSTATS_DSN, the config, then PG* variables).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
@click.option("--verbose", "-v", is_flag=True, help="Say more about what is done and why.")
@click.option("--no-color", is_flag=True, help="No colours (NO_COLOR is honoured too).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(__version__, prog_name="epstats", message="%(prog)s %(version)s")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: str | None,
    dsn: str | None,
    fmt: str,
    quiet: bool,
    verbose: bool,
    no_color: bool,
    debug: bool,
) -> None:
    """Tune and maintain a PostgreSQL endpoint-statistics database.

    Creates and repairs the indices on the requests table, keeps a daily per-endpoint
    rollup, runs VACUUM / ANALYZE / REINDEX from cron without blocking writes, checks
    health and prints top-N endpoint reports.

    Example: epstats --dsn postgresql://dba@db/endpoint_stats report top --days 7
    """
    ctx.obj = App(
        config_path=config_path,
        dsn_option=dsn,
        fmt=fmt,
        quiet=quiet,
        verbose=verbose,
        no_color=no_color,
        debug=debug,
    )
    ctx.call_on_close(ctx.obj.close)


def _stop_on(signum: int, _frame: object) -> None:
    """SIGTERM and SIGHUP stop epstats as Ctrl-C does: psycopg cancels the server statement,
    the executor repairs what it can in a few seconds and records the run as interrupted."""
    note_signal(signum)
    raise KeyboardInterrupt


def _handle_signals() -> dict[int, Any]:
    """Install the SIGTERM/SIGHUP handlers; the handlers they replace (none off the main
    thread, where Python cannot install any)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, _stop_on) for s in (signal.SIGTERM, signal.SIGHUP)}


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the CLI and turn every outcome into an exit code."""
    clear_signal()
    previous = _handle_signals()
    try:
        return _main(argv)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _main(argv: list[str] | None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        rv: Any = cli.main(args=args, prog_name="epstats", standalone_mode=False)
        sys.stdout.flush()  # now, while a closed pipe is still ours to handle
    except (StdoutClosed, BrokenPipeError):
        _stdout_to_devnull()
        return ExitCode.OK
    except (click.exceptions.Abort, KeyboardInterrupt):
        # SIGINT arrives as KeyboardInterrupt; a handler for SIGTERM/SIGHUP notes its signal
        # (errors.note_signal) before interrupting, so the exit code says which one it was.
        stopped = interrupted(noted_signal())
        stopped.show()
        return stopped.exit_code
    except EpstatsError as exc:
        if debug:
            raise
        exc.show()
        return exc.exit_code
    except click.UsageError as exc:
        from epstats_cli.cli.health import check_usage_error

        unknown = check_usage_error(cli, args, exc)  # check's: UNKNOWN, Nagios' output
        if unknown is not None:
            return unknown
        exc.show()
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except Exception as exc:
        if debug:
            raise
        mapped = from_exception(exc)
        if mapped is None:
            click.echo(
                f"epstats: internal error: {type(exc).__name__}: {exc} "
                "(run again with --debug for the traceback, and please report it)",
                err=True,
            )
            return ExitCode.FAILED
        mapped.show()
        return mapped.exit_code
    return rv if isinstance(rv, int) else 0


def _stdout_to_devnull() -> None:
    """After a closed pipe: what is still buffered goes nowhere, so that the interpreter's
    last flush does not print "Exception ignored ... BrokenPipeError"."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (a test's captured stdout)
        pass
