"""Every file in sql/ is loaded by some code path, by a literal name (no f-string names)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from epstats_cli import queries

PACKAGE = Path(__file__).resolve().parent.parent / "epstats_cli"
NAME = re.compile(r"^[a-z_]+/[a-z0-9_]+$")


def _literal_names() -> dict[str, list[str]]:
    """Every string constant in the package that looks like a statement name, with where."""
    found: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and NAME.match(node.value)
            ):
                where = f"{path.relative_to(PACKAGE)}:{node.lineno}"
                found.setdefault(node.value, []).append(where)
    return found


def test_every_sql_file_is_used() -> None:
    used = _literal_names()
    unused = [name for name in queries.all_names() if name not in used]
    assert not unused, f"SQL files no code loads: {unused}"


def test_every_name_in_the_code_has_a_file() -> None:
    names = set(queries.all_names())
    groups = {n.split("/")[0] for n in names}
    missing = {
        name: where
        for name, where in _literal_names().items()
        if name.split("/")[0] in groups and name not in names
    }
    assert not missing, f"statement names without a file: {missing}"


def test_no_statement_name_is_built_at_run_time() -> None:
    """A name made with an f-string hides which files are used."""
    groups = {n.split("/")[0] for n in queries.all_names()}
    built = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr) and node.values:
                head = node.values[0]
                if (
                    isinstance(head, ast.Constant)
                    and isinstance(head.value, str)
                    and head.value.split("/")[0] in groups
                    and "/" in head.value
                ):
                    built.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not built, f"statement names built with f-strings: {built}"
