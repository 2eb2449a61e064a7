from __future__ import annotations

from typing import Any


def test_init_and_status(dsn: str, cli: Any) -> None:
    r = cli("--dsn", dsn, "init", "--with-requests-table")
    assert r.code == 0, r.stderr
    r = cli("--dsn", dsn, "status")
    assert r.code == 0, r.stderr
    print(r.stdout)
