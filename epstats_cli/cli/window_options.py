"""The window options of `report top` and `report endpoint`: --source, --days, --hours,
--since and --until (a date, or a local date and time), checked before anything connects."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from epstats_cli.errors import UsageLine

SOURCES = ("auto", "view", "raw")

WHEN_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")


def _when(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """--since/--until: a date, or a local date and time (2026-11-27T09:30, 2026-11-27
    09:30[:SS]); anything else is a one-line usage error (exit 2)."""
    if value is None:
        return None
    text = value.strip()
    for fmt in ("%Y-%m-%d", *WHEN_FORMATS):
        try:
            when = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        return when.date() if fmt == "%Y-%m-%d" else when
    raise UsageLine(
        f"{param.opts[0]} {value!r} is neither a date (2026-11-27) nor a local date and time "
        "(2026-11-27T09:30 or '2026-11-27 09:30')"
    )


def options(fn: Any) -> Any:
    fn = click.option(
        "--until",
        callback=_when,
        metavar="DATE[THH:MM]",
        help="With --since: the window's last day (through its end), or the local time in "
        "source.timezone it ends at (excluded).",
    )(fn)
    fn = click.option(
        "--since",
        callback=_when,
        metavar="DATE[THH:MM]",
        help="First day of the window, or a local time in source.timezone to start at (a time "
        "in a DST gap or overlap resolves as PostgreSQL does, shown in the footer).",
    )(fn)
    fn = click.option(
        "--hours",
        type=click.IntRange(1, 878400),
        metavar="N",
        help="The last N hours, up to now (auto reads the partial days at the window's ends "
        "from the raw rows, the whole days between them from the rollup).",
    )(fn)
    fn = click.option(
        "--days",
        type=click.IntRange(1, 36600),
        help="The last N days, today included (default: reports.days).",
    )(fn)
    return click.option(
        "--source",
        type=click.Choice(SOURCES),
        default="auto",
        show_default=True,
        help="view: the rollup only (whole days); raw: the requests table; auto: the rollup "
        "plus raw rows newer than it, and the raw rows of a window's partial days, in one "
        "statement.",
    )(fn)


Moment = dt.date | dt.datetime  # a date, or a local date and time


def checked(
    days: int | None, since: Moment | None, until: Moment | None, hours: int | None = None
) -> tuple[Moment | None, Moment | None]:
    """--since and --until as the window takes them (a local midnight as a date), checked."""
    if hours is not None and (days is not None or since or until):
        raise click.UsageError("--hours excludes --days/--since/--until")
    if days is not None and (since or until):
        raise click.UsageError("--days excludes --since/--until")
    if until and not since:
        raise click.UsageError("--until needs --since")

    def plain(when: Moment | None, end: bool = False) -> Moment | None:
        """A local midnight as a date (whole days): --until's is the end of the day before."""
        if isinstance(when, dt.datetime) and when.time() == dt.time():
            return when.date() - dt.timedelta(days=end)
        return when

    first, last = plain(since), plain(until, end=True)
    if since is not None and until is not None and first is not None and last is not None:
        begins = _instant(first)
        ends = last if isinstance(last, dt.datetime) else _instant(last) + dt.timedelta(days=1)
        if ends <= begins:
            how = "is before" if ends < begins else "is the same instant as"
            raise UsageLine(
                f"--until {_said(until)} {how} --since {_said(since)}: the window would be "
                "empty (a date-only --until includes that whole day)"
            )
    return first, last


def _instant(when: Moment) -> dt.datetime:
    return when if isinstance(when, dt.datetime) else dt.datetime.combine(when, dt.time())


def _said(when: Moment) -> str:
    return f"{when:%Y-%m-%d %H:%M}" if isinstance(when, dt.datetime) else f"{when:%Y-%m-%d}"


def _percentiles(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """--percentiles `90,99.9`: numbers in (0, 100]; anything else is a one-line usage error."""
    if value is None:
        return ()
    from epstats_cli.latency import parse_percentiles

    try:
        return parse_percentiles(value)
    except ValueError as exc:
        raise UsageLine(
            f"--percentiles {value!r}: {exc}; give percentiles in (0, 100] separated by "
            "commas, e.g. 90,99.9"
        ) from None


def percentiles_option(fn: Any) -> Any:
    """--percentiles: percentiles beside p50, p95 and p99 (p90_ms, p99_9_ms)."""
    return click.option(
        "--percentiles",
        callback=_percentiles,
        metavar="P[,P...]",
        help="More percentiles beside p50, p95 and p99, e.g. 90,99.9 (keys p90_ms, p99_9_ms). "
        "raw: exact (percentile_disc); view and auto: from the rollup's latency histograms, "
        "within view.latency_accuracy of it.",
    )(fn)
