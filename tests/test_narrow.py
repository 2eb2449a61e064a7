"""Nothing cut at 60, 80 and 200 columns: the real tables of `indexes status`, `report top`,
`view verify`, `status` and `check` on a real server with a 5,000-character endpoint and long
index names, in-process at a given width, and end to end (the CLI in a pseudo-terminal of 80
columns, and with its output piped)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import tempfile
import termios
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from epstats_cli import render
from tests.conftest import Run, Server, run_cli
from tests.layout_check import assert_fits, assert_number, assert_whole, plain_lines

pytestmark = pytest.mark.one_version  # heavy: the first server version only

ROOT = Path(__file__).resolve().parent.parent
LONG_ENDPOINT = "/api/v1/" + "".join(chr(97 + (i * 7) % 26) for i in range(5000))
LONG_INDEX = "idx_requests_endpoint_timestamp_status_for_narrow_terminals"  # not recommended
LONG_RECOMMENDED = "idx_requests_endpoint_timestamp_with_a_long_descriptive_name"
CONFIG = f"""
source: {{timezone: UTC}}
view: {{strategy: incremental}}
indexes:
  - {{name: idx_requests_timestamp, columns: [timestamp]}}
  - {{name: {LONG_RECOMMENDED}, columns: [endpoint, timestamp]}}
"""
ROWS = """
INSERT INTO requests (endpoint, timestamp, response_time, status)
SELECT (ARRAY[%(long)s, '/api/short', '/api/v1/orders/{id}/items'])[1 + g %% 3],
       now() - interval '1 hour' - g * interval '7 minutes',
       (g %% 1000) * 12.345,
       CASE WHEN g %% 11 = 0 THEN 503 ELSE 200 END
FROM generate_series(1, 3000) g
"""
COMMANDS = {
    "indexes status": ("indexes", "status"),
    "report top": ("report", "top", "--days", "30"),
    "view verify": ("view", "verify", "--days", "30"),
    "status": ("status",),
    "check": ("-v", "check"),
}


@pytest.fixture(scope="module")
def wide(server: Server) -> Iterator[tuple[str, str]]:
    """A database whose tables are wide: a 5,000-character endpoint, long index names, and a
    rollup that differs from the raw rows (so `view verify` has rows to show)."""
    name = f"epstats_narrow_{os.getpid()}"
    server.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    dsn = server.dsn_for(name)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = str(Path(tmp) / "c.yaml")
        Path(cfg).write_text(CONFIG)
        try:
            assert run_cli("-c", cfg, "--dsn", dsn, "init", "--with-requests-table").code == 0
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(ROWS, {"long": LONG_ENDPOINT})
                conn.execute(
                    f'CREATE INDEX "{LONG_INDEX}" ON requests (endpoint, timestamp, status)'
                )
            for step in (("indexes", "apply"), ("view", "build")):
                r = run_cli("-c", cfg, "--dsn", dsn, *step)
                assert r.code == 0, r.stderr
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(
                    "UPDATE endpoint_daily_stats SET request_count = request_count + 1000000 "
                    "WHERE endpoint IS NOT NULL"
                )
                conn.execute("ANALYZE requests")
            yield cfg, dsn
        finally:
            server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _at_width(
    monkeypatch: pytest.MonkeyPatch, width: int, *args: str
) -> tuple[Run, list[render.Result]]:
    """Run the CLI in-process with its console at `width`; what it rendered, as data too."""
    made = render.make_console
    shown = render.render
    results: list[render.Result] = []

    def console(no_color: bool = False, file: Any = None, width_: int | None = None) -> Any:
        return made(no_color, file=file, width=width)

    def spy(result: render.Result, fmt: str, con: Any) -> None:
        results.append(result)
        shown(result, fmt, con)

    with monkeypatch.context() as m:
        m.setattr(render, "make_console", console)
        m.setattr(render, "render", spy)
        return run_cli(*args), results


VOLATILE = {"scans"}  # figures that may move between two runs of the same command


def _assert_every_cell_whole(
    out: str, results: list[render.Result], another_run: bool = False
) -> int:
    """Every name and number of every table row is in the output whole; how many were. Of
    `another_run`'s output: the names and the figures that do not move between runs."""
    checked = 0
    for result in results:
        for table in result.tables:
            for column in table.columns:
                if not column.in_table:  # CSV's only
                    continue
                fit = render.measure(column, table.rows)
                if another_run and (fit.kind == "prose" or column.key in VOLATILE):
                    continue
                for text in fit.cells:
                    if fit.kind == "atomic":
                        assert_number(out, text)
                    else:
                        assert_whole(out, text)
                    checked += 1
    return checked


@pytest.mark.parametrize("width", [60, 80, 200])
@pytest.mark.parametrize("command", COMMANDS)
def test_real_tables_are_never_cut(
    wide: tuple[str, str], monkeypatch: pytest.MonkeyPatch, command: str, width: int
) -> None:
    cfg, dsn = wide
    run, results = _at_width(monkeypatch, width, "-c", cfg, "--dsn", dsn, *COMMANDS[command])
    assert run.code in (0, 1, 2), run.stderr  # verify differs (1); check may warn
    assert results and any(t.rows for r in results for t in r.tables), run.stdout
    body = run.stdout
    if command == "check":  # the Nagios line comes first, as long as it is
        body = body.split("\n", 1)[1]
    assert_fits(body, width)
    assert _assert_every_cell_whole(body, results) > 0
    if command in ("report top", "view verify"):
        assert_whole(body, LONG_ENDPOINT)
    if command == "indexes status":
        assert_whole(body, LONG_INDEX, LONG_RECOMMENDED)


def _env(columns: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPSTATS_")}
    env.update({"COLUMNS": str(columns), "TERM": "xterm", "NO_COLOR": "1"})
    env["PYTHONPATH"] = str(ROOT)
    return env


def _in_terminal(
    args: tuple[str, ...], columns: int, seen: Callable[[str], None] | None = None
) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal of `columns` columns as its stdin, stdout and
    stderr; `seen` is told the output so far as it comes."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "epstats_cli", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=_env(columns),
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    try:
        while select.select([master], [], [], 120)[0]:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the CLI ended and the terminal closed
                break
            if not data:
                break
            chunks.append(data)
            if seen is not None:
                seen(b"".join(chunks).decode(errors="replace"))
    finally:
        os.close(master)
        code = proc.wait(timeout=120)
    return code, b"".join(chunks).decode()


@pytest.mark.parametrize("command", ["report top", "view verify", "indexes status", "check"])
def test_the_cli_in_an_80_column_terminal_and_piped(
    wide: tuple[str, str], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    cfg, dsn = wide
    args = ("-c", cfg, "--dsn", dsn, *COMMANDS[command])
    _, results = _at_width(monkeypatch, 200, *args)  # what the tables hold

    code, out = _in_terminal(args, 80)
    assert code in (0, 1, 2), out
    lines = plain_lines(out)
    if command == "check":
        out = "\n".join(lines[1:])  # the Nagios line: one line, however long
    assert_fits(out, 80)
    assert _assert_every_cell_whole(out, results, another_run=True) > 0
    if command in ("report top", "view verify"):
        assert_whole(out, LONG_ENDPOINT)

    piped = subprocess.run(
        [sys.executable, "-m", "epstats_cli", *args],
        capture_output=True,
        check=False,
        text=True,
        env=_env(80),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert piped.returncode == code, piped.stderr
    assert "\x1b[" not in piped.stdout  # not a terminal: plain text
    body = piped.stdout
    if command == "check":
        body = body.split("\n", 1)[1]  # -v: the table follows the Nagios line, even piped
    assert_fits(body, 160)  # a pipe is not cut: 160 columns, long cells folded
    assert _assert_every_cell_whole(body, results, another_run=True) > 0
    if command in ("report top", "view verify"):
        assert_whole(body, LONG_ENDPOINT)


def test_a_clean_verify_as_csv_still_has_its_header_row(dsn: str, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("source: {timezone: UTC}\n")
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(ROWS, {"long": "/api/long"})
    assert run_cli("-c", str(cfg), "--dsn", dsn, "view", "build").code == 0
    r = run_cli("-c", str(cfg), "--dsn", dsn, "--format", "csv", "view", "verify")
    assert r.code == 0, r.stderr
    assert r.stdout == (
        "endpoint,day,view_requests,raw_requests,view_errors,raw_errors,view_min,raw_min,"
        "view_max,raw_max,view_total,raw_total,histogram_differs\n"
    )
    r = run_cli("-c", str(cfg), "--dsn", dsn, "view", "verify")
    assert r.code == 0 and "OK: the rollup equals the raw rows" in r.stdout
    assert "Endpoint" not in r.stdout  # people are not shown an empty table


def test_the_progress_bar_in_an_80_column_terminal(dsn: str, tmp_path: Path) -> None:
    """`indexes apply` builds an index with a long name while a writer's transaction is open:
    the build waits for it, and the bar shows that phase beside one percentage, within 80
    columns, the index name whole on the line above."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(ROWS, {"long": "/api/long"})
        conn.execute('CREATE INDEX idx_requests_timestamp ON requests ("timestamp")')
    with psycopg.connect(dsn) as writer:
        writer.execute("INSERT INTO requests VALUES ('/w', now(), 1, 200)")
        released: list[bool] = []

        def release(out: str) -> None:
            if not released and "waiting for writers" in out:
                writer.commit()
                released.append(True)

        code, out = _in_terminal(("-c", str(cfg), "--dsn", dsn, "indexes", "apply"), 80, release)
        if not released:
            writer.rollback()
    assert code == 0 and released, out
    # whom the build waits for is a message, one line for the terminal to wrap
    assert_fits("\n".join(ln for ln in plain_lines(out) if not ln.startswith("epstats:")), 80)
    assert_whole(out, LONG_RECOMMENDED, "waiting for writers before build")
    bars = [ln for ln in plain_lines(out) if "%" in ln and "waiting for writers" in ln]
    assert bars, out
    for line in bars:  # the bar keeps its width: the percentage stands after it
        assert line.index("%") >= 24 + 5, line
