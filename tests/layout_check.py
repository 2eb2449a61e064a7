"""Reading a table as a person sees it: is a value there whole (on one line, or folded down
its column), does a number stand on one line, does every line fit the width?"""

from __future__ import annotations

import re

from rich.cells import cell_len

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def plain_lines(out: str) -> list[str]:
    """The text of the output, without terminal codes, as lines (a carriage return alone, as
    a progress display redraws, starts a line too)."""
    return ANSI.sub("", out).replace("\r\n", "\n").replace("\r", "\n").splitlines()


def assert_fits(out: str, width: int) -> None:
    """Nothing cut (no ellipsis) and no line wider than the console."""
    assert "…" not in out, out
    for line in plain_lines(out):
        assert cell_len(line) <= width, (width, line)


def _common(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _folded_from(lines: list[str], row: int, col: int, value: str) -> bool:
    """Whether `value` reads from (row, col) downwards: each line at that offset holds its next
    piece (prose wraps at a space, names fold anywhere), the last piece ends its cell."""
    rest = value
    while rest:
        if row >= len(lines):
            return False
        segment = lines[row][col:]
        n = _common(segment, rest)
        if n == 0:
            return False
        if n == len(rest):
            tail = segment[n:]
            return tail == "" or tail[0] == " "
        rest = rest[n:].lstrip(" ")
        row += 1
    return True


def whole(out: str, value: str) -> bool:
    """Whether `value` appears whole: on one line or folded down one column."""
    lines = plain_lines(out)
    head = value.split(" ", 1)[0][:6] or value[:1]  # on the first line, wrapped or not
    for row, line in enumerate(lines):
        col = line.find(head)
        while col != -1:
            if (col == 0 or line[col - 1] == " ") and _folded_from(lines, row, col, value):
                return True
            col = line.find(head, col + 1)
    return False


def assert_whole(out: str, *values: str) -> None:
    for value in values:
        assert whole(out, value), f"{value[:80]!r} is not shown whole in:\n{out}"


def assert_number(out: str, *numbers: str) -> None:
    """Each number stands whole on one line: no digit of it on another line."""
    lines = plain_lines(out)
    for number in numbers:
        pattern = re.compile(r"(?<![\d.,])" + re.escape(number) + r"(?![\d.,])")
        assert any(pattern.search(line) for line in lines), f"{number!r} not whole in:\n{out}"
