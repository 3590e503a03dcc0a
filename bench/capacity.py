"""The capacity section: what one stream and one turn cost, on PostgreSQL with 2 workers.

- statements and writes per turn, by verb and table (bench/hooks/sitecustomize.py counts
  them inside the server's processes), for a new conversation and for a follow-up;
- memory per open idle stream (a slow model: one character a second) and peak RSS of the
  whole server (supervisor and workers) with many such streams open at once;
- the run watcher's heartbeat writes and stop polls per second at a few and at many
  active runs;
- PostgreSQL connections at peak (pg_stat_activity) and the pools' own count (/metrics).

Every user is a different one (a JWT per user), as in production: one user's admissions
are serialised by design, so one user for all streams would measure that instead.
docs/scaling.md builds the capacity model on these figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import jwt

from tests.pgbouncer import PgBouncer, pgbouncer_binary

from . import procs
from .client import Connection, Response, create_body, stream_ok, user_input

if TYPE_CHECKING:
    from .run import Bench

SECRET = "bench-capacity-secret-that-is-long-enough-0123456789"
HOOKS = procs.ROOT / "bench" / "hooks"
WORKERS = 2
SERVE_ARGS = ("--workers", str(WORKERS))
WINDOW = 10.0  # seconds over which rates are measured


def token(user: str) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time()) + 7200}, SECRET, algorithm="HS256")


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-file limit (its children inherit it); returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, wanted))
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _tree(pid: int) -> list[int]:
    """`pid` and all its descendants (the supervisor and its workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def tree_rss_mb(pid: int) -> float:
    """RSS of `pid` and all its descendants, in MB."""
    return sum(procs.proc_status(p).get("VmRSS", 0) for p in _tree(pid)) / 1024


_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by `pid` and its descendants."""
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def statement_counts(directory: Path) -> Counter[str]:
    """The server processes' counts so far, summed."""
    total: Counter[str] = Counter()
    for path in directory.glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            total.update(json.loads(path.read_text()))
    return total


def per(delta: Counter[str], n: float) -> dict[str, float]:
    return {k: round(v / n, 2) for k, v in sorted(delta.items()) if v}


class Capacity:
    """One server (2 workers) on `database_url`; `served_url` is how it reaches it."""

    def __init__(self, bench: Bench, database_url: str, served_url: str, route: str) -> None:
        self.bench = bench
        self.database_url = database_url
        self.route = route
        self.counts_dir = bench.workdir / f"statements-{route}"
        self.counts_dir.mkdir(exist_ok=True)
        env = procs.ours_env(served_url, bench.prov.base_url)
        env.update(
            BETTER_AUTH_SECRET=SECRET,
            BENCH_STATEMENTS_DIR=str(self.counts_dir),
            PYTHONPATH=str(HOOKS),
            LOG_LEVEL="WARNING",
        )
        if route == "pgbouncer":
            env["DATABASE_POOLER"] = "transaction"
        self.srv = procs.Server(
            f"capacity-{route}",
            [str(procs.VENV_BIN / "chatkit-backend"), "serve", "--port", "{port}", *SERVE_ARGS],
            env,
            bench.workdir,
            bench.workdir / f"capacity-{route}.log",
        )
        bench.servers.append(self.srv)
        self.peak: dict[str, float] = Counter()

    def conn(self, user: str) -> Connection:
        return Connection(self.srv.port, headers={"Authorization": f"Bearer {token(user)}"})

    async def counts(self) -> Counter[str]:
        await asyncio.sleep(1.2)  # two flushes of the hook
        return statement_counts(self.counts_dir)

    # -- turns -------------------------------------------------------------------------

    async def turns(self, count: int, concurrency: int = 8) -> None:
        self.bench.prov.mode("overhead")
        users = [f"turn-{n}" for n in range(count)]
        gate = asyncio.Semaphore(concurrency)
        threads: dict[str, str] = {}

        async def create(user: str) -> None:
            async with gate:
                conn = self.conn(user)
                r = await conn.request("POST", "/chatkit", create_body(), timeout=120)
                await conn.close()
                if not stream_ok(r):
                    raise RuntimeError(f"capacity turn failed: {r.status} {r.body[:300]!r}")
                threads[user] = r.events()[0]["thread"]["id"]

        async def follow_up(user: str) -> None:
            body = {
                "type": "threads.add_user_message",
                "params": {"thread_id": threads[user], "input": user_input("And then?")},
            }
            async with gate:
                conn = self.conn(user)
                r = await conn.post_json("/chatkit", body, timeout=120)
                await conn.close()
                if not stream_ok(r):
                    raise RuntimeError(f"capacity follow-up failed: {r.status} {r.body[:300]!r}")

        before = await self.counts()
        began = time.perf_counter()
        await asyncio.gather(*(create(u) for u in users))
        created_s = time.perf_counter() - began
        middle = await self.counts()
        began = time.perf_counter()
        await asyncio.gather(*(follow_up(u) for u in users))
        follow_s = time.perf_counter() - began
        after = await self.counts()
        for name, delta, seconds in (
            ("new conversation", middle - before, created_s),
            ("follow-up", after - middle, follow_s),
        ):
            statements = {k: v for k, v in delta.items() if not k.startswith(("rows ", "trans"))}
            rows = {k[5:]: v for k, v in delta.items() if k.startswith("rows ")}
            result = {
                "turns": count,
                "seconds": round(seconds, 2),
                "statements_per_turn": round(sum(statements.values()) / count, 2),
                "transactions_per_turn": round(delta["transactions"] / count, 2),
                "by_statement": per(Counter(statements), count),
                "rows_written_by_statement": per(Counter(rows), count),
            }
            self.bench.put("capacity", f"{self.route} per turn: {name}", "b", result)
            self.bench.log(
                f"capacity {self.route} {name}: {result['statements_per_turn']} statements, "
                f"{result['transactions_per_turn']} transactions per turn: "
                f"{result['by_statement']}"
            )

    # -- open streams ------------------------------------------------------------------

    async def sample(self, stop: asyncio.Event) -> None:
        """Peaks of the server's RSS, its PostgreSQL connections and its pools' count."""
        admin = await asyncpg.connect(self.database_url)
        metrics = self.conn("metrics-reader")
        name = self.database_url.rsplit("/", 1)[1]
        try:
            while not stop.is_set():
                self.peak["rss_mb"] = max(self.peak["rss_mb"], tree_rss_mb(self.srv.pid))
                total, active, waiting = await admin.fetchrow(
                    "SELECT count(*), count(*) FILTER (WHERE state = 'active'), "
                    "count(*) FILTER (WHERE state = 'idle in transaction') "
                    "FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                    name,
                )
                for key, value in (
                    ("pg_connections", total),
                    ("pg_active", active),
                    ("pg_idle_in_transaction", waiting),
                ):
                    self.peak[key] = max(self.peak[key], value)
                with contextlib.suppress(Exception):
                    text = (await metrics.request("GET", "/metrics", timeout=10)).body.decode()
                    for line in text.splitlines():
                        if line.startswith("chatkit_db_connections_in_use "):
                            value = float(line.split()[1])
                            self.peak["pool_in_use"] = max(self.peak["pool_in_use"], value)
                await asyncio.sleep(0.25)
        finally:
            await admin.close()
            await metrics.close()

    async def streams(self, levels: list[int], per_second: float) -> None:
        """Open streams at `per_second` (arrivals spread, as users' are) up to each level."""
        self.bench.prov.mode("hold")
        await asyncio.sleep(2)
        baseline = tree_rss_mb(self.srv.pid)
        started: set[int] = set()
        hang_up = asyncio.Event()
        outcomes: list[Response | BaseException] = []

        async def hold(n: int) -> None:
            def watch(body: bytes) -> bool:
                if n not in started and b"text_delta" in body:
                    started.add(n)
                return hang_up.is_set()

            conn = self.conn(f"stream-{n}")
            try:
                outcomes.append(
                    await conn.request(
                        "POST", "/chatkit", create_body(), timeout=600, hang_up_when=watch
                    )
                )
            except (Exception, asyncio.CancelledError) as exc:
                outcomes.append(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
            finally:
                await conn.close()

        stop_sampling = asyncio.Event()
        sampler = asyncio.create_task(self.sample(stop_sampling))
        tasks: list[asyncio.Task[None]] = []
        results = []
        try:
            for level in levels:
                began = time.perf_counter()
                for n in range(len(tasks), level):
                    tasks.append(asyncio.create_task(hold(n)))
                    await asyncio.sleep(1 / per_second)
                deadline = time.monotonic() + 60
                while len(started) < level and time.monotonic() < deadline:
                    if len(outcomes) + len(started) >= level and len(started) < level:
                        break  # the rest failed
                    await asyncio.sleep(0.2)
                opened_s = time.perf_counter() - began
                await asyncio.sleep(2)
                before = statement_counts(self.counts_dir)
                cpu_before = tree_cpu_seconds(self.srv.pid)
                rss = []
                t0 = time.perf_counter()
                while time.perf_counter() - t0 < WINDOW:
                    rss.append(tree_rss_mb(self.srv.pid))
                    await asyncio.sleep(0.5)
                seconds = time.perf_counter() - t0
                cpu = tree_cpu_seconds(self.srv.pid) - cpu_before
                delta = statement_counts(self.counts_dir) - before
                result = {
                    "streams": level,
                    "open": len(started),
                    "seconds_to_open": round(opened_s, 1),
                    "rss_mb": round(statistics.median(rss), 1),
                    # Cores the server used while its streams each got a character a second.
                    "server_cpu_cores": round(cpu / seconds, 3),
                    "heartbeat_updates_per_s": round(delta["UPDATE active_runs"] / seconds, 2),
                    "heartbeat_rows_per_s": round(delta["rows UPDATE active_runs"] / seconds, 1),
                    "stop_polls_per_s": round(delta["SELECT active_runs"] / seconds, 2),
                    "statements_per_s": round(
                        sum(v for k, v in delta.items() if not k.startswith(("rows ", "trans")))
                        / seconds,
                        1,
                    ),
                }
                results.append(result)
                self.bench.log(f"capacity {self.route} {level} open streams: {result}")
        finally:
            hang_up.set()
            # Streams hang up at their next character; requests still waiting for their
            # response head (never opened) are given up after a while.
            _, waiting = await asyncio.wait(tasks, timeout=30) if tasks else (set(), set())
            for task in waiting:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            stop_sampling.set()
            await sampler
        top = results[-1]
        errors = sum(1 for o in outcomes if isinstance(o, BaseException) or o.status != 200)
        self.bench.put(
            "capacity",
            f"{self.route} open streams",
            "b",
            {
                "levels": results,
                "opened_per_s": per_second,
                "baseline_rss_mb": round(baseline, 1),
                "mb_per_open_stream": round((top["rss_mb"] - baseline) / max(1, top["open"]), 3),
                "peak_rss_mb": round(self.peak["rss_mb"], 1),
                "peak_pg_connections": self.peak["pg_connections"],
                "peak_pg_active": self.peak["pg_active"],
                "peak_pg_idle_in_transaction": self.peak["pg_idle_in_transaction"],
                "peak_pool_in_use": self.peak["pool_in_use"],
                "errors": errors,
                "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            },
        )

    async def settle(self) -> None:
        """Wait for the hung-up runs to save their partial replies and drop their locks."""
        conn = await asyncpg.connect(self.database_url)
        try:
            for _ in range(120):
                if await conn.fetchval("SELECT count(*) FROM active_runs") == 0:
                    return
                await asyncio.sleep(0.5)
        finally:
            await conn.close()


# New streams a second: well under what 2 workers on 2 shared cores admit (the bench
# client and the provider run there too), so the figures are the streams' own cost.
OPEN_PER_SECOND = 25.0


async def capacity(bench: Bench, streams: int, turns: int) -> None:
    """Directly, then through PgBouncer in transaction mode (when installed)."""
    limit = raise_fd_limit(4 * streams + 1024)
    bench.log(f"capacity: open-file limit {limit}")
    routes = ["direct"]
    if pgbouncer_binary():
        routes.append("pgbouncer")
    else:
        bench.notes.append("capacity through PgBouncer skipped: pgbouncer is not installed")
    for route in routes:
        async with contextlib.AsyncExitStack() as stack:
            url = await stack.enter_async_context(procs.postgres_database())
            served = url
            if route == "pgbouncer":
                served = stack.enter_context(PgBouncer()).url(url)
            cap = Capacity(bench, url, served, route)
            await cap.srv.start()
            try:
                bench.prov.mode("overhead")
                for n in range(2 * WORKERS):  # both workers load their model libraries
                    conn = cap.conn(f"warm-{n}")
                    await conn.request("POST", "/chatkit", create_body(), timeout=120)
                    await conn.close()
                await cap.turns(turns)
                levels = sorted({min(20, streams), streams // 4, streams // 2, streams})
                await cap.streams(levels, OPEN_PER_SECOND)
                await cap.settle()
            finally:
                cap.srv.stop()
                bench.prov.mode("overhead")


def report(results: dict[str, Any]) -> list[str]:
    """The capacity section's figures, as lines under the main table."""
    section = results.get("capacity")
    if not section:
        return []
    lines = [f"capacity (PostgreSQL, {WORKERS} workers, one user per conversation):"]
    for route in ("direct", "pgbouncer"):
        lines += _route_report(section, route)
    return lines


def _route_report(section: dict[str, Any], route: str) -> list[str]:
    lines = []
    for name in ("new conversation", "follow-up"):
        data = section.get(f"{route} per turn: {name}", {}).get("b")
        if data:
            lines.append(
                f"  [{route}] {name}: {data['statements_per_turn']} statements, "
                f"{data['transactions_per_turn']} commits per turn; "
                f"by statement {data['by_statement']}; "
                f"rows written {data['rows_written_by_statement']}"
            )
    data = section.get(f"{route} open streams", {}).get("b")
    if data:
        lines.append(
            f"  [{route}] open streams ({data['opened_per_s']:.0f} new a second): "
            f"{data['mb_per_open_stream'] * 1024:.0f} KB per open stream "
            f"(baseline {data['baseline_rss_mb']} MB), peak RSS {data['peak_rss_mb']} MB, "
            f"{data['errors']} errors; PostgreSQL connections at peak "
            f"{data['peak_pg_connections']} ({data['peak_pg_active']} active, "
            f"{data['peak_pg_idle_in_transaction']} idle in transaction), "
            f"pools' in use at peak {data['peak_pool_in_use']}"
        )
        for level in data["levels"]:
            lines.append(
                f"    {level['open']}/{level['streams']} open (in {level['seconds_to_open']} s): "
                f"RSS {level['rss_mb']} MB, server CPU {level['server_cpu_cores']} cores, "
                f"heartbeat UPDATEs {level['heartbeat_updates_per_s']}/s "
                f"({level['heartbeat_rows_per_s']} rows/s), stop polls "
                f"{level['stop_polls_per_s']}/s, all statements {level['statements_per_s']}/s"
            )
    return lines
