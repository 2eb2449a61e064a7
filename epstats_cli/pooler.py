"""Do all statements of one connection run in one server session? Direct, or behind which pooler.

A changing command relies on session state: `SET lock_timeout`, session advisory locks,
prepared statements. Behind a pooler in transaction or statement mode each transaction (or
statement) may run on another server connection, so that state goes missing on the next
statement and leaks to whichever client gets the server connection next. `session_guarantee`
finds out, on a fresh connection, which of these holds:

- ``direct``: the server itself answered, or a proxy that passes the server's own cancel key
  through (a plain TCP proxy), which ties us to that one backend.
- ``session``: a pooler that keeps one server connection per client (PgBouncer session mode).
- ``transaction`` / ``statement``: a pooler that shares server connections between clients.
- ``unknown-pooler``: a pooler whose mode could not be proven. Treated as not keeping the
  session: the safe answer is to refuse changing commands through it (or to use
  ``database.maintenance_dsn``) rather than to guess.

How, and why these probes (measured against PgBouncer 1.18 and PostgreSQL 15; see
tests/test_pooler_probe.py):

1. Who answered (one round trip, on the caller's connection when given: 0.16 ms median
   on localhost, and no other connection; 7 ms when the probe has to open its own).
   libpq's backend pid comes from the BackendKeyData message, which PostgreSQL fills with the
   pid of the backend that serves the connection. A multiplexing pooler must mint its own
   cancel key (a cancel request has to reach whichever server connection the client uses at
   that moment); PgBouncer does so in every mode. So `pg_backend_pid()` differs from it
   through PgBouncer and equals it on a direct connection. Deterministic, read-only.
   Comparing the port we connected to with the server's `port` setting only says "something
   in between", and breaks both ways in production (a pooler on the server's port on another
   host; NAT and Kubernetes services that remap ports), so the ports are reported as
   evidence, never decided on.
2. Ask the pooler (only when one answered): PgBouncer answers `SHOW POOLS` on its console
   database `pgbouncer`; the row of our (database, user) carries `pool_mode`. Authoritative,
   read-only, one extra connection (4-6 ms median in all); needs the role in PgBouncer's
   `admin_users` or `stats_users`.
3. Make the pooler show its hand (only when the console does not answer): a second client
   sends `BEGIN`. PgBouncer in statement mode refuses it ("transaction blocks not allowed in
   statement pooling mode", and drops that client): proof of statement mode. Otherwise the
   second client, now holding a server connection in a transaction, reads its backend pid:
   if it is the backend the first client (still connected, idle) used a moment ago, the pooler
   hands a connected client's server connection to others between transactions: proof of
   transaction mode. If it is another backend, nothing is proven (a session pool always does
   that; so does a busy transaction pool, or one with `server_round_robin`), and the answer is
   ``unknown-pooler``. The second client waits at most `wait` seconds for a server connection
   (a full session pool would keep it waiting until PgBouncer's query_wait_timeout), rolls
   back and disconnects. 5-11 ms median in all.

Nothing is left on any server connection: the probes run no SET, take no lock, prepare no
statement (`prepare_threshold=None`), and every transaction is rolled back.

Candidates measured and rejected:

- The same `pg_backend_pid()` over several statements, or a session advisory lock still
  visible in the next statement: on an idle transaction pool both look exactly like a session
  (5 of 5 statements on one backend, 20 of 20 runs), and the lock then leaked to the next
  client of that server connection. Under load they only sometimes show the truth.
- Two clients comparing backend pids (step 3's transaction proof): conclusive when the
  second client gets the first one's backend (20/20 on an idle LIFO pool, 9-12/30 with four
  other clients hammering it), never a proof of session mode.
- `SHOW VERSION` on an ordinary database goes to PostgreSQL ("unrecognized configuration
  parameter"); PgBouncer answers it only on its console. Rejecting the `options` startup
  parameter ("unsupported startup parameter: options") identifies PgBouncer but not its mode
  and costs a failed login in the logs.
- A multi-statement simple query `BEGIN; SELECT 1; COMMIT` passes even in statement mode (the
  pooler only sees the final ReadyForQuery); a bare `BEGIN` is what it refuses.
- Arming `idle_session_timeout` on our backend and checking whether the client dies with its
  idle backend (it does in session mode, and only there) tells session from transaction mode
  in every run, but in transaction mode the armed backend goes back to the shared pool: under
  load other clients got "terminating connection due to idle-session timeout". Rejected: a
  probe must not hurt other clients.
- Watching from a second client whether the pooler's `server_reset_query` (DISCARD ALL) runs
  on our backend right after we disconnect (it does in session mode, 30/30) is read-only but
  needs the same role or pg_read_all_stats and a non-empty reset query, and would be fooled by
  another client sending DISCARD ALL itself at that moment (some drivers' pools do): not
  deterministic enough to allow changing commands on its word.

Limits: without console rights a session-mode pooler comes out as ``unknown-pooler`` (safe,
not wrong: point `maintenance_dsn` at the server itself, or add the role to `stats_users`),
and so does a transaction pool too busy for step 3 to catch it in the act (the same decision).
A proxy that passed a backend's cancel key through while multiplexing clients would be taken
for a direct connection (its cancel requests would hit other clients' queries). The answer is
for this DSN's database and role: PgBouncer keeps one pool, with its own mode, per (database,
user). Only PgBouncer (1.18) was measured; other poolers are detected by step 1 and end as
``unknown-pooler`` unless they answer step 2 or 3 the same way.
"""

from __future__ import annotations

import re
import select
import time
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import pq
from psycopg.rows import dict_row

from epstats_cli import queries
from epstats_cli.errors import first_line

Kind = Literal["direct", "session", "transaction", "statement", "unknown-pooler"]
SESSION_KEEPING: frozenset[str] = frozenset({"direct", "session"})

# PgBouncer's admin console: a pseudo-database the pooler answers itself.
# Its commands are not SQL to PostgreSQL, so they live here rather than in sql/.
CONSOLE_DATABASE = "pgbouncer"
SHOW_POOLS = "SHOW POOLS"
_MODE_KINDS: dict[str, Kind] = {
    "session": "session",
    "transaction": "transaction",
    "statement": "statement",
}
DEFAULT_WAIT = 5.0


@dataclass(frozen=True)
class PoolerInfo:
    """What answers the connection, and why we think so."""

    kind: Kind
    evidence: str

    @property
    def keeps_session(self) -> bool:
        """True when every statement of a connection runs in one server session."""
        return self.kind in SESSION_KEEPING


class _NoServerConnection(Exception):
    """The pooler kept the probe's client waiting for a server connection past the deadline."""


def session_guarantee(
    dsn: str,
    conn: psycopg.Connection[Any] | None = None,
    *,
    wait: float = DEFAULT_WAIT,
    **connect_kwargs: Any,
) -> PoolerInfo:
    """Find out whether connections to `dsn` keep one server session (see the module doc).

    `conn`, an open autocommit connection to `dsn`, saves a connection: on a direct server the
    answer then costs one round trip on it and nothing else. It is only read from. The
    `connect_kwargs` (password, connect_timeout, application_name, ...) go to every connection
    the probe opens. A failure of `conn` itself propagates as psycopg.Error.
    """
    if conn is not None and not conn.autocommit:
        # A statement would open a transaction on the caller's connection and leave it open.
        raise ValueError("session_guarantee needs an autocommit connection")
    own = None if conn is not None else _connect(dsn, connect_kwargs)
    first = conn if conn is not None else own
    assert first is not None
    try:
        key_pid = int(first.info.backend_pid)
        backend_pid, server_port = _backend(first)
        if key_pid == backend_pid:
            return PoolerInfo(
                "direct",
                f"the cancel key names backend {backend_pid}, the one running our statements: "
                "the server itself answers",
            )
        answered = (
            f"the cancel key carries pid {key_pid} but backend {backend_pid} runs our "
            f"statements, so a pooler answers (port {first.info.port}; the server listens on "
            f"{server_port})"
        )
        # Every probe goes to the very pooler that answered: a DSN with several hosts (or
        # load_balance_hosts) could otherwise send it to another one.
        pinned = {
            **connect_kwargs,
            "host": first.info.host,
            "port": first.info.port,
            "hostaddr": first.info.hostaddr or None,
            "load_balance_hosts": None,
        }
        pinned = {k: v for k, v in pinned.items() if v is not None}
        connect_kwargs = pinned
        mode, said = _console_mode(dsn, connect_kwargs, first.info.dbname, first.info.user)
        if mode is not None:
            return PoolerInfo(mode, f"{answered}; {said}")
        # `first` stays connected: in a session pool its backend must stay pinned to it.
        kind, shown = _second_client(dsn, connect_kwargs, backend_pid, wait)
        return PoolerInfo(kind, f"{answered}; {said}; {shown}")
    finally:
        if own is not None:
            own.close()


def _connect(dsn: str, connect_kwargs: dict[str, Any], **overrides: Any) -> psycopg.Connection[Any]:
    # No prepared statements: through a pooler the next statement may find another backend.
    kwargs = {**connect_kwargs, **overrides, "autocommit": True, "prepare_threshold": None}
    return psycopg.connect(dsn, **kwargs)


def _backend(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    row = conn.execute(queries.get("pooler/backend"), prepare=False).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _console_mode(
    dsn: str, connect_kwargs: dict[str, Any], dbname: str, user: str
) -> tuple[Kind | None, str]:
    """The pool mode PgBouncer's console gives for our (database, user), and what it said."""
    try:
        with _connect(dsn, connect_kwargs, dbname=CONSOLE_DATABASE) as console:
            # The console speaks the simple query protocol only.
            cur = psycopg.ClientCursor(console, row_factory=dict_row)
            rows = cur.execute(SHOW_POOLS).fetchall()
    except psycopg.Error as exc:
        return None, f"its console (database {CONSOLE_DATABASE}) did not answer: {_short(exc)}"
    ours = [r for r in rows if r.get("database") == dbname]
    # A pool's user is the forced user when the pooler logs every client in as one role.
    exact = [r for r in ours if r.get("user") == user] or ours
    modes = {str(r.get("pool_mode")) for r in exact}
    if len(modes) == 1:
        kind = _MODE_KINDS.get(next(iter(modes)))
        if kind is not None:
            return kind, f"its console (SHOW POOLS) gives pool_mode={kind} for {dbname}"
    found = ", ".join(sorted(modes)) or "no pool"
    return None, f"its console (SHOW POOLS) gives {found} for database {dbname}, user {user}"


def _second_client(
    dsn: str, connect_kwargs: dict[str, Any], first_pid: int, wait: float
) -> tuple[Kind, str]:
    """Step 3: a second client opens a transaction; which backend does it get, if any."""
    try:
        probe = _connect(dsn, connect_kwargs)
    except psycopg.Error as exc:
        return "unknown-pooler", f"a second connection failed: {_short(exc)}"
    try:
        try:
            refused = _begin_within(probe, wait)
        except _NoServerConnection:
            return (
                "unknown-pooler",
                f"a second client got no server connection within {wait:g}s (a full pool)",
            )
        if refused is not None:
            if "statement pooling" in refused:
                return "statement", f"it refused a second client's BEGIN: {refused}"
            return "unknown-pooler", f"a second client's BEGIN failed: {refused}"
        second_pid, _ = _backend(probe)
        probe.rollback()
        if second_pid == first_pid:
            return (
                "transaction",
                f"a second client's transaction got backend {first_pid}, which served the "
                "first client a moment before while it stayed connected: server connections "
                "change hands between transactions",
            )
        return (
            "unknown-pooler",
            f"it allows transactions (not statement mode); a second client got backend "
            f"{second_pid}, another one, as a session pool would and a transaction pool may: "
            "the mode is not proven (let this role read the pooler's console, or connect "
            "changing commands to the server itself)",
        )
    finally:
        probe.close()


def _begin_within(conn: psycopg.Connection[Any], wait: float) -> str | None:
    """Send BEGIN on `conn` and wait at most `wait` seconds: None once begun, else the error."""
    pgconn = conn.pgconn
    deadline = time.monotonic() + wait
    pgconn.send_query(b"BEGIN")
    while pgconn.flush() == 1:
        _wait_socket(pgconn, deadline, write=True)
    errors: list[str] = []
    while True:
        try:
            pgconn.consume_input()
        except psycopg.OperationalError as exc:
            errors.append(_short(exc))
        while not pgconn.is_busy():
            result = pgconn.get_result()
            if result is None:
                return _one_reason(errors) if errors else None
            if result.status == pq.ExecStatus.FATAL_ERROR:
                errors.insert(0, result.get_error_message())
        if pgconn.status == pq.ConnStatus.BAD:
            return _one_reason(errors) if errors else "the connection was closed"
        _wait_socket(pgconn, deadline)


def _one_reason(messages: list[str]) -> str:
    """The pooler's own words among libpq's messages about one failure."""
    lines = [_short(m) for m in messages]
    return next((ln for ln in lines if "pooling" in ln), lines[0])


def _short(message: object) -> str:
    line = first_line(message) if isinstance(message, BaseException) else str(message)
    line = line.strip().splitlines()[0] if line.strip() else line
    return re.sub(r"^.*?\b(FATAL|ERROR):\s+", "", line)


def _wait_socket(pgconn: pq.abc.PGconn, deadline: float, write: bool = False) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _NoServerConnection
    sock = pgconn.socket
    select.select([] if write else [sock], [sock] if write else [], [], remaining)
