"""Load SQL from `sql/<group>/<name>.sql` by name, pick the version variant, fill identifiers.

A file `name_post_160000.sql` beside `name.sql` replaces it on servers whose
`server_version_num` is at least 160000; the highest suffix not above the server wins.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from psycopg import sql

_VARIANT = re.compile(r"^(?P<base>.+?)(?:_post_(?P<num>\d{6}))?\.sql$")


@functools.cache
def sql_dir() -> Path:
    """The installed `epstats_cli/sql`, or the checkout's top-level `sql/` (editable installs)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "sql", here.parent / "sql"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the epstats SQL files are missing from this installation")


@functools.cache
def _variants(name: str) -> list[tuple[int, Path]]:
    group, _, base = name.rpartition("/")
    folder = sql_dir() / group
    found: list[tuple[int, Path]] = []
    for path in folder.glob(f"{base}*.sql"):
        match = _VARIANT.match(path.name)
        if match and match.group("base") == base:
            found.append((int(match.group("num") or 0), path))
    if not found:
        raise FileNotFoundError(f"no SQL file named {name!r} in {folder}")
    return sorted(found)


def path_for(name: str, server_version_num: int) -> Path:
    """The file that serves `name` on a server of this version."""
    chosen = None
    for num, path in _variants(name):
        if num <= server_version_num:
            chosen = path
    if chosen is None:
        raise FileNotFoundError(f"no variant of {name!r} for server version {server_version_num}")
    return chosen


@functools.cache
def _text(path: Path) -> str:
    # Whole-line comments document the file; they are not sent (nor shown by --dry-run).
    lines = [
        ln
        for ln in path.read_text(encoding="utf-8").splitlines()
        if not ln.lstrip().startswith("--")
    ]
    return "\n".join(lines).strip().rstrip(";")


def get(name: str, server_version_num: int = 999999, **identifiers: Any) -> sql.Composed:
    """The statement `name` for this server, with `{placeholders}` filled.

    A str value becomes an Identifier, a tuple of str a qualified Identifier, and a
    psycopg.sql.Composable goes in as it is.
    """
    text = _text(path_for(name, server_version_num))
    filled: dict[str, sql.Composable] = {}
    for key, value in identifiers.items():
        if isinstance(value, sql.Composable):
            filled[key] = value
        elif isinstance(value, tuple):
            filled[key] = sql.Identifier(*value)
        else:
            filled[key] = sql.Identifier(str(value))
    return sql.SQL(text).format(**filled)


def all_names() -> list[str]:
    """Every statement name (without variant suffixes), for tests."""
    names = set()
    for path in sql_dir().rglob("*.sql"):
        match = _VARIANT.match(path.name)
        assert match
        names.add(f"{path.parent.relative_to(sql_dir()).as_posix()}/{match.group('base')}")
    return sorted(names)
