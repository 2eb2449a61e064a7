"""Endpoint normalization (issue 18): the configuration keys, the documented rule (the Python
oracle in tests/endpoint_oracle.py) against the server's SQL on PostgreSQL 15 and 18, the
mapping table (fill, join, fallback), and `epstats endpoints`."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import string
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from epstats_cli import endpoint_stats, endpoints
from epstats_cli.config import Config, EndpointRule, SourceConfig, as_dict, build
from epstats_cli.db import Session, connect
from epstats_cli.endpoints import Normalization
from epstats_cli.errors import ConfigError
from tests import endpoint_oracle as oracle
from tests.conftest import run_cli

# What the README shows; each a path and what `auto` makes of it.
DOCUMENTED = [
    ("/users/48213", "/users/{id}"),
    ("/users/48213/orders/7?page=2", "/users/{id}/orders/{id}"),
    ("/orders/6f1c2d3e-9a4b-4c1d-8e2f-0123456789ab/items", "/orders/{id}/items"),
    ("/blobs/5F1C2D3E9A4B4C1D", "/blobs/{id}"),
    ("/blobs/5f1c2d3e9a4b4c1", "/blobs/5f1c2d3e9a4b4c1"),  # 15 hex digits: too short
    ("/customers/cus_NffrFeUfNV2Hib", "/customers/{id}"),
    ("/events/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/events/{id}"),
    ("/v1/api/healthz", "/v1/api/healthz"),
    ("/users/alice", "/users/alice"),
    ("/v1beta1/oauth2/callback", "/v1beta1/oauth2/callback"),
    ("/aws/CreateOauth2CredentialProvider", "/aws/CreateOauth2CredentialProvider"),
    ("/dates/2024-01-15", "/dates/2024-01-15"),
    ("/files/report.123.pdf", "/files/report.123.pdf"),
]

TRICKY = [
    "",
    "/",
    "//",
    "12345",
    "12345/orders",
    "/1/2/3",
    "/users/0",
    "/users/00123/",
    "/users//42//",
    "/users/42?",
    "/users/42?x=1&y=/users/7",
    "?only=query",
    "/users/42#frag",
    "/users/-42",
    "/users/+42",
    "/users/4.2",
    "/users/１２３",  # fullwidth digits are not ASCII digits
    "/users/١٢٣",
    "/o/6F1C2D3E-9A4B-4C1D-8E2F-0123456789AB",
    "/o/6f1c2d3e9a4b4c1d8e2f0123456789ab",
    "/o/6f1c2d3e-9a4b-4c1d-8e2f-0123456789a",
    "/o/{6f1c2d3e-9a4b-4c1d-8e2f-0123456789ab}",
    "/o/deadbeefcafebabe",
    "/o/deadbeefcafebab",
    "/o/DEADBEEFCAFEBABEF00D",
    "/t/abcdefghijklmno1",
    "/t/abcdefghijklmnop1",
    "/t/abcdefghijklmnopqrstuvwxyz12",
    "/t/abcde1fghij2klmnopqrst",
    "/t/Ab1Cd2Ef3Gh4Ij5K",
    "/t/ab-cd_ef-gh_ij-k1",
    "/t/top-10-tips-for-2024",
    "/t/windows-11-release-notes",
    "/t/searchAds360Fields",
    "/t/displayVideo360AdvertiserLinks",
    "/t/dataflowEndpointGroupV2",
    "/t/x509-certificates-a1",
    "/t/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc123",
    "/t/ZXhhbXBsZS10b2tlbi0xMjM0NTY3ODkw",
    "/t/aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=",
    "/t/%2Fencoded%2F1234567890abcdef",
    "/é/12/ü",
    "/users/{id}",
    "/users/{id}/42",
    "users/42",
    "/api/v2/users/42/avatar.png",
    "/" + "a1b2" * 300,
    "/k/" + "x" * 5000 + "/7",
    "\t/ctrl/\x1b[31m/12",
]


def _random_paths(n: int, seed: int = 18) -> list[str]:
    rnd = random.Random(seed)
    b62 = string.ascii_letters + string.digits
    words = ["users", "orders", "v1", "v2beta1", "api", "items", "healthz", "oauth2", "s3"]
    makers: list[Callable[[], str]] = [
        lambda: rnd.choice(words),
        lambda: str(rnd.randrange(10 ** rnd.randint(1, 12))),
        lambda: "".join(rnd.choice("0123456789abcdef") for _ in range(rnd.randint(12, 40))),
        lambda: "".join(rnd.choice(b62 + "-_") for _ in range(rnd.randint(10, 30))),
        lambda: "".join(rnd.choice(string.ascii_lowercase + "-") for _ in range(20)) + "7",
        lambda: f"{rnd.getrandbits(128):032x}"[:8] + "-" + "-".join(["abcd"] * 3) + "-" + "0" * 12,
        lambda: "",
    ]
    out = []
    for _ in range(n):
        segs = [rnd.choice(makers)() for _ in range(rnd.randint(1, 5))]
        query = "?q=" + rnd.choice(b62) * 3 if rnd.random() < 0.2 else ""
        out.append("/" + "/".join(segs) + query)
    return out


RULES = (
    EndpointRule("^/v1/users/[^/]+", "/v1/users/{name}"),
    EndpointRule("/(teams)/([a-z]+)/", r"/\1/{team}/"),
    EndpointRule("^/legacy(/.*)?$", r"/old\1"),
)
NORMALIZATIONS = [
    Normalization("auto"),
    Normalization("auto", RULES),
    Normalization("off", RULES),
    Normalization("off"),
]
RULE_PATHS = [
    "/v1/users/alice",
    "/v1/users/alice/orders/12",
    "/v1/users/48213",
    "/teams/red/members/7",
    "/teams/Red/members/7",
    "/legacy",
    "/legacy/1234567",
    "/v1/users/alice?x=/v1/users/bob",
]


def _expected(norm: Normalization, raws: list[str]) -> list[str | None]:
    rules = [(r.pattern, r.replace) for r in norm.rules]
    return [oracle.normalize(r, norm.endpoint_ids, rules) for r in raws]


@pytest.fixture
def session(dsn: str) -> Any:
    assert run_cli("--dsn", dsn, "-q", "init", "--with-requests-table").code == 0
    s = connect(Config(), dsn)
    try:
        yield s
    finally:
        s.conn.close()


# --- the configuration and the rule, without a server ----------------------------------------


def test_configuration_keys() -> None:
    cfg = build(
        {
            "source": {
                "endpoint_ids": "auto",
                "endpoint_rules": [{"pattern": "^/v1/users/[^/]+", "replace": "/v1/users/{name}"}],
            }
        }
    )
    assert cfg.source.endpoint_ids == "auto"
    assert cfg.source.endpoint_rules == (EndpointRule("^/v1/users/[^/]+", "/v1/users/{name}"),)
    shown = as_dict(cfg)["source"]
    assert shown["endpoint_rules"] == [
        {"pattern": "^/v1/users/[^/]+", "replace": "/v1/users/{name}"}
    ]
    assert Config().source.endpoint_ids == "off" and Config().source.endpoint_rules == ()
    assert build({"source": {"endpoint_rules": []}}).source.endpoint_rules == ()
    # YAML reads a bare `off` as false
    assert build(yaml.safe_load("source: {endpoint_ids: off}")).source.endpoint_ids == "off"
    with pytest.raises(ConfigError, match=r"source\.endpoint_ids: true is not one of off, auto"):
        build(yaml.safe_load("source: {endpoint_ids: on}"))
    with pytest.raises(ConfigError) as err:
        build(
            {
                "source": {
                    "endpoint_ids": "on",
                    "endpoint_rules": [
                        {"pattern": "", "replace": "x"},
                        {"pattern": "a"},
                        {"pattern": "b", "replace": 3},
                        {"pattern": "c", "replace": "", "flags": "i"},
                        {"pattern": "d", "replace": ""},
                        {"pattern": "d", "replace": "e"},
                    ],
                }
            }
        )
    text = str(err.value)
    for expected in (
        "source.endpoint_ids: 'on' is not one of off, auto",
        "source.endpoint_rules[0].pattern: '' is not a non-empty string",
        "source.endpoint_rules[1].replace: missing (every rule needs a pattern and a replace)",
        "source.endpoint_rules[2].replace: 3 is not a string",
        "source.endpoint_rules[3].flags: unknown key",
        "source.endpoint_rules[5].pattern: 'd' is listed twice",
    ):
        assert expected in text
    with pytest.raises(ConfigError, match="is not a list of"):
        build({"source": {"endpoint_rules": {"pattern": "a", "replace": "b"}}})


@pytest.mark.parametrize(("raw", "normalized"), DOCUMENTED)
def test_the_documented_examples(raw: str, normalized: str) -> None:
    assert oracle.normalize(raw) == normalized


def test_rule_id_follows_the_rule() -> None:
    ids = {n.rule_id for n in NORMALIZATIONS}
    assert len(ids) == len(NORMALIZATIONS)
    assert Normalization("auto").rule_id == Normalization("auto").rule_id < 2**60
    assert Normalization.recorded(Normalization("auto", RULES).parameters()) == Normalization(
        "auto", RULES
    )
    assert Normalization.recorded({}) == Normalization("off")
    assert [n.describe() for n in NORMALIZATIONS] == [
        "auto",
        "auto after 3 rules",
        "3 rules",
        "off",
    ]
    assert Normalization.of(Config(source=SourceConfig(endpoint_ids="auto"))).active


def test_sample_percent() -> None:
    assert endpoint_stats.sample_percent(None, 100) is None
    assert endpoint_stats.sample_percent(100, 100) is None
    assert endpoint_stats.sample_percent(1000, 100) == pytest.approx(10.0)


# --- the server's SQL equals the oracle ----------------------------------------------------------


@pytest.mark.parametrize("norm", NORMALIZATIONS, ids=lambda n: n.describe().replace(" ", "_"))
def test_the_server_normalizes_as_documented(session: Session, norm: Normalization) -> None:
    raws = [r for r, _ in DOCUMENTED] + TRICKY + RULE_PATHS + _random_paths(3000)
    got = endpoints.normalize(session, norm, raws)
    want = _expected(norm, raws)
    diff = [(r, g, w) for r, g, w in zip(raws, got, want, strict=True) if g != w]
    assert not diff, diff[:10]


def test_rules_apply_before_auto(session: Session) -> None:
    norm = Normalization("auto", (EndpointRule("^/v1/users/[^/]+", "/v1/users/{name}"),))
    got = endpoints.normalize(session, norm, ["/v1/users/alice/orders/12", "/v1/users/42"])
    # the rule takes /v1/users/42 before auto could make it /v1/users/{id}
    assert got == ["/v1/users/{name}/orders/{id}", "/v1/users/{name}"]


def test_a_pattern_the_server_refuses_is_a_configuration_error(
    session: Session, dsn: str, tmp_path: Path
) -> None:
    norm = Normalization("auto", (EndpointRule("^/ok/", "/"), EndpointRule("(/a", "x")))
    with pytest.raises(ConfigError) as err:
        endpoints.check_rules(session, norm)
    assert "source.endpoint_rules[1].pattern: '(/a' is refused by the server" in str(err.value)
    assert "parentheses" in str(err.value)
    endpoints.check_rules(session, Normalization("auto", RULES))  # fine ones pass
    cfg = tmp_path / "c.yaml"
    cfg.write_text("source: {endpoint_rules: [{pattern: '[a', replace: ''}]}\n")
    r = run_cli("-c", str(cfg), "--dsn", dsn, "endpoints")
    assert r.code == 3 and "source.endpoint_rules[0].pattern" in r.stderr
    assert "Traceback" not in r.stderr


# --- the mapping table ---------------------------------------------------------------------------


def _insert(conn: psycopg.Connection[Any], rows: list[tuple[str, dt.datetime]]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO requests (endpoint, timestamp, response_time, status) "
            "VALUES (%s, %s, 1, 200)",
            rows,
        )


def _by_endpoint(session: Session, norm: Normalization, via_map: bool) -> dict[str, int]:
    if via_map:
        j = endpoints.joined(session, norm)
        query = sql.SQL("SELECT {e} AS endpoint, count(*) FROM requests {j} GROUP BY 1").format(
            e=j.endpoint, j=j.join
        )
    else:
        e = endpoints.expression(session, norm, sql.SQL("endpoint"))
        query = sql.SQL("SELECT {e} AS endpoint, count(*) FROM requests GROUP BY 1").format(e=e)
    return {r[0]: r[1] for r in session.conn.execute(query).fetchall()}


def _fill(session: Session, norm: Normalization, where: sql.Composable) -> int:
    """A fill as a build or refresh runs it (its lock first, in one transaction): keys added."""
    conn = session.conn
    with conn.transaction():
        assert conn.execute(*endpoints.fill_lock(session, norm)).fetchone() == (True,)
        return conn.execute(*endpoints.fill(session, norm, where)).rowcount


def test_the_map_is_filled_once_and_joined(session: Session) -> None:
    conn = session.conn
    now = dt.datetime.now(dt.timezone.utc)
    raws = TRICKY[1:] + RULE_PATHS + _random_paths(500, seed=7)
    _insert(conn, [(r, now - dt.timedelta(minutes=i % 90)) for i, r in enumerate(raws * 2)])
    norm = Normalization("auto", RULES)
    want = Counter(_expected(norm, raws * 2))
    # no mapping yet: every row is normalized as it is read, and the numbers are the oracle's
    assert _by_endpoint(session, norm, via_map=True) == want
    query, params = endpoints.fill(session, norm, sql.SQL("true"))
    assert conn.execute(query, params).rowcount == 0  # without the fill lock: nothing
    added = _fill(session, norm, sql.SQL("true"))
    keys = set(raws)  # the key is the endpoint as stored
    short = {k for k in keys if len(k.encode()) <= endpoints.LONGEST_KEY}
    assert added == len(short) and len(short) < len(keys)  # the 5000-byte path is no key
    mapped = dict(
        conn.execute(
            "SELECT raw, endpoint FROM epstats.endpoint_map WHERE rule = %s", (norm.rule_id,)
        ).fetchall()
    )
    assert mapped == dict(zip(short, _expected(norm, list(short)), strict=True))
    assert _fill(session, norm, sql.SQL("true")) == 0  # nothing left to map
    conn.execute(endpoints.analyze_map(session))
    stats = "SELECT reltuples FROM pg_class WHERE oid = 'epstats.endpoint_map'::regclass"
    assert conn.execute(stats).fetchone() == (len(short),)
    assert _by_endpoint(session, norm, via_map=True) == want
    assert _by_endpoint(session, norm, via_map=False) == want
    # a mapping the map lacks is computed as it is read
    conn.execute("DELETE FROM epstats.endpoint_map WHERE raw LIKE '/v1/%'")
    assert _by_endpoint(session, norm, via_map=True) == want
    # another rule has mappings of its own; the first rule's are never read for it
    auto = Normalization("auto")
    # auto alone maps only what the long expression would normalize (a run of 16 token chars)
    costly = {k for k in short if re.search("[A-Za-z0-9_-]{16}", k)}
    assert 0 < len(costly) < len(short)
    assert _fill(session, auto, sql.SQL("true")) == len(costly)
    assert _by_endpoint(session, auto, via_map=True) == Counter(_expected(auto, raws * 2))
    # with rules alone, as with auto, the key is the endpoint as stored
    rules_only = Normalization("off", RULES)
    assert _fill(session, rules_only, sql.SQL("true")) == len(
        {r for r in raws if len(r.encode()) <= endpoints.LONGEST_KEY}
    )
    assert _by_endpoint(session, rules_only, via_map=True) == Counter(
        _expected(rules_only, raws * 2)
    )
    # only rows that satisfy the condition are mapped
    conn.execute("TRUNCATE epstats.endpoint_map")
    recent = sql.SQL("timestamp >= now() - interval '10 minutes'")
    in_window = {r for i, r in enumerate(raws * 2) if i % 90 <= 9} & short
    assert _fill(session, norm, recent) == len(in_window)
    # pruning keeps the rules named
    _fill(session, auto, sql.SQL("true"))
    conn.execute(*endpoints.prune(session, [auto.rule_id]))
    rules = {r[0] for r in conn.execute("SELECT DISTINCT rule FROM epstats.endpoint_map")}
    assert rules == {auto.rule_id}


def test_the_planner_settings_hold_for_the_joining_transaction(session: Session) -> None:
    conn = session.conn
    now = dt.datetime.now(dt.timezone.utc)
    raws = _random_paths(300, seed=11)
    _insert(conn, [(r, now) for r in raws])
    norm = Normalization("auto")
    _fill(session, norm, sql.SQL("true"))
    with conn.transaction():
        for setting in endpoints.planner_settings(session):
            conn.execute(setting)
        assert conn.execute("SHOW enable_memoize").fetchone() == ("off",)
        assert conn.execute("SHOW enable_sort").fetchone() == ("off",)  # a hash aggregate
        assert _by_endpoint(session, norm, via_map=True) == Counter(_expected(norm, raws))
    assert conn.execute("SHOW enable_memoize").fetchone() == ("on",)  # LOCAL: that one only
    assert conn.execute("SHOW enable_sort").fetchone() == ("on",)


def test_one_fill_of_a_rule_at_a_time(session: Session, dsn: str) -> None:
    conn = session.conn
    _insert(conn, [(r, dt.datetime.now(dt.timezone.utc)) for r in _random_paths(200, seed=5)])
    norm, other = Normalization("auto"), Normalization("auto", RULES)
    holder = psycopg.connect(dsn, autocommit=True)  # another fill of the rule, running
    with holder, holder.transaction():
        assert holder.execute(*endpoints.fill_lock(session, norm)).fetchone() == (True,)
        with conn.transaction():  # never waited for: this fill maps nothing
            assert conn.execute(*endpoints.fill_lock(session, norm)).fetchone() == (False,)
            assert conn.execute(*endpoints.fill(session, norm, sql.SQL("true"))).rowcount == 0
        assert _fill(session, other, sql.SQL("true")) > 0  # another rule's fill runs
    assert _fill(session, norm, sql.SQL("true")) > 0  # once that one has finished


def test_the_fill_tests_each_distinct_endpoint_once(session: Session) -> None:
    """The test of which endpoints are worth a mapping (`auto` alone: a regular expression)
    runs on the distinct endpoints, above the aggregate, never in the scan of the rows."""
    query, params = endpoints.fill(session, Normalization("auto"), sql.SQL("true"))
    plan = session.conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) ") + query, params).fetchone()
    assert plan is not None
    scans: list[dict[str, Any]] = []
    regex_above = False

    def walk(node: dict[str, Any]) -> None:
        nonlocal regex_above
        if node.get("Relation Name") == "requests":
            scans.append(node)
        elif "~" in node.get("Filter", ""):
            regex_above = True
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0][0]["Plan"])
    assert scans and all("~" not in node.get("Filter", "") for node in scans), scans
    assert regex_above


def test_off_reads_endpoints_as_stored(session: Session) -> None:
    off = Normalization("off")
    j = endpoints.joined(session, off)
    assert j.join.as_string(session.conn) == ""
    assert endpoints.normalize(session, off, ["/users/1?x=2"]) == ["/users/1?x=2"]


def test_init_creates_the_map(dsn: str) -> None:
    assert run_cli("--dsn", dsn, "init").code == 0
    with psycopg.connect(dsn) as c:
        found = c.execute("SELECT to_regclass('epstats.endpoint_map')").fetchone()
    assert found is not None and found[0] is not None


# --- epstats endpoints ---------------------------------------------------------------------------

NY = zoneinfo.ZoneInfo("America/New_York")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _table(dsn: str, tmp_path: Path, yaml: str = "") -> tuple[str, list[tuple[str, dt.datetime]]]:
    """A requests table of raw paths over the last days (and older rows out of the window)."""
    assert run_cli("--dsn", dsn, "-q", "init", "--with-requests-table").code == 0
    rnd = random.Random(3)
    with psycopg.connect(dsn, autocommit=True) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        rows = []
        for i in range(3000):
            kind = i % 6
            if kind == 0:
                raw = f"/users/{rnd.randrange(400)}"
            elif kind == 1:
                raw = f"/orders/{rnd.getrandbits(128):032x}/items?page={i % 3}"
            elif kind == 2:
                u = f"{rnd.getrandbits(128):032x}"
                raw = f"/o/{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"
            elif kind == 3:
                raw = "/tok/" + "".join(rnd.choice(CROCKFORD) for _ in range(26))  # ULID
            else:
                raw = rnd.choice(["/healthz", "/api/v1/search?q=x", "/api/v1/search", "/login"])
            rows.append((raw, now - dt.timedelta(minutes=rnd.randrange(60 * 24 * 6))))
        _insert(conn, rows)
        conn.execute("ANALYZE requests")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("source: {timezone: America/New_York}\nreports: {days: 3}\n" + yaml)
    return str(cfg), rows


def _oracle_report(
    rows: list[tuple[str, dt.datetime]], doc: dict[str, Any], norm: Normalization
) -> dict[str, Any]:
    start = dt.datetime.fromisoformat(doc["window"]["from"])
    end = dt.datetime.fromisoformat(doc["window"]["to"])
    rules = [(r.pattern, r.replace) for r in norm.rules]
    raw_days: dict[dt.date, set[str]] = defaultdict(set)
    norm_days: dict[dt.date, set[str | None]] = defaultdict(set)
    requests: Counter[str | None] = Counter()
    variants: dict[str | None, set[str]] = defaultdict(set)
    for raw, ts in rows:
        if not start <= ts < end:
            continue
        day = ts.astimezone(NY).date()
        n = oracle.normalize(raw, norm.endpoint_ids, rules)
        raw_days[day].add(raw)
        norm_days[day].add(n)
        requests[n] += 1
        variants[n].add(raw)
    return {
        "rows": sum(requests.values()),
        "raw": len(set().union(*raw_days.values())),
        "normalized": len(set().union(*norm_days.values())),
        "days": {d.isoformat(): (len(raw_days[d]), len(norm_days[d])) for d in raw_days},
        "top": sorted(
            ((-c, e, len(variants[e])) for e, c in requests.items()), key=lambda t: (t[0], t[1])
        ),
    }


def test_endpoints_command_equals_the_oracle(dsn: str, tmp_path: Path) -> None:
    cfg, rows = _table(dsn, tmp_path)
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "endpoints", "--limit", "5")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    want = _oracle_report(rows, doc, Normalization("auto"))
    assert doc["normalization"]["configured"] is False  # off: shows what auto would make
    assert doc["sample"]["sampled"] is False
    assert doc["rows"] == want["rows"]
    assert doc["cardinality"]["raw"]["distinct"] == want["raw"]
    assert doc["cardinality"]["normalized"]["distinct"] == want["normalized"] == 7
    assert {d["day"]: (d["raw_endpoints"], d["endpoints"]) for d in doc["days"]} == want["days"]
    assert len(doc["days"]) == 3
    got_top = [(-e["requests"], e["endpoint"], e["raw_endpoints"]) for e in doc["endpoints"]]
    assert got_top == want["top"][:5]
    assert sum(e["share"] for e in doc["endpoints"]) <= 1.0
    per_day = [d["raw_endpoints"] for d in doc["days"]]
    assert doc["cardinality"]["raw"]["per_day_max"] == max(per_day)
    assert doc["cardinality"]["raw"]["per_day_avg"] == pytest.approx(sum(per_day) / 3)
    # the table for people says what was read and how it was normalized
    t = run_cli("-c", cfg, "--dsn", dsn, "endpoints", "--days", "3")
    assert t.code == 0, t.stderr
    assert "every row of the window" in t.stdout and "source.endpoint_ids: auto would" in t.stdout
    assert "/users/{id}" in t.stdout and "America/New_York" in t.stdout
    c = run_cli("-c", cfg, "--dsn", dsn, "--format", "csv", "endpoints")
    assert c.code == 0 and c.stdout.startswith("measure,raw,normalized\n")
    assert "endpoint,requests,share,raw_endpoints,example" in c.stdout


def test_endpoints_command_with_rules_configured(dsn: str, tmp_path: Path) -> None:
    rules = "  endpoint_ids: auto\n  endpoint_rules: [{pattern: '^/api/v1/', replace: '/api/'}]\n"
    cfg, rows = _table(dsn, tmp_path)
    Path(cfg).write_text(
        Path(cfg)
        .read_text()
        .replace(
            "source: {timezone: America/New_York}",
            "source:\n  timezone: America/New_York\n" + rules,
        )
    )
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "endpoints")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    norm = Normalization("auto", (EndpointRule("^/api/v1/", "/api/"),))
    want = _oracle_report(rows, doc, norm)
    assert doc["normalization"]["configured"] is True
    assert doc["cardinality"]["normalized"]["distinct"] == want["normalized"]
    assert "/api/search" in [e["endpoint"] for e in doc["endpoints"]]


def test_endpoints_command_samples_a_large_window(dsn: str, tmp_path: Path) -> None:
    cfg, rows = _table(dsn, tmp_path)
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "endpoints", "--sample-rows", "300")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["sample"]["sampled"] is True and doc["sample"]["method"] == "TABLESAMPLE SYSTEM"
    estimated = doc["sample"]["estimated_rows"]
    assert estimated > 300 and doc["sample"]["percent"] == pytest.approx(100 * 300 / estimated)
    want = _oracle_report(rows, doc, Normalization("auto"))
    assert 0 < doc["rows"] < want["rows"]
    assert doc["cardinality"]["raw"]["distinct"] <= want["raw"]
    t = run_cli("-c", cfg, "--dsn", dsn, "endpoints", "--sample-rows", "300")
    assert "a sample (TABLESAMPLE SYSTEM" in t.stdout


def test_endpoints_command_on_an_empty_window(dsn: str) -> None:
    assert run_cli("--dsn", dsn, "-q", "init", "--with-requests-table").code == 0
    r = run_cli("--dsn", dsn, "--format", "json", "endpoints")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["rows"] == 0 and doc["endpoints"] == [] and doc["days"] == []
    assert doc["cardinality"]["raw"] == {"distinct": 0, "per_day_avg": None, "per_day_max": None}
    assert run_cli("--dsn", dsn, "endpoints").code == 0
