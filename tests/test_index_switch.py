"""What an interrupted `indexes apply --switch-method` leaves under its temporary names
(trial 17b, defects 2 and 3): the old index after the swap, the new one a killed client's
CREATE INDEX finished on the server. Said by status and check, dropped by apply and maintain's
cleanup when not needed, swapped in by the next switch when it is what that switch builds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import run_cli
from tests.test_brin import LATE, ORDERED, _load, _ts_index

pytestmark = pytest.mark.one_version  # heavy: the first server version only

OLD, NEW = "idx_requests_timestamp_old", "idx_requests_timestamp_switch"


def _names(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute("SELECT relname FROM pg_class WHERE relkind = 'i'").fetchall()
    return {r[0] for r in rows}


def _json(dsn: str, *args: str, cfg: str | None = None) -> Any:
    r = run_cli(*(("-c", cfg) if cfg else ()), "--dsn", dsn, "--format", "json", *args)
    assert r.code in (0, 1), r.stderr
    return json.loads(r.stdout)


def _oid(conn: psycopg.Connection[Any], name: str) -> int:
    row = conn.execute("SELECT %s::regclass::oid::bigint", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def test_old_index_after_the_swap_is_flagged_and_dropped(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    _load(dsn, conn, ORDERED)
    assert run_cli("--dsn", dsn, "indexes", "apply").code == 0
    assert "USING brin" in _ts_index(conn)
    # a switch btree -> BRIN stopped after the swap: the old btree is left
    conn.execute(f'CREATE INDEX {OLD} ON requests ("timestamp")')
    status = _json(dsn, "indexes", "status")
    assert any(
        w.startswith(f"{OLD} (btree") and "interrupted switch" in w for w in status["warnings"]
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text("")
    checks = {c["name"]: c for c in _json(dsn, "check", cfg=str(cfg))["checks"]}
    assert OLD in checks["redundant_indexes"]["summary"], checks["redundant_indexes"]
    # plain apply drops it (it said "nothing to do")
    tasks = _json(dsn, "indexes", "apply")["tasks"]
    assert [(t["task"], t["target"], t["status"]) for t in tasks] == [("drop_leftover", OLD, "ok")]
    assert OLD not in _names(conn)
    # maintain's cleanup: due at once, drops it
    conn.execute(f'CREATE INDEX {OLD} ON requests ("timestamp")')
    tasks = {t["target"]: t for t in _json(dsn, "maintain", "--only", "cleanup")["tasks"]}
    assert f"public.{OLD}" in tasks["leftovers of public.requests"]["reason"], tasks
    assert tasks[f"public.{OLD}"]["status"] == "ok"
    assert OLD not in _names(conn)
    assert "USING brin" in _ts_index(conn)


def test_finished_switch_build_is_swapped_in_without_building_again(
    dsn: str, conn: psycopg.Connection[Any]
) -> None:
    _load(dsn, conn, ORDERED)
    assert run_cli("--dsn", dsn, "indexes", "apply").code == 0
    assert "USING brin" in _ts_index(conn)
    # rows start arriving late: a btree is wanted; the switch's client was killed during the
    # build, which the server finished
    conn.execute("TRUNCATE requests")
    conn.execute(LATE)
    conn.execute("ANALYZE requests")
    conn.execute(f'CREATE INDEX {NEW} ON requests USING btree ("timestamp")')
    built = _oid(conn, NEW)
    status = _json(dsn, "indexes", "status")
    assert any(w.startswith(f"{NEW} (btree") and "swaps it in" in w for w in status["warnings"])
    tasks = _json(dsn, "indexes", "apply", "--switch-method")["tasks"]
    assert [(t["task"], t["status"]) for t in tasks] == [("switch", "ok")] * 2, tasks
    assert not any("CREATE INDEX" in t["sql"] for t in tasks)
    assert "USING btree" in _ts_index(conn)
    assert _oid(conn, "idx_requests_timestamp") == built
    assert not {OLD, NEW} & _names(conn)


def test_unneeded_switch_build_is_dropped(dsn: str, conn: psycopg.Connection[Any]) -> None:
    _load(dsn, conn, ORDERED)
    assert run_cli("--dsn", dsn, "indexes", "apply").code == 0
    # the rows are in time order: the BRIN stays, the finished btree is not needed
    conn.execute(f'CREATE INDEX {NEW} ON requests USING btree ("timestamp")')
    status = _json(dsn, "indexes", "status")
    assert any(w.startswith(f"{NEW} (btree") and "not needed" in w for w in status["warnings"])
    tasks = {
        t["target"]: t
        for t in _json(dsn, "maintain", "--only", "cleanup", "--force", "cleanup")["tasks"]
    }
    assert tasks[f"public.{NEW}"]["status"] == "ok", tasks
    assert NEW not in _names(conn)
    # and plain apply drops one too
    conn.execute(f'CREATE INDEX {NEW} ON requests USING btree ("timestamp")')
    tasks = _json(dsn, "indexes", "apply")["tasks"]
    assert [(t["task"], t["target"], t["status"]) for t in tasks] == [("drop_leftover", NEW, "ok")]
    assert "USING brin" in _ts_index(conn)
