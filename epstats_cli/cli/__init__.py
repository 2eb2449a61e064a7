"""The click layer: global options, lazy command loading, and where errors become exit codes.

Nothing here imports psycopg or rich at module level, so `epstats --help` stays as fast as click.
"""

from __future__ import annotations

import errno
import importlib
import sys
from typing import Any

import click

from epstats_cli import __version__
from epstats_cli.cli import kinds, signals
from epstats_cli.cli.app import App, stdout_to_devnull
from epstats_cli.errors import (
    EpstatsError,
    ExitCode,
    Interrupted,
    OperationFailed,
    UsageLine,
    clear_signal,
    from_exception,
    interrupted,
    later_signals,
    noted_signal,
    signal_name,
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
    "tune": ("tune", "tune", "Plan, apply and inspect the source table's storage parameters."),
    "partition": ("partition", "partition", "Convert the table online to time partitions."),
    "report": ("report", "report", "Top-N endpoints and one endpoint's days."),
    "check": ("health", "check", "Health checks with Nagios exit codes."),
    "advise": ("advise", "advise", "Resource, pool and layout advice from size and traffic."),
    "demo": ("generate", "demo", "The whole job on an embedded PostgreSQL, no set-up."),
    "status": ("health", "status", "One-screen overview of database, table, indices and rollup."),
}


class StdoutClosed(Exception):
    """The reader of stdout went away (`epstats report top | head -3`): not an OSError, so
    that click does not turn it into exit 1."""


FORMAT_HELP = "Output format: table, json, csv, yaml or openmetrics, as the command can produce."


class SharedOption(click.Option):
    """--format, -q, -v, --no-color, --debug given after a command (or a subcommand group): one
    option with the root's meaning, written into the App; the last one given wins."""


def _set_format(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    app = ctx.find_object(App)
    if app is None:
        return
    if value is not None:
        app.fmt = value
    if isinstance(ctx.command, click.Group):
        return  # checked by the command that runs
    path = kinds.command_path(ctx)
    allowed = kinds.formats(path)
    if app.fmt not in allowed:
        refused, app.fmt = app.fmt, allowed[0]
        raise UsageLine(
            f"`epstats {path}` cannot produce --format {refused}; it takes " + ", ".join(allowed),
            ctx,
        )


def _set_flag(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    app = ctx.find_object(App)
    if app is not None and value and param.name is not None:
        setattr(app, param.name, True)


def _shared_options() -> list[click.Option]:
    flag: dict[str, Any] = {"is_flag": True, "expose_value": False, "callback": _set_flag}
    return [
        SharedOption(
            ["--format", "fmt"],
            type=click.Choice(kinds.FORMATS),
            expose_value=False,
            callback=_set_format,
            help=FORMAT_HELP,
        ),
        SharedOption(["--quiet", "-q", "quiet"], help="Print nothing on success.", **flag),
        SharedOption(["--verbose", "-v", "verbose"], help="Say more.", **flag),
        SharedOption(["--no-color", "no_color"], help="No colours.", **flag),
        SharedOption(["--debug", "debug"], help="Show tracebacks for errors.", **flag),
    ]


SHARED_NAMES = frozenset(
    name for option in _shared_options() for name in (*option.opts, *option.secondary_opts)
)


def adopt(command: click.Command) -> click.Command:
    """Give a command (and every subcommand of a group) the shared options, once."""
    if any(isinstance(p, SharedOption) for p in command.params):
        return command
    clash = {
        name
        for p in command.params
        for name in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))
        if name in SHARED_NAMES
    }
    if clash:
        raise RuntimeError(
            f"command {command.name!r} declares {', '.join(sorted(clash))} itself: "
            "these are epstats's global options, taken before or after any command"
        )
    command.params.extend(_shared_options())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            adopt(sub)
    return command


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, with help listed from COMMANDS."""

    def run(self, args: list[str]) -> Any:
        """What click's main(standalone_mode=False) does, without the blank line click writes
        to stderr on KeyboardInterrupt (every stopping signal arrives as one): epstats' one
        line is all an interruption prints."""
        with self.make_context("epstats", list(args)) as ctx:
            return self.invoke(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise StdoutClosed() from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return adopt(self.commands[cmd_name])
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(f"epstats_cli.cli.{entry[0]}")
        command: click.Command = getattr(module, entry[1])
        return adopt(command)

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
    type=click.Choice(kinds.FORMATS),
    default="table",
    show_default=True,
    help=FORMAT_HELP + " Also after the command.",
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

    --format, -q, -v, --no-color and --debug go before or after the command's name, with
    the same meaning; given twice, the last one wins.

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


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the CLI and turn every outcome into an exit code.

    The first signal received decides the exit code (cli/signals.py), even one that arrives
    as epstats ends, after its command finished. As the console script (no argv), the process
    ends here, whatever happened (os._exit, once its output is flushed), the handlers
    installed until then. Called with an argv (tests, other Python code), the previous
    handlers are put back."""
    clear_signal()
    previous = signals.install()
    args = sys.argv[1:] if argv is None else argv
    code: int = ExitCode.FAILED
    try:
        code = _decided(args, console=argv is None)
    except BaseException:
        if argv is not None:
            raise
        # (nothing gets here but a bug; even then a signal cannot kill the process)
        first = noted_signal()
        code = ExitCode.FAILED if first is None else interrupted(first).exit_code
    finally:
        signals.disarm()
        if argv is None:
            signals.exit_now(code, _report)
        signals.restore(previous)
    return code


def _decided(args: list[str], console: bool) -> int:
    """The exit code: the command's outcome, or the first signal's (one that came as the run
    ended too)."""
    try:
        code = _main(args)
    except KeyboardInterrupt:  # in the instant between an error and disarm()
        signals.disarm()
        code = _report(_stopped(None))
    if console:
        signals.run_exit_functions()
    ended = signals.late(code)
    return code if ended is None else _report(ended)


def _main(args: list[str]) -> int:
    try:
        rv: Any = cli.run(args)
        sys.stdout.flush()  # now, while a closed pipe or a full disk is still ours to handle
        signals.disarm()
    except BaseException as exc:
        signals.disarm()
        return _outcome(exc, args)
    return rv if isinstance(rv, int) else 0


def _debug(args: list[str]) -> bool:
    """--debug anywhere among the options (not after `--`, where arguments begin)."""
    return "--debug" in (args[: args.index("--")] if "--" in args else args)


def _outcome(exc: BaseException, args: list[str]) -> int:
    """The exit code for how the run ended, its one line printed (with --debug, after the
    traceback: the exit code stays SPEC's)."""
    debug = _debug(args)
    if isinstance(exc, StdoutClosed | BrokenPipeError):
        stdout_to_devnull()
        return ExitCode.OK
    if isinstance(exc, OSError) and _stdout_failed(exc):
        stdout_to_devnull()
        return _report(OperationFailed(f"cannot write output: {exc.strerror or exc}"))
    if isinstance(exc, click.exceptions.Abort | KeyboardInterrupt):
        # SIGINT, SIGTERM and SIGHUP arrive as KeyboardInterrupt; the handler noted which
        return _report(_stopped(None))
    if isinstance(exc, Interrupted):
        return _report(_stopped(exc))
    if isinstance(exc, EpstatsError):
        if debug:
            _traceback(exc)
        return _report(exc)
    if isinstance(exc, click.UsageError):
        from epstats_cli.cli.health import check_usage_error

        unknown = check_usage_error(cli, args, exc)  # check's: UNKNOWN, Nagios' output
        if unknown is not None:
            return unknown
        exc.show()
        return exc.exit_code
    if isinstance(exc, click.ClickException):
        exc.show()
        return exc.exit_code
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if not isinstance(exc, Exception):
        raise exc  # SystemExit and the like: not ours to map
    if _wraps_interrupt(exc):
        return _report(_stopped(None))
    if debug:
        _traceback(exc)
    mapped = from_exception(exc)
    if mapped is None:
        ask = (
            "please report it"
            if debug
            else "run again with --debug for the traceback, and please report it"
        )
        click.echo(f"epstats: internal error: {type(exc).__name__}: {exc} ({ask})", err=True)
        return ExitCode.FAILED
    return _report(mapped)


def _wraps_interrupt(exc: BaseException) -> bool:
    """Whether `exc` is what Python made of a signal's KeyboardInterrupt (Python 3.11 wraps
    one raised while a class is created, as a lazy import runs, in a RuntimeError): an
    interruption, not an internal error. Only what an exception is raised *from* counts: an
    error raised while an interruption was being handled (its __context__) stays an error."""
    seen: set[int] = set()
    cause = exc.__cause__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__
    return False


def _report(exc: EpstatsError) -> int:
    exc.show()
    return exc.exit_code


def _traceback(exc: BaseException) -> None:
    import traceback

    traceback.print_exception(exc, file=sys.stderr)


def _stopped(exc: Interrupted | None) -> Interrupted:
    """The interruption to report: its exit code and message the first signal's, whoever
    handled it; the signals that came after it said at the end."""
    first = noted_signal()
    if exc is None or (first is not None and first != exc.signum):
        exc = interrupted(first) if exc is None else interrupted(first, exc.format_message())
    later = [signal_name(s) for s in later_signals()]
    if not later:
        return exc
    said = f"; {', '.join(later)} came later (noted: the first signal decides)"
    return interrupted(exc.signum, exc.format_message() + said)


def _stdout_failed(exc: OSError) -> bool:
    """Whether an OSError is stdout's: writing what is still buffered fails again, or the error
    names no file and is one that writing meets (a full disk, /dev/full, an I/O error)."""
    try:
        sys.stdout.flush()
    except OSError:
        return True
    except ValueError:  # stdout closed
        return True
    # (EBADF: a stdout opened for reading only, `1</dev/null`)
    write_errors = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EBADF)
    return exc.filename is None and exc.errno in write_errors
