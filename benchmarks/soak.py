"""Fault and load soak: a steady writer while every changing command runs and is killed at random.

Usage: python -m benchmarks.soak [--minutes 10] [--rate 200] [--concurrency 2] [--seed 1]
       [--dsn DSN | --version 15] [--vacuum-cost-delay 2ms --vacuum-cost-limit 200]
       [--parallel-workers 0] [--variants c2,c1,c2+cost,c2+par0]

In a fresh database (`epstats_soak`, on the server in --dsn or on a throwaway server of
--version): `generate` --rows rows over --days days, the recommended indices and the rollup.
Then:
1. the writer (its own process and connection, one-row INSERTs with now() timestamps at
   --rate per second, each commit timed) writes from start to end;
2. in turns of about a minute: the writer alone for --baseline-share of the turn, then beside a
   driver that runs random changing commands (`indexes apply`,
   `indexes apply --prune-redundant`, `reindex`, `vacuum`, `analyze`, `view refresh`,
   `view build --replace`, `maintain --force TASKS`, `maintain`), each a
   `python -m epstats_cli` process, at most --concurrency at a time, and kills some of them
   after a random delay: SIGKILL, SIGTERM or SIGINT to the process, or `pg_terminate_backend`
   of its backends (application_name like 'epstats%', found by the client's TCP ports).
   Before some `indexes apply` runs a recommended index is dropped (and a redundant one
   added), so that apply has a real CONCURRENTLY build to do and to be killed in. At the end
   of a turn no command is started, the running ones end (and orphaned backends of killed
   ones), so the next quiet window is the writer alone. Alternating, rather than one baseline
   before the soak, makes the comparison fair on a shared machine: whatever else runs on it
   weighs on both;
3. recovery: after the last turn, two last faults, alone, so that recovery always has something
   to repair (later commands of the soak repair most
   leftovers of earlier faults): a `reindex` whose backend is terminated while it builds its
   `_ccnew` copies, and a `view build --replace` killed (SIGKILL) while its swap waits behind a
   reader. Orphaned server backends of killed clients end, then one plain `epstats maintain`
   (the writer still writing);
4. the verdict: writes committed vs rows present, insert latency (p50/p99/worst) during the
   soak vs the writer alone, invalid indices, `_ccnew`/`_ccold` and `*_epstats_new` leftovers
   before and after that maintain, and `view refresh` + `view verify`; and any signal fault
   whose command exited 0 (not delivered: ignored or blocked; the commands get the default
   dispositions, whatever the soak inherited, so this is a bug of the soak or of epstats).
It prints a table and one JSON line. Goals (issue 13): 0 writes lost; 0 invalid indices or
leftovers after one maintain; worst insert wait <= database.lock_timeout; soak p99 <= 5x the
writer alone; every fault delivered.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from benchmarks.common import machine, server
from benchmarks.soak_faults import ROOT, Driver, LockWaitSampler, epstats_argv, epstats_env
from benchmarks.soak_measure import (
    CpuMeter,
    latency_summary,
    leftovers,
    postmaster_pid,
    wait_for_orphans,
)

DATABASE = "epstats_soak"
RECOMMENDED = ["idx_requests_timestamp", "idx_requests_endpoint_timestamp"]
ENDPOINT = "/soak/writer"
ROLLUP = "endpoint_daily_stats"
P99_GOAL = 5.0


@dataclass(frozen=True)
class Variant:
    """One way to run the commands: how many at a time, and settings of their sessions (set
    on the soak's database, so every new session gets them; None: the server's default)."""

    concurrency: int = 2
    vacuum_cost_delay: str | None = None  # e.g. "2ms"
    vacuum_cost_limit: int | None = None
    parallel_workers: int | None = None  # max_parallel_{maintenance_workers,workers_per_gather}

    @property
    def name(self) -> str:
        parts = [f"c{self.concurrency}"]
        if self.vacuum_cost_delay is not None or self.vacuum_cost_limit is not None:
            parts.append(f"cost={self.vacuum_cost_delay or '-'}/{self.vacuum_cost_limit or '-'}")
        if self.parallel_workers is not None:
            parts.append(f"par{self.parallel_workers}")
        return "+".join(parts)

    def settings(self) -> dict[str, str | None]:
        par = None if self.parallel_workers is None else str(self.parallel_workers)
        return {
            "vacuum_cost_delay": self.vacuum_cost_delay,
            "vacuum_cost_limit": None
            if self.vacuum_cost_limit is None
            else str(self.vacuum_cost_limit),
            "max_parallel_maintenance_workers": par,
            "max_parallel_workers_per_gather": par,
        }


def parse_variant(text: str) -> Variant:
    """`c2`, `c1+cost` (2ms/200, autovacuum's defaults), `c2+cost=5ms/100`, `c2+par0`."""
    v = Variant()
    for token in text.strip().split("+"):
        if token.startswith("c") and token[1:].isdigit():
            v = replace(v, concurrency=int(token[1:]))
        elif token == "cost":
            v = replace(v, vacuum_cost_delay="2ms", vacuum_cost_limit=200)
        elif token.startswith("cost="):
            delay, limit = token[5:].split("/")
            v = replace(v, vacuum_cost_delay=delay, vacuum_cost_limit=int(limit))
        elif token.startswith("par") and token[3:].isdigit():
            v = replace(v, parallel_workers=int(token[3:]))
        else:
            raise ValueError(f"unknown variant part {token!r} (c<N>, cost, cost=D/L, par<N>)")
    return v


@dataclass
class SoakOptions:
    """How long, how hard, and with which server settings the soak runs."""

    minutes: float = 10.0
    rate: float = 200.0
    seed: int = 1
    # The turns beside the commands take these in rotation: several compare them under the
    # same load from other users of the machine.
    variants: tuple[Variant, ...] = (Variant(),)
    rows: int = 1_000_000
    days: int = 30
    baseline_share: float = 0.2
    fault_share: float = 0.4  # share of commands that get a fault
    lock_timeout: str = "5s"  # database.lock_timeout of the commands' configuration
    strategy: str = "materialized"
    drift: bool = True
    writer_lock_timeout_ms: int = 0  # 0: the writer waits for locks as long as they take
    drain_timeout: float = 180.0
    log: Callable[[str], None] = field(default=lambda line: None, repr=False)


# --- the phases -------------------------------------------------------------------------------


class WriterProcess:
    """benchmarks/soak_writer.py in a process of its own; stop() returns its figures."""

    def __init__(self, dsn: str, rate: float, endpoint: str, lock_timeout_ms: int) -> None:
        argv = [
            sys.executable,
            "-m",
            "benchmarks.soak_writer",
            "--rate",
            str(rate),
            "--endpoint",
            endpoint,
            "--lock-timeout-ms",
            str(lock_timeout_ms),
        ]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "SOAK_DSN": dsn},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            self.proc.kill()
            self.proc.communicate()
            raise RuntimeError(f"the writer did not start: {line!r}")

    def kill(self) -> None:
        """On the way out after an error: no process left behind."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()

    def stop(self) -> dict[str, Any]:
        out, _ = self.proc.communicate(b"")
        if self.proc.returncode != 0:
            raise RuntimeError(f"the writer failed (exit {self.proc.returncode})")
        result: dict[str, Any] = json.loads(out)
        return result


def _epstats(config: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        epstats_argv(config, args),
        capture_output=True,
        text=True,
        env=epstats_env(dsn),
        cwd=ROOT,
        check=False,
    )


def _must(run: subprocess.CompletedProcess[str]) -> None:
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(run.args[3:])}: exit {run.returncode}: {run.stderr}")


def prepare(dsn: str, config: Path, opts: SoakOptions) -> None:
    """The requests table with history, the recommended indices, the rollup; the settings."""
    _must(_epstats(config, dsn, "init", "--with-requests-table"))
    rows, days, seed = str(opts.rows), str(opts.days), str(opts.seed)
    _must(_epstats(config, dsn, "generate", "--rows", rows, "--days", days, "--seed", seed))
    _must(_epstats(config, dsn, "indexes", "apply"))
    _must(_epstats(config, dsn, "view", "build"))
    _must(_epstats(config, dsn, "vacuum", "--analyze"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def apply_settings(conn: psycopg.Connection[Any], variant: Variant) -> None:
    """The variant's settings for this database's new sessions: every command is a new one.
    (Not table storage parameters: those set autovacuum's cost limits, never a manual
    VACUUM's.)"""
    db = sql.Identifier(conn.info.dbname)
    for name, value in variant.settings().items():
        if value is None:
            query = sql.SQL("ALTER DATABASE {} RESET {}").format(db, sql.Identifier(name))
        else:
            query = sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                db, sql.Identifier(name), sql.Literal(value)
            )
        conn.execute(query)


def windows(total_s: float, share: float, cycle_s: float = 60.0) -> list[tuple[float, float]]:
    """(writer alone, soak) seconds of each cycle: `share` of every cycle alone, cycles of
    at most `cycle_s`, and at least four of them."""
    n = max(4, round(total_s / cycle_s))
    cycle = total_s / n
    return [(cycle * share, cycle * (1 - share))] * n


def run_soak(dsn: str, opts: SoakOptions, workdir: Path) -> dict[str, Any]:
    """The whole soak in the (fresh, empty) database of `dsn`; every figure, JSON-ready."""
    log = opts.log
    rng = random.Random(opts.seed)
    plan = windows(opts.minutes * 60, opts.baseline_share)
    config = workdir / "soak.yaml"
    config.write_text(
        f"database: {{lock_timeout: {opts.lock_timeout}}}\nview: {{strategy: {opts.strategy}}}\n"
    )
    log(f"loading {opts.rows:,} rows over {opts.days} days, indices, rollup")
    prepare(dsn, config, opts)

    with contextlib.ExitStack() as stack:
        sampler = stack.enter_context(LockWaitSampler(dsn))
        conn = stack.enter_context(psycopg.connect(dsn, autocommit=True))
        postmaster = postmaster_pid(conn)
        writer = WriterProcess(dsn, opts.rate, ENDPOINT, opts.writer_lock_timeout_ms)
        stack.callback(writer.kill)  # a no-op after stop()
        driver = Driver(
            dsn,
            config,
            workdir,
            rng,
            opts.variants[0].concurrency,
            opts.fault_share,
            opts.drift,
            RECOMMENDED,
        )
        stack.callback(driver.close)  # kills what still runs after an error
        # The writer alone and beside the commands in turns, so that whatever else the
        # machine runs (it is shared) weighs on both alike.
        alone_windows: list[tuple[float, float]] = []
        soak_windows: list[tuple[float, float, Variant]] = []
        cpu_alone: list[dict[str, float]] = []
        cpu_soak: list[tuple[Variant, dict[str, float]]] = []
        stopped = 0
        start = time.monotonic()
        for turn, (alone_s, soak_s) in enumerate(plan):
            variant = opts.variants[turn % len(opts.variants)]
            apply_settings(conn, variant)
            driver.concurrency = variant.concurrency
            meter = CpuMeter(postmaster).start()
            began = time.monotonic()
            time.sleep(alone_s)
            alone_windows.append((began, time.monotonic()))
            cpu_alone.append(meter.read())
            meter = CpuMeter(postmaster).start()
            began = time.monotonic()
            driver.run_until(began + soak_s)
            # nothing of epstats may run in the next quiet window
            stopped += driver.drain(opts.drain_timeout)
            wait_for_orphans(conn, 300)
            soak_windows.append((began, time.monotonic(), variant))
            cpu_soak.append((variant, meter.read()))
            t = driver.tally
            log(
                f"  {time.monotonic() - start:4.0f} s: {len(t.commands)} commands, "
                f"{t.injected} faults ({variant.name})"
            )
        faults_end = time.monotonic()
        final_faults = driver.final_faults(ROLLUP)
        log(f"final faults: {'; '.join(final_faults)}")
        driver.close()
        orphan_wait, orphans_left = wait_for_orphans(conn, 300)
        before = leftovers(conn)
        log(f"recovery: one plain maintain (leftovers now: {before})")
        maintain = _epstats(config, dsn, "--format", "json", "maintain")
        written = writer.stop()
        after = leftovers(conn)
        # The writer numbers its rows (response_time = sequence number): distinct numbers
        # present vs INSERTs that returned without an error.
        row = conn.execute(
            "SELECT count(DISTINCT response_time), count(*) FROM requests WHERE endpoint = %s",
            (ENDPOINT,),
        ).fetchone()
        present, rows = (int(row[0]), int(row[1])) if row else (0, 0)
        indexes = [
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'requests'"
            ).fetchall()
        ]
    refresh = _epstats(config, dsn, "view", "refresh")
    verify = _epstats(
        config, dsn, "--format", "json", "view", "verify", "--days", str(opts.days + 2)
    )

    tally = driver.tally
    alone: list[float] = []
    soak: list[float] = []
    by_variant: dict[Variant, list[float]] = {v: [] for v in opts.variants}
    for began, lat in zip(written["began_at"], written["latencies"], strict=True):
        if any(a <= began < b for a, b in alone_windows):
            alone.append(lat)
        elif began < faults_end:
            soak.append(lat)
            owner = next((v for a, b, v in soak_windows if a <= began < b), None)
            if owner is not None:
                by_variant[owner].append(lat)
    lock_timeout_s = _seconds(opts.lock_timeout)
    alone_lat = latency_summary(alone)
    soak_lat = latency_summary(soak)
    whole_lat = latency_summary(written["latencies"])
    worst_s = whole_lat["worst_ms"] / 1000
    try:
        maintain_tasks = [
            {k: t.get(k) for k in ("task", "target", "status", "reason")}
            for t in json.loads(maintain.stdout)["tasks"]
        ]
    except (json.JSONDecodeError, KeyError):
        maintain_tasks = []
    p99_ratio = soak_lat["p99_ms"] / alone_lat["p99_ms"] if alone_lat["p99_ms"] else 0.0
    cpu = {"baseline": _sum_cpu(cpu_alone), "soak": _sum_cpu([c for _, c in cpu_soak])}
    variants = []
    for v in opts.variants:
        mine = [(a, b) for a, b, w in soak_windows if w == v]
        started = [c for c in tally.commands if any(a <= c.started < b for a, b in mine)]
        lat = latency_summary(by_variant[v])
        variants.append(
            {
                "name": v.name,
                "turns": len(mine),
                "commands": len(started),
                "faults": sum(1 for c in started if c.injected),
                "latency": lat,
                "p99_ratio": round(lat["p99_ms"] / alone_lat["p99_ms"], 2)
                if alone_lat["p99_ms"]
                else 0.0,
                "cpu": _sum_cpu([c for w, c in cpu_soak if w == v]),
            }
        )
    result: dict[str, Any] = {
        "options": {k: v for k, v in asdict(opts).items() if k != "log"},
        "seconds": {
            "windows": len(plan),
            "alone": cpu["baseline"]["wall_s"],
            "soak": cpu["soak"]["wall_s"],
        },
        "cpu": cpu,
        "variants": variants,
        # the writer's CPU in each kind of window (it ran throughout, at one rate)
        "writer_cpu_s": round(
            written["cpu_seconds"] * cpu["soak"]["wall_s"] / max(written["seconds"], 1), 1
        ),
        "writer_cpu_alone_s": round(
            written["cpu_seconds"] * cpu["baseline"]["wall_s"] / max(written["seconds"], 1), 1
        ),
        "commands_run": len(tally.commands),
        "exit_codes": tally.exit_codes(),
        "faults_injected": tally.injected,
        "faults": dict(sorted(tally.faults.items())),
        "faults_missed": tally.faults_missed,
        "backends_terminated": tally.backends_terminated,
        "drift": dict(sorted(tally.drift.items())),
        "fault_outcomes": tally.fault_outcomes(),
        "internal_errors": tally.internal_errors(),
        "interpreter_tracebacks": tally.interpreter_tracebacks(),
        "faults_not_delivered": tally.not_delivered(),
        "unfaulted_failures": tally.unfaulted_failures(),
        "interrupted_at_window_end": stopped,
        "final_faults": final_faults,
        "orphan_wait_s": orphan_wait,
        "orphans_left": orphans_left,
        "writes": {
            "committed": written["committed"],
            "present": present,
            "rows": rows,
            "lost": max(0, written["committed"] - present),
            "writer_errors": written["error_count"],
            "errors": written["errors"],
            "max_schedule_lag_s": round(written["max_lag"], 3),
        },
        "latency": {
            "alone": alone_lat,
            "soak": soak_lat,
            "soak_with_recovery": whole_lat,
            "p99_ratio": round(p99_ratio, 2),
        },
        "writer_lock_waits": sampler.summary(),
        "lock_timeout_s": lock_timeout_s,
        "worst_wait_s": round(worst_s, 3),
        "leftovers_before_maintain": before,
        "maintain": {"exit": maintain.returncode, "tasks": maintain_tasks},
        "leftovers_after_maintain": after,
        "indexes_after": sorted(indexes),
        "view_refresh_exit": refresh.returncode,
        "view_verify_exit": verify.returncode,
        "view_verify_stderr": verify.stderr.strip()[-400:],
    }
    result["goals"] = {
        "no_write_lost": result["writes"]["lost"] == 0,
        "no_leftover_after_maintain": not any(after.values()),
        "worst_wait_within_lock_timeout": worst_s <= lock_timeout_s,
        "p99_within_5x": 0 < p99_ratio <= P99_GOAL,
        "view_verify_clean": verify.returncode == 0,
        "every_fault_delivered": not result["faults_not_delivered"],
    }
    return result


def _sum_cpu(parts: list[dict[str, float]]) -> dict[str, float]:
    """The CPU readings of several windows as one."""
    out = {k: round(sum(p[k] for p in parts), 1) for k in parts[0] if k not in ("cores",)}
    out["cores"] = parts[0]["cores"]
    out["machine_busy"] = round(out["machine_busy_core_s"] / (out["wall_s"] * out["cores"]), 3)
    return out


def _seconds(duration: str) -> float:
    from epstats_cli.durations import parse_duration

    return float(parse_duration(duration).total_seconds())


# --- the report -------------------------------------------------------------------------------


def render(r: dict[str, Any]) -> str:
    """The human table."""
    o, w, lat = r["options"], r["writes"], r["latency"]
    a, s, sr = lat["alone"], lat["soak"], lat["soak_with_recovery"]
    faults = ", ".join(f"{k} {v}" for k, v in r["faults"].items()) or "none"
    lines = [
        f"soak: {o['minutes']:g} min in {r['seconds']['windows']} turns of the writer alone "
        f"({r['seconds']['alone']:g} s in all) and beside the commands "
        f"({r['seconds']['soak']:g} s), {o['rate']:g} inserts/s, seed {o['seed']}, "
        f"lock_timeout {o['lock_timeout']}, {o['rows']:,} rows",
        "variants: "
        + ", ".join(v["name"] for v in r["variants"])
        + " (cN: N commands at a time; cost=D/L: vacuum_cost_delay/limit; parN: parallel "
        "workers; else the server's defaults)",
        *_cpu_lines(r),
        "",
        f"commands run        {r['commands_run']}",
        f"faults injected     {r['faults_injected']} ({faults}; "
        f"{r['backends_terminated']} backends terminated; {r['faults_missed']} planned "
        "after the command had ended)",
        f"final faults        {'; '.join(r['final_faults'])}",
        f"exit codes by fault {r['fault_outcomes']}",
        f"faults not delivered {len(r['faults_not_delivered'])} (a signal sent, and its command "
        "exited 0: the signal was ignored or blocked)",
        f"schema drift        {r['drift'] or 'none'}",
        f"internal errors     {len(r['internal_errors'])} (and {len(r['interpreter_tracebacks'])} "
        "KeyboardInterrupt tracebacks of Python itself: SIGINT before main())",
        f"unfaulted failures  {len(r['unfaulted_failures'])}",
        f"quiet windows       {r['interrupted_at_window_end']} commands SIGINTed at a drain "
        f"timeout; waited {r['orphan_wait_s']} s for killed clients' backends at the end "
        f"({r['orphans_left']} left)",
        "",
        f"writes              committed {w['committed']:,}, present {w['present']:,} "
        f"(rows {w['rows']:,}), lost {w['lost']}, writer errors {w['writer_errors']}",
        "",
        f"{'insert latency ms':<26}{'inserts':>9}{'p50':>9}{'p99':>9}{'p99.9':>9}{'worst':>10}",
    ]
    for label, x in (("writer alone", a), ("beside the commands", s), ("all, recovery too", sr)):
        lines.append(
            f"{label:<26}{x['inserts']:>9,}{x['p50_ms']:>9.2f}{x['p99_ms']:>9.2f}"
            f"{x['p999_ms']:>9.2f}{x['worst_ms']:>10.1f}"
        )
    if len(r["variants"]) > 1:
        lines += ["", f"{'variant':<26}{'turns':>6}{'cmds':>6}{'faults':>7}{'p50':>8}"
                  f"{'p99':>8}{'p99.9':>8}{'worst':>8}{'p99/alone':>10}{'PG cores':>9}"
                  f"{'cli cores':>10}"]  # fmt: skip
        for v in r["variants"]:
            x, c = v["latency"], v["cpu"]
            lines.append(
                f"{v['name']:<26}{v['turns']:>6}{v['commands']:>6}{v['faults']:>7}"
                f"{x['p50_ms']:>8.2f}{x['p99_ms']:>8.2f}{x['p999_ms']:>8.2f}{x['worst_ms']:>8.1f}"
                f"{v['p99_ratio']:>9.2f}x{c['server_core_s'] / c['wall_s']:>9.2f}"
                f"{c['clients_core_s'] / c['wall_s']:>10.2f}"
            )
        lines.append("")
    lw = r["writer_lock_waits"]
    lines += [
        f"p99 soak / alone    {lat['p99_ratio']:.2f}x (goal <= {P99_GOAL:g}x)",
        f"worst insert wait   {r['worst_wait_s']:.3f} s (goal <= lock_timeout "
        f"{r['lock_timeout_s']:g} s); writer seen waiting for a lock in {lw['samples_waiting']} "
        f"of {lw['samples']} samples, longest {lw['longest_seen_s']} s",
        "",
        f"before maintain     {r['leftovers_before_maintain']}",
        f"one plain maintain  exit {r['maintain']['exit']}: "
        + ", ".join(f"{t['task']} {t['target']} {t['status']}" for t in r["maintain"]["tasks"]),
        f"after maintain      {r['leftovers_after_maintain']}",
        f"indices after       {', '.join(r['indexes_after'])}",
        f"view refresh exit {r['view_refresh_exit']}, view verify exit {r['view_verify_exit']}",
        "",
        "goals: " + ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in r["goals"].items()),
    ]
    for what in ("faults_not_delivered", "internal_errors", "unfaulted_failures"):
        for line in r[what][:10]:
            lines.append(f"  {what}: {line}")
    return "\n".join(lines)


def _cpu_lines(r: dict[str, Any]) -> list[str]:
    """Who used the CPU in each phase, in core-seconds (the machine is shared)."""
    out = []
    for phase, label in (("baseline", "writer alone"), ("soak", "beside commands")):
        c = r["cpu"][phase]
        writer = r["writer_cpu_s"] if phase == "soak" else r["writer_cpu_alone_s"]
        ours_s = c["server_core_s"] + c["clients_core_s"] + c["driver_core_s"] + writer
        out.append(
            f"CPU {label:<13} {c['wall_s']:g} s x {c['cores']} cores: machine busy "
            f"{c['machine_busy']:.0%} = {c['machine_busy_core_s']:g} core-s: PostgreSQL "
            f"{c['server_core_s']:g}, epstats commands {c['clients_core_s']:g}, "
            f"writer {writer:g}, driver {c['driver_core_s']:g}; other users "
            f"{max(0.0, c['machine_busy_core_s'] - ours_s):.1f}"
        )
    return out


def memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
    except OSError:
        pass
    return "unknown RAM"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="writer INSERTs per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=2, help="commands at a time")
    parser.add_argument("--rows", type=int, default=1_000_000, help="history rows")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--fault-share", type=float, default=0.4)
    parser.add_argument("--lock-timeout", default="5s", help="database.lock_timeout")
    parser.add_argument(
        "--strategy", choices=["materialized", "incremental"], default="materialized"
    )
    parser.add_argument("--no-drift", action="store_true", help="never drop or add an index")
    parser.add_argument("--vacuum-cost-delay", help="e.g. 2ms, for the commands' sessions")
    parser.add_argument("--vacuum-cost-limit", type=int)
    parser.add_argument("--parallel-workers", type=int, help="max parallel workers per step")
    parser.add_argument(
        "--variants",
        help="compare, turn by turn: e.g. c2,c1,c2+cost,c2+par0 (replaces --concurrency, "
        "--vacuum-cost-*, --parallel-workers)",
    )
    parser.add_argument("--logs", type=Path, help="keep the commands' stderr in this directory")
    parser.add_argument("--dsn", help="a server to create the database epstats_soak on")
    parser.add_argument("--version", type=int, default=15, help="throwaway server's major")
    args = parser.parse_args()

    def log(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    opts = SoakOptions(
        minutes=args.minutes,
        rate=args.rate,
        seed=args.seed,
        variants=tuple(parse_variant(v) for v in args.variants.split(","))
        if args.variants
        else (
            Variant(
                args.concurrency,
                args.vacuum_cost_delay,
                args.vacuum_cost_limit,
                args.parallel_workers,
            ),
        ),
        rows=args.rows,
        days=args.days,
        fault_share=args.fault_share,
        lock_timeout=args.lock_timeout,
        strategy=args.strategy,
        drift=not args.no_drift,
        log=log,
    )
    with _admin(args.dsn, args.version) as admin:
        with psycopg.connect(admin, autocommit=True) as conn:
            version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {DATABASE}")
        params = psycopg.conninfo.conninfo_to_dict(admin)
        params["dbname"] = DATABASE
        dsn = psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]
        try:
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                result = run_soak(dsn, opts, args.logs)
            else:
                with tempfile.TemporaryDirectory(prefix="epstats-soak-") as tmp:
                    result = run_soak(dsn, opts, Path(tmp))
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    result["machine"] = f"{machine()}, {memory()}"
    result["postgresql"] = version
    print(f"machine: {result['machine']}; PostgreSQL {version}")
    print(render(result))
    print(json.dumps(result, sort_keys=True))


def _admin(dsn: str | None, version: int) -> Any:
    if dsn:
        from contextlib import nullcontext

        return nullcontext(dsn)
    return server(version)


if __name__ == "__main__":
    main()
