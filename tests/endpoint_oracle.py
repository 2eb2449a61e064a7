"""The documented normalization rule in plain Python: the oracle the server's SQL
(epstats_cli/endpoints.py, sql/fragments/endpoint_*.sql) is compared with.

Written independently of the SQL: segments are split and classified by hand, not by one
regular expression. Rules are PostgreSQL regular expressions; the oracle runs them with
Python's `re`, so tests use rules in the syntax both share, with regexp_replace's replacement
escapes (\\1..\\9, \\&, \\\\) translated.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

HEX = frozenset("0123456789abcdefABCDEF")
DIGITS = frozenset("0123456789")
LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
TOKEN_CHARS = DIGITS | LETTERS | frozenset("_-")


def is_uuid(s: str) -> bool:
    parts = s.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(set(p) <= HEX for p in parts)


def letter_digit_pairs(s: str) -> int:
    """How many times a letter is directly followed by a digit."""
    return sum(1 for a, b in itertools.pairwise(s) if a in LETTERS and b in DIGITS)


def longest_lowercase_run(s: str) -> int:
    best = run = 0
    for c in s:
        run = run + 1 if c in LOWER else 0
        best = max(best, run)
    return best


def is_token(s: str) -> bool:
    """16+ of A-Z a-z 0-9 _ -, a digit and a letter, and not words: a letter followed by a
    digit at least twice, or no run of more than 5 lowercase letters."""
    if len(s) < 16 or not set(s) <= TOKEN_CHARS:
        return False
    if not (set(s) & DIGITS and set(s) & LETTERS):
        return False
    return letter_digit_pairs(s) >= 2 or longest_lowercase_run(s) <= 5


def is_identifier(segment: str) -> bool:
    """A path segment that `auto` replaces with {id}."""
    if not segment:
        return False
    if set(segment) <= DIGITS:
        return True
    if is_uuid(segment):
        return True
    if len(segment) >= 16 and set(segment) <= HEX:
        return True
    return is_token(segment)


def _replacement(pg: str) -> str:
    """regexp_replace's replacement string as Python's re.sub template."""
    out = []
    i = 0
    while i < len(pg):
        c = pg[i]
        if c == "\\" and i + 1 < len(pg):
            n = pg[i + 1]
            if n.isdigit() and n != "0":
                out.append(f"\\g<{n}>")
            elif n == "&":
                out.append("\\g<0>")
            else:
                out.append(n.replace("\\", "\\\\"))
            i += 2
            continue
        out.append("\\\\" if c == "\\" else c)
        i += 1
    return "".join(out)


def normalize(
    raw: str | None, endpoint_ids: str = "auto", rules: Sequence[tuple[str, str]] = ()
) -> str | None:
    """The documented rule: with auto, the query string goes, the rules apply in order (every
    match), then identifiers become {id}; with off, the rules alone, on the raw endpoint."""
    if raw is None:
        return None
    text = raw.split("?", 1)[0] if endpoint_ids == "auto" else raw
    for pattern, replace in rules:
        text = re.sub(pattern, _replacement(replace), text)
    if endpoint_ids == "auto":
        text = "/".join("{id}" if is_identifier(s) else s for s in text.split("/"))
    return text


def status_class(status: int | None) -> str:
    """The rollup's status class of a status: 2xx..5xx, else other (NULL included)."""
    if status is None or not 200 <= status < 600:
        return "status_other"
    return f"status_{status // 100}xx"
