"""`epstats report top` and `epstats report endpoint NAME`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from epstats_cli.cli.app import App, get_app
from epstats_cli.cli.window_options import Moment, checked, options, percentiles_option

SORTS = ("requests", "avg", "max", "errors", "error_rate", "4xx", "5xx", "p50", "p95", "p99")
BARS = " ▁▂▃▄▅▆▇█"


def _footer(app: App, report: Any, view_name: str) -> list[str]:
    from epstats_cli.durations import human_seconds
    from epstats_cli.render import local_time

    tz = report.timezone
    win = report.window

    def local(instant: dt.datetime, seconds: bool = False) -> str:
        return local_time(instant, tz, seconds)

    if report.source == "raw":
        source = f"raw rows of {app.config.source.table}"
    elif report.source == "view":
        source = f"rollup {view_name}"
    elif not any(part["source"] == "view" for part in report.parts):
        source = f"raw rows of {app.config.source.table} (a window inside one day: the rollup "
        source += "holds whole days)"
    else:
        source = f"rollup {view_name} + {report.newer_rows or 0:,} raw rows it has not aggregated"
        if len(report.parts) > 1:
            source += f", and the raw rows of {app.config.source.table} for the partial days"
    lines = [
        f"source: {source}",
        f"window: {local(win.from_ts)} .. {local(win.to_ts)} ({tz})",
    ]
    if report.source == "auto" and len(report.parts) > 1:
        lines.append("parts: " + "; ".join(_part(part, tz, win.as_of) for part in report.parts))
    lines += [
        f"as of {local(win.as_of, True)}; query {report.seconds * 1000:,.1f} ms",
    ]
    if report.source == "view" and report.watermark is not None:
        age = (win.as_of - report.watermark).total_seconds()
        lines.append(
            f"the rollup is complete through {local(report.watermark, True)}"
            f" ({human_seconds(age)} old): {report.newer_rows or 0:,} raw rows it has not "
            "aggregated are not included (--source auto adds them)"
        )
    if report.configured_otherwise:
        lines.append(
            "the rollup's own parameters are used: "
            + "; ".join(report.configured_otherwise)
            + " (epstats view build --replace applies the configuration)"
        )
    if report.previous is not None:
        before = report.previous.window
        n = (win.to_day - win.from_day).days + 1
        days = "1 day" if n == 1 else f"{n} days"
        if win.by_length:  # --hours N, or an --until time: moved back by its length
            length = (win.to_ts - win.from_ts).total_seconds()
            hours = round(length / 3600)
            days = human_seconds(length) if hours * 3600 != length else f"{hours} hours"
            days = "1 hour" if days == "1 hours" else days
        adjacent = before.to_ts == win.from_ts
        how = f"the {days} right before" if adjacent else f"the same hours {days} earlier"
        if report.source == "auto" and before.parts is not None and before.parts.partial:
            raw = [p for p in before.parts.described("auto") if p["source"] == "raw"]
            how += "; raw rows " + " and ".join(_span(p, tz) for p in raw)
        lines.append(f"compared with: {local(before.from_ts)} .. {local(before.to_ts)} ({how})")
    count, latest = report.future_rows
    if count:
        rows = "1 row is" if count == 1 else f"{count:,} rows are"
        lines.append(f"{rows} dated in the future, up to {local(latest)} (in no window)")
    return lines + list(report.notes)


def _part(part: dict[str, Any], tz: str, now: dt.datetime) -> str:
    """One part of a window as the footer says it: `rollup 2026-11-25..2026-11-26 (whole
    days)` or `raw rows 2026-11-24 09:41..24:00` (a partial day, in local time)."""
    if part["source"] == "view":
        days = f"{part['first_day']}..{part['last_day']}"
        if part["first_day"] == part["last_day"]:
            days = str(part["first_day"])
        whole = "whole days" if part["first_day"] != part["last_day"] else "a whole day"
        if part["to"] >= now:  # today, read as --days reads it
            whole = "whole days, today up to now" if "." in days else "today up to now"
        return f"rollup {days} ({whole})"
    return f"raw rows {_span(part, tz)}"


def _span(part: dict[str, Any], tz: str) -> str:
    """A partial day in local time: `2026-11-24 09:41..24:00`."""
    from zoneinfo import ZoneInfo

    start, end = (part[key].astimezone(ZoneInfo(tz)) for key in ("from", "to"))
    until = f"{end:%H:%M}" if end.date() == start.date() else "24:00"
    return f"{start:%Y-%m-%d %H:%M}..{until}"


def _percentile_columns(keys: list[str]) -> list[Any]:
    """A column for each percentile key (p50_ms: `P50 ms`, p99_9_ms: `P99.9 ms`)."""
    from epstats_cli.render import Column

    def header(key: str) -> str:
        return "P" + key.removeprefix("p").removesuffix("_ms").replace("_", ".") + " ms"

    return [Column(key, header(key), "ms") for key in keys]


def _keys(rows: list[dict[str, Any]]) -> list[str]:
    """The percentile keys of a report's rows (p50_ms, ..., in the order read)."""
    from epstats_cli.latency import DEFAULT_PERCENTILES, percentile_key

    first = rows[0] if rows else {}
    found = [k for k in first if k.startswith("p") and k.endswith("_ms") and k[1].isdigit()]
    return found or [percentile_key(p) for p in DEFAULT_PERCENTILES]


def _figures(mix: tuple[str, ...] = (), keys: list[str] | None = None) -> list[Any]:
    """The figure columns every report row has, in order: the percentiles after the error
    rate, the status classes last, in the table only those of `mix` (CSV has them all)."""
    from epstats_cli.render import Column

    return [
        Column("requests", "Requests", "int"),
        Column("avg_ms", "Avg ms", "ms"),
        Column("min_ms", "Min ms", "ms"),
        Column("max_ms", "Max ms", "ms"),
        Column("errors", "Errors", "int"),
        Column("error_rate", "Error rate", "pct"),
        *_percentile_columns(keys if keys is not None else _keys([])),
        *(
            Column(key, key.removeprefix("status_").capitalize(), "int", in_table=key in mix)
            for key in ("status_2xx", "status_3xx", "status_4xx", "status_5xx", "status_other")
        ),
    ]


def _compared_figures(sort: str, keys: list[str]) -> list[Any]:
    """The figure columns of `report top --compare`: each figure that has a change (see
    reports.CHANGES) followed by its previous value and the change (a ratio, a difference, or
    Δ pp: percentage points). CSV has them all; the table those of requests, the average, the
    error rate and the sorted figure."""
    from dataclasses import replace

    from epstats_cli import reports
    from epstats_cli.render import Column

    shown = {"requests", "avg_ms", "error_rate", reports.SORTS[sort][0]}
    signs = {"ratio": "ratio", "difference": "Δ", "points": "Δ pp"}
    kinds = {"ratio": "float", "difference": "int", "points": "float"}
    changes = reports.CHANGES | dict.fromkeys(keys, "ratio")
    cols = []
    for col in _figures(mix=(reports.SORTS[sort][0],), keys=keys):
        cols.append(col)
        how = changes.get(col.key)
        if how is not None:
            short = col.header.removesuffix(" ms")
            more = [
                Column(f"previous_{col.key}", f"Prev {col.header.lower()}", col.kind),
                Column(f"change_{col.key}", f"{short} {signs[how]}", kinds[how]),
            ]
            cols += [replace(c, in_table=col.key in shown) for c in more]
    return cols


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """A --compare row for the table and CSV: previous_* and change_* beside the figures."""
    flat = {k: v for k, v in row.items() if k not in ("previous", "change")}
    flat.update({f"previous_{k}": v for k, v in row["previous"].items()})
    flat.update({f"change_{k}": v for k, v in row["change"].items()})
    return flat


def top_result(
    app: App,
    rep: Any,
    sort: str,
    *,
    ascending: bool = False,
    pattern: str | None = None,
    min_requests: int | None = None,
) -> Any:
    """The top-N report as a Result (also used by `epstats demo`)."""
    from epstats_cli.render import Column, Result, Table

    compared = rep.previous is not None
    keys = _keys(rep.rows)
    cols = [Column("endpoint", "Endpoint", wrap=False)]
    if compared:
        cols += _compared_figures(sort, keys)
    else:
        cols += _figures(mix=("status_4xx", "status_5xx"), keys=keys)
    rows = [_flat(r) for r in rep.rows] if compared else rep.rows
    by = sort.replace("_", " ")
    seen = sum(1 for r in rep.rows if r["requests"])
    if seen and compared:
        most = "decrease" if ascending else "increase"
        title = f"{seen} endpoint{'s' * (seen != 1)} by change in {by}"
        title += f" (biggest {most} first)"
    elif seen:
        end = "Bottom" if ascending else "Top"
        title = f"{end} {seen} endpoint{'s' * (seen != 1)} by {by}"
        title += " (lowest first)" if ascending else ""
    else:
        title = "No requests in this window"
        if min_requests:
            title = f"No endpoint with at least {min_requests:,} requests in this window"
        if pattern is not None:
            title = title.replace(" in this window", f" like {pattern!r} in this window")
    if compared and len(rep.rows) > seen:
        title += f"; {len(rep.rows) - seen} seen only in the previous window"
    footer = _footer(app, rep, str(app.config.view_name))
    label = {"raw": "raw", "view": "view", "auto": "view+raw"}[rep.source]
    return Result([Table(cols, rows, title, footer)], rep.document(label))


@click.group()
def report() -> None:
    """Top-N endpoints and one endpoint's days, as tables, JSON or CSV.

    Example: epstats report top --days 7 --sort error_rate
    """


@report.command("top")
@options
@click.option("--limit", type=click.IntRange(1, 100000), help="Rows (default: reports.limit).")
@click.option(
    "--sort",
    type=click.Choice(SORTS),
    default="requests",
    show_default=True,
    help="The figure to rank by (4xx, 5xx: the requests of that status class; p50, p95, "
    "p99: that percentile of the response times). With --compare: its change between the two "
    "windows (a ratio for requests, avg, max and the percentiles, the difference for errors, "
    "4xx and 5xx, percentage points for error_rate), biggest increase first; endpoints seen "
    "in only one window last.",
)
@percentiles_option
@click.option(
    "--asc",
    "ascending",
    is_flag=True,
    help="The other end of the sort: lowest first (with --compare: biggest decrease first).",
)
@click.option(
    "--min-requests",
    type=click.IntRange(0, None),
    metavar="N",
    help="Only endpoints with at least N requests in the window (the current one with "
    "--compare), so that a handful of requests cannot top an average or an error rate.",
)
@click.option(
    "--compare",
    is_flag=True,
    help="Add each endpoint's figures in the previous window (this one moved back by its "
    "number of days: the days right before it, or, for a window that ends now, the same hours "
    "that many days earlier; with --hours or an --until time, by its length: the hours right "
    "before it) and the change: a ratio for requests, avg, max and the percentiles, the "
    "difference for errors, percentage points for the error rate; rank by the change of "
    "--sort's figure.",
)
@click.option(
    "--endpoint",
    "pattern",
    metavar="LIKE-PATTERN",
    help="Only endpoints matching this SQL LIKE pattern, e.g. '/api/v1/%'.",
)
def top_cmd(
    source: str,
    days: int | None,
    hours: int | None,
    since: Moment | None,
    until: Moment | None,
    limit: int | None,
    sort: str,
    ascending: bool,
    min_requests: int | None,
    compare: bool,
    pattern: str | None,
    percentiles: tuple[float, ...],
) -> None:
    """The busiest, slowest or most failing endpoints of a window.

    Averages over several days are weighted by the number of response times, never
    averages of daily averages. With --compare, the endpoints whose --sort figure grew the
    most come first (what got worse). Read-only: works on a standby.

    Example: epstats report top --days 7 --compare --sort avg --min-requests 100
    """
    from epstats_cli import reports

    app = get_app()
    first, last = checked(days, since, until, hours)
    with app.session() as s:
        rep = reports.top(
            s,
            days=days,
            hours=hours,
            since=first,
            until=last,
            limit=limit,
            sort=sort,
            pattern=pattern,
            source=source,
            min_requests=min_requests,
            ascending=ascending,
            compare=compare,
            percentiles=percentiles,
        )
    app.out(
        top_result(app, rep, sort, ascending=ascending, pattern=pattern, min_requests=min_requests)
    )


@report.command("endpoint")
@click.argument("name")
@options
@percentiles_option
def endpoint_cmd(
    name: str,
    source: str,
    days: int | None,
    hours: int | None,
    since: Moment | None,
    until: Moment | None,
    percentiles: tuple[float, ...],
) -> None:
    """One endpoint, day by day, with a bar of requests per day beside the day's p95 and a
    totals row.

    Every day of the window has its row: a day without requests shows 0.

    Example: epstats report endpoint /api/v1/orders --days 14
    """
    from dataclasses import replace

    from epstats_cli import report_endpoint, reports
    from epstats_cli.render import Column, Result, Table

    app = get_app()
    first, last = checked(days, since, until, hours)
    with app.session() as s:
        rep = report_endpoint.endpoint_days(
            s,
            name,
            days=days,
            hours=hours,
            since=first,
            until=last,
            source=source,
            percentiles=percentiles,
        )
    peak = max(r["requests"] for r in rep.rows) or 1
    rows = [dict(r, trend=_bar(r["requests"], peak)) for r in rep.rows]
    assert rep.totals is not None
    total = dict(rep.totals, day="total", trend="")
    cols = [  # CSV: the JSON rows' keys; the bar and the totals are for people
        Column("day", "Day", wrap=False),
        Column("trend", "Requests/day", wrap=False, in_csv=False),
        Column("p95_ms", "P95 ms", "ms", in_csv=False),  # the day's p95 beside its bar
        *(
            replace(c, in_table=c.key != "p95_ms")  # in CSV where the JSON rows have it
            for c in _figures(mix=reports.STATUS_CLASSES, keys=_keys(rep.rows))
        ),
    ]
    footer = _footer(app, rep, str(app.config.view_name))
    label = {"raw": "raw", "view": "view", "auto": "view+raw"}[rep.source]
    doc = rep.document(label)
    doc["endpoint"], doc["requested"] = rep.endpoint, name
    table = Table(cols, rows, f"Endpoint {rep.endpoint}", footer, summary=[total])
    app.out(Result([table], doc))


def _bar(value: int, peak: int, width: int = 20) -> str:
    """A horizontal bar in eighths of a character: empty for 0, at least an eighth for any
    request, so a quiet day and a slow one never look alike."""
    eighths = max(round(value / peak * width * 8), 1 if value else 0)
    return "█" * (eighths // 8) + (BARS[eighths % 8] if eighths % 8 else "")
