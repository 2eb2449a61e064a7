"""The README's cron lines for node_exporter's textfile collector, run as written by /bin/sh:
a complete file is renamed into place; a write that fails (here a file size limit, as a full
disk would) leaves the last good file alone, whatever the exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

README = Path(__file__).resolve().parent.parent / "README.md"
TEXTFILE_DIR = "/var/lib/node_exporter/textfile"


def _cron_line(command: str) -> str:
    """The README's cron line of `epstats --format openmetrics <command>`, without its
    schedule (the five fields before the command)."""
    lines = [
        line
        for line in README.read_text().splitlines()
        if f"epstats --format openmetrics {command} >" in line
    ]
    assert len(lines) == 1, lines
    return lines[0].split(None, 5)[5]


def _run(line: str, textfile: Path, dsn: str, tmp_path: Path, before: str = "") -> str:
    """The line as cron's /bin/sh runs it, with the collector's directory and the config
    file made this test's, and `epstats` on the PATH; what it prints."""
    assert TEXTFILE_DIR in line and "/etc/epstats.yaml" in line
    cfg = tmp_path / "epstats.yaml"
    cfg.write_text("check: {}\n")
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    wrapper = bindir / "epstats"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m epstats_cli "$@"\n')
    wrapper.chmod(0o755)
    command = line.replace(TEXTFILE_DIR, str(textfile)).replace("/etc/epstats.yaml", str(cfg))
    env = {
        "PATH": f"{bindir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "EPSTATS_DSN": dsn,
        "PYTHONPATH": str(README.parent),
    }
    done = subprocess.run(
        ["/bin/sh", "-c", before + command],
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
        capture_output=True,
        text=True,
    )
    return done.stdout


@pytest.mark.parametrize(("command", "file"), [("check", "epstats"), ("status", "epstats_status")])
def test_the_cron_line_installs_only_a_complete_file(
    dsn: str, tmp_path: Path, command: str, file: str
) -> None:
    line = _cron_line(command)
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    prom, tmp = textfile / f"{file}.prom", textfile / f"{file}.prom.tmp"
    # a good write: the file is renamed into place, complete
    _run(line, textfile, dsn, tmp_path)
    text = prom.read_text()
    assert text.endswith("# EOF\n") and not tmp.exists()
    assert list(text_string_to_metric_families(text))
    good = text
    # a write cut short (a file size limit of one block: EFBIG, as a full disk's ENOSPC)
    _run(line, textfile, dsn, tmp_path, before="ulimit -f 1; ")
    assert prom.read_text() == good  # the last good file stays
    assert tmp.exists() and 0 < tmp.stat().st_size < len(good)  # half a file was written
    assert not tmp.read_text().endswith("# EOF\n")
    # a file that cannot be written at all
    tmp.unlink()
    tmp.mkdir()
    _run(line, textfile, dsn, tmp_path)
    assert prom.read_text() == good and tmp.is_dir()
    # why the exit code cannot guard the rename: a write cut short is exit 1 (an operation
    # failed), which for `check` is also WARNING
    tmp.rmdir()
    cut = line.split(";")[0] + "; echo $?"
    assert _run(cut, textfile, dsn, tmp_path, before="ulimit -f 1; ").strip() == "1"
