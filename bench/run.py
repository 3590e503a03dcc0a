# ruff: noqa: ASYNC109, ASYNC240, B023 - hand-run tool: plain timeouts, blocking calls
"""`python -m bench [--quick] [--profile]`: overhead, concurrency, store scale, stop, start-up.

Everything runs on 127.0.0.1 and is started here: the scripted provider (own
process), (a) this server on SQLite, (b) this server on PostgreSQL (a throw-away
database), (c) the seeds' reference design (bench/reference, its own venv) and
(d) a bare Starlette SSE endpoint, the ceiling. docs/benchmarks.md explains the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jwt

from . import procs, storedata
from .capacity import capacity
from .capacity import report as capacity_report
from .client import Connection, Response, create_body, stream_ok, user_input
from .conversations import report as conversations_report
from .conversations import run_section as conversations
from .profile import process_cpu, report, summarize, thread_cpu

RESULTS_DIR = procs.ROOT / "bench" / "results"
A, B, C, D, E = "a", "b", "c", "d", "e"
LABELS = {
    A: "(a) SQLite",
    B: "(b) PostgreSQL",
    C: "(c) reference",
    D: "(d) ceiling",
    # (a) with MODEL=litellm/openai/bench: the route Gemini, Anthropic and any
    # `litellm/` model take; the overhead section only.
    E: "(e) SQLite, LiteLLM",
}


@dataclass(frozen=True)
class Sizes:
    seq_turns: int  # per block
    conc_workers: int
    conc_turns_per_worker: int
    rounds: int
    streams: int
    stop_trials: int
    store_small: tuple[int, int]  # (threads, items)
    store_large: tuple[int, int]
    store_reps: int
    startup_reps: int
    profile_turns: int
    capacity_streams: int  # slow streams open at once (capacity section)
    capacity_turns: int  # conversations whose statements are counted (two turns each)
    conv_sequential: int = 30  # three-turn conversations back to back, per round
    conv_workers: int = 20  # conversations at once
    conv_per_worker: int = 3  # conversations each of those runs back to back, per round


FULL = Sizes(100, 50, 4, 3, 200, 5, (1_000, 10_000), (100_000, 1_000_000), 100, 3, 300, 1000, 100)
QUICK = Sizes(
    30, 50, 2, 2, 200, 3, (1_000, 10_000), (10_000, 100_000), 30, 1, 150, 200, 30, 10, 20, 1
)


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Timings:
    ttfb: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    turns: int = 0
    errors: int = 0
    seconds: float = 0.0
    cpu: float = 0.0

    def add(
        self, responses: Sequence[Response | BaseException], ok: Callable[[Response], bool]
    ) -> None:
        for r in responses:
            self.turns += 1
            if isinstance(r, BaseException) or not ok(r):
                self.errors += 1
                continue
            self.ttfb.append(r.ttfb)
            if r.ttft is not None:
                self.ttft.append(r.ttft)
            self.total.append(r.total)

    @property
    def rate(self) -> float:
        return (self.turns - self.errors) / self.seconds if self.seconds else math.nan

    def summary(self) -> dict[str, float]:
        return {
            "turns_per_s": self.rate,
            "ttfb_p50_ms": pct(self.ttfb, 0.5) * 1000,
            "ttfb_p99_ms": pct(self.ttfb, 0.99) * 1000,
            "ttft_p50_ms": pct(self.ttft, 0.5) * 1000,
            "ttft_p99_ms": pct(self.ttft, 0.99) * 1000,
            "end_p50_ms": pct(self.total, 0.5) * 1000,
            "end_p99_ms": pct(self.total, 0.99) * 1000,
            "cpu_ms_per_turn": self.cpu / max(1, self.turns) * 1000,
            "turns": self.turns,
            "errors": self.errors,
        }


async def one_turn(conn: Connection, timeout: float = 120.0) -> Response:
    return await conn.request("POST", "/chatkit", create_body(), timeout=timeout)


async def sequential(port: int, turns: int) -> tuple[list[Response | BaseException], float]:
    conn = Connection(port)
    out: list[Response | BaseException] = []
    began = time.perf_counter()
    for _ in range(turns):
        try:
            out.append(await one_turn(conn))
        except Exception as exc:
            out.append(exc)
    elapsed = time.perf_counter() - began
    await conn.close()
    return out, elapsed


async def concurrent(
    port: int,
    workers: int,
    per_worker: int,
    timeout: float = 120.0,
    headers: Callable[[int], dict[str, str]] | None = None,
) -> tuple[list[Response | BaseException], float]:
    """`workers` connections at once, each running `per_worker` turns back to back;
    `headers(n)`: the extra request headers of worker n (a user's token)."""
    start = asyncio.Event()

    async def worker(number: int) -> list[Response | BaseException]:
        conn = Connection(port, headers=headers(number) if headers else None)
        got: list[Response | BaseException] = []
        await start.wait()
        for _ in range(per_worker):
            try:
                got.append(await one_turn(conn, timeout))
            except Exception as exc:
                got.append(exc)
        await conn.close()
        return got

    tasks = [asyncio.create_task(worker(n)) for n in range(workers)]
    await asyncio.sleep(0)
    began = time.perf_counter()
    start.set()
    results = await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    return [r for rs in results for r in rs], elapsed


class Bench:
    def __init__(self, sizes: Sizes, workdir: Path, profile: bool) -> None:
        self.sizes = sizes
        self.workdir = workdir
        self.profile = profile
        self.results: dict[str, Any] = {}
        self.notes: list[str] = []
        self.profile_lines: list[str] = []
        self.provider: procs.Provider | None = None
        self.pg_reason: str | None = None
        self.stack = AsyncExitStack()
        self.servers: list[procs.Server] = []
        self.ceiling_shape = (37, 200)

    # -- plumbing ------------------------------------------------------------------

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def put(self, section: str, metric: str, server: str, value: Any) -> None:
        self.results.setdefault(section, {}).setdefault(metric, {})[server] = value

    @property
    def prov(self) -> procs.Provider:
        assert self.provider is not None
        return self.provider

    async def pg_url(self) -> str:
        url: str = await self.stack.enter_async_context(procs.postgres_database())
        return url

    def server(self, key: str, database_url: str | None = None, tag: str = "") -> procs.Server:
        name = f"{key}{tag}"
        if key in (A, B, E):
            assert database_url is not None
            model = procs.LITELLM_ROUTE if key == E else procs.OPENAI_ROUTE
            srv = procs.ours(name, database_url, self.prov.base_url, self.workdir, model)
        elif key == C:
            srv = procs.reference(self.prov.base_url, self.workdir)
        else:
            srv = procs.ceiling(*self.ceiling_shape, self.workdir)
        self.servers.append(srv)
        return srv

    def keys(self) -> list[str]:
        return [A, C] + ([B] if self.pg_reason is None else []) + [D]

    def ok_for(self, key: str) -> Callable[[Response], bool]:
        if key != D:
            return stream_ok
        events = self.ceiling_shape[0]
        return lambda r: r.status == 200 and r.body.count(b"data: ") == events

    async def warm(
        self, srv: procs.Server, turns: int = 5, headers: dict[str, str] | None = None
    ) -> Response:
        conn = Connection(srv.port, headers=headers)
        last = None
        for _ in range(turns):
            last = await one_turn(conn)
        await conn.close()
        assert last is not None
        return last

    # -- sections --------------------------------------------------------------------

    async def overhead(self, databases: dict[str, str]) -> None:
        s = self.sizes
        self.prov.mode("overhead")
        keys = [k for k in self.keys() if k != D] + [E]
        servers = {k: self.server(k, databases.get(k)) for k in keys}
        for key, srv in servers.items():
            seconds = await srv.start()
            self.log(f"{LABELS[key]} up in {seconds:.2f}s on :{srv.port}")
            sample = await self.warm(srv)
            if not self.ok_for(key)(sample):
                raise RuntimeError(f"{LABELS[key]} warm-up turn failed: {sample.body[:500]!r}")
            if key == A:
                events = sample.body.count(b"data: ")
                self.ceiling_shape = (events, max(1, len(sample.body) // events))
        servers[D] = self.server(D)
        await servers[D].start()
        await self.warm(servers[D])
        self.put("overhead", "events per turn", A, self.ceiling_shape[0])
        self.put("overhead", "bytes per event", A, self.ceiling_shape[1])

        order = [k for k in (A, C, E, B, D) if k in servers]
        seq = {k: Timings() for k in order}
        conc = {k: Timings() for k in order}
        for round_no in range(s.rounds):
            for key in order:
                srv = servers[key]
                cpu = process_cpu(srv.pid)
                responses, seconds = await sequential(srv.port, s.seq_turns)
                seq[key].cpu += process_cpu(srv.pid) - cpu
                seq[key].seconds += seconds
                seq[key].add(responses, self.ok_for(key))
                self.log(
                    f"round {round_no + 1}: sequential {LABELS[key]} {s.seq_turns / seconds:.1f}/s"
                )
            self.prov.command("reset")
            for key in order:
                srv = servers[key]
                cpu = process_cpu(srv.pid)
                responses, seconds = await concurrent(
                    srv.port, s.conc_workers, s.conc_turns_per_worker
                )
                conc[key].cpu += process_cpu(srv.pid) - cpu
                conc[key].seconds += seconds
                conc[key].add(responses, self.ok_for(key))
                self.log(
                    f"round {round_no + 1}: {s.conc_workers} concurrent {LABELS[key]} "
                    f"{len(responses) / seconds:.1f}/s"
                )
            self.prov.command("reset")
        for key in order:
            self.put("overhead", "sequential", key, seq[key].summary())
            self.put("overhead", "concurrent", key, conc[key].summary())

        for srv in servers.values():
            srv.stop()
        if self.profile:
            for key in (A, C, E):
                await self.profile_one(key, servers[key])

    async def profile_one(self, key: str, plain: procs.Server) -> None:
        """Sequential turns on a separate instance of `key` run under pyinstrument."""
        out = RESULTS_DIR / f"profile-{key}.pyisession"
        out.unlink(missing_ok=True)
        srv = procs.profiled(plain, out)
        self.servers.append(srv)
        await srv.start()
        warm = 10
        await self.warm(srv, warm)
        turns = self.sizes.profile_turns
        before = thread_cpu(srv.pid)
        _, seconds = await sequential(srv.port, turns)
        after = thread_cpu(srv.pid)
        srv.stop()
        cpu = {k: (after.get(k, 0) - before.get(k, 0)) / turns * 1000 for k in after}
        cpu_line = ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v >= 0.05
        )
        self.profile_lines.append(
            f"{LABELS[key]} under pyinstrument: {turns} sequential turns, "
            f"{seconds / turns * 1000:.1f} ms/turn wall; CPU ms/turn by thread: {cpu_line}"
        )
        plain = (self.results.get("overhead", {}).get("sequential", {}).get(key) or {}).get(
            "cpu_ms_per_turn"
        )
        scale = plain / sum(cpu.values()) if plain and sum(cpu.values()) else 1.0
        marker = "chatkit_backend/" if key in (A, B, E) else "(main.py)"
        self.profile_lines += report(LABELS[key], summarize(out, turns + warm, marker), scale)
        self.profile_lines.append("")
        self.put("profile", "cpu_ms_per_turn_by_thread", key, cpu)

    async def startup(self, databases: dict[str, str]) -> None:
        for key in self.keys():
            times, firsts, rss = [], [], []
            for _ in range(self.sizes.startup_reps):
                srv = self.server(key, databases.get(key), tag="-startup")
                times.append(await srv.start())
                # Our server loads the model libraries after /health answers: the first
                # reply shows what that costs a user who comes at once.
                await self.warm(srv, 1)
                firsts.append(time.perf_counter() - srv.began)
                await asyncio.sleep(1.0)
                rss.append(srv.memory_mb()[0])
                srv.stop()
            self.put("startup", "ready", key, statistics.median(times))
            self.put("startup", "first_reply", key, statistics.median(firsts))
            self.put("startup", "idle_rss_mb", key, statistics.median(rss))
            self.log(
                f"start-up {LABELS[key]}: {statistics.median(times):.2f}s, first reply "
                f"{statistics.median(firsts):.2f}s, {statistics.median(rss):.0f} MB"
            )

    async def streams_and_stop(self, databases: dict[str, str]) -> None:
        for key in [k for k in self.keys() if k != D]:
            srv = self.server(key, databases.get(key), tag="-streams")
            await srv.start()
            self.prov.mode("overhead")
            await self.warm(srv, 3)
            self.prov.mode("slow")
            peak = 0.0

            async def sample_memory() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, srv.memory_mb()[1])
                    await asyncio.sleep(0.05)

            sampler = asyncio.create_task(sample_memory())
            responses, seconds = await concurrent(srv.port, self.sizes.streams, 1, timeout=180)
            sampler.cancel()
            peak = max(peak, srv.memory_mb()[1])
            timings = Timings(seconds=seconds)
            timings.add(responses, stream_ok)
            kinds = sorted(
                {
                    type(r).__name__ if isinstance(r, BaseException) else str(r.status)
                    for r in responses
                }
            )
            self.put(
                "concurrency",
                "streams",
                key,
                {**timings.summary(), "peak_rss_mb": peak, "outcomes": kinds},
            )
            self.log(
                f"{self.sizes.streams} streams {LABELS[key]}: {timings.errors} errors, "
                f"p99 first byte {pct(timings.ttfb, 0.99) * 1000:.0f} ms, peak {peak:.0f} MB"
            )
            self.prov.command("reset")
            await self.stop_test(key, srv)
            srv.stop()
            if key in (A, B):
                await self.streams_of_many_users(key, databases[key])
        self.prov.mode("overhead")

    async def streams_of_many_users(self, key: str, database_url: str) -> None:
        """The 200 streams again, each from a user of its own (signed-in, HS256 tokens).

        All other sections run as the one local user, whose admissions queue on that
        user's run lock and message counter: the worst case, and not a deployment's.
        """
        secret = secrets.token_hex(32)
        expires = int(time.time()) + 3600
        tokens = [
            jwt.encode({"sub": f"bench-user-{n}", "exp": expires}, secret, algorithm="HS256")
            for n in range(self.sizes.streams + 1)
        ]
        srv = procs.ours(
            f"{key}-users",
            database_url,
            self.prov.base_url,
            self.workdir,
            extra_env={"AUTH_SECRET": secret},
        )
        self.servers.append(srv)
        await srv.start()
        self.prov.mode("overhead")
        # As the one-user run: a few turns first (the last token's user, not measured).
        sample = await self.warm(srv, 3, {"Authorization": f"Bearer {tokens[-1]}"})
        if not stream_ok(sample):
            raise RuntimeError(f"{srv.name} warm-up turn failed: {sample.body[:300]!r}")
        self.prov.mode("slow")
        responses, seconds = await concurrent(
            srv.port,
            self.sizes.streams,
            1,
            timeout=180,
            headers=lambda n: {"Authorization": f"Bearer {tokens[n]}"},
        )
        timings = Timings(seconds=seconds)
        timings.add(responses, stream_ok)
        self.put("concurrency", "streams_many_users", key, timings.summary())
        self.log(
            f"{self.sizes.streams} streams, a user each, {LABELS[key]}: {timings.errors} errors, "
            f"p50 first byte {pct(timings.ttfb, 0.5) * 1000:.0f} ms"
        )
        self.prov.command("reset")
        srv.stop()

    async def stop_test(self, key: str, srv: procs.Server) -> None:
        self.prov.mode("stop")
        after: list[int] = []
        close_ms: list[float] = []
        ran_out = 0
        for _ in range(self.sizes.stop_trials):
            snapshot: dict[str, Any] = {}

            def hang_up(body: bytes) -> bool:
                # The first text delta has arrived: the reply is streaming. Note how far the
                # provider has got, then hang up at once.
                if b'"type":"thread.item.updated"' not in body:
                    return False
                snapshot.update(self.prov.last_stream() or {})
                snapshot["closed_at"] = time.monotonic()
                return True

            conn = Connection(srv.port)
            await conn.request("POST", "/chatkit", create_body(), timeout=60, hang_up_when=hang_up)
            record: dict[str, Any] | None = None
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                record = self.prov.last_stream()
                if (
                    record
                    and record["request_index"] == snapshot.get("request_index")
                    and (record["client_disconnected"] or record["finished"])
                ):
                    break
                await asyncio.sleep(0.01)
            if not record or "closed_at" not in snapshot:
                raise RuntimeError(f"stop test on {LABELS[key]}: no provider stream seen")
            after.append(record["chunks_sent"] - snapshot["chunks_sent"])
            if record["client_disconnected"]:
                close_ms.append((record["disconnected_at"] - snapshot["closed_at"]) * 1000)
            else:
                ran_out += 1
                close_ms.append((record["finished_at"] - snapshot["closed_at"]) * 1000)
            await asyncio.sleep(0.5)  # let the server finish saving the partial reply
        self.put(
            "stop",
            "stop",
            key,
            {
                "chunks_after_median": statistics.median(after),
                "chunks_after_max": max(after),
                "close_ms_median": statistics.median(close_ms),
                "ran_to_end": ran_out,
                "trials": len(after),
            },
        )
        self.log(
            f"stop {LABELS[key]}: chunks after {after}, "
            f"upstream closed after {[round(x) for x in close_ms]} ms"
        )
        self.prov.command("reset")
        self.prov.mode("overhead")

    async def store_scale(self) -> None:
        self.prov.mode("overhead")
        backends = ["sqlite"] + (["postgres"] if self.pg_reason is None else [])
        for backend in backends:
            key = A if backend == "sqlite" else B
            for size_name, (threads, items) in (
                ("small", self.sizes.store_small),
                ("large", self.sizes.store_large),
            ):
                async with AsyncExitStack() as stack:
                    if backend == "sqlite":
                        path = self.workdir / f"store-{size_name}.db"
                        url = f"sqlite:///{path}"
                        procs.migrate(url, self.workdir)
                        seeded = storedata.seed_sqlite(str(path), threads, items)
                    else:
                        url = await stack.enter_async_context(procs.postgres_database())
                        procs.migrate(url, self.workdir)
                        seeded = await storedata.seed_postgres(url, threads, items)
                    self.log(
                        f"store {backend} {threads} threads / {items} items "
                        f"seeded in {seeded.seconds:.1f}s"
                    )
                    srv = self.server(key, url, tag=f"-store-{size_name}")
                    await srv.start()
                    try:
                        ops = await self.store_ops(srv.port, seeded.hot_thread)
                    finally:
                        srv.stop()
                    if backend == "sqlite":
                        for suffix in ("", "-wal", "-shm"):
                            Path(f"{path}{suffix}").unlink(missing_ok=True)
                self.put("store", size_name, key, {"threads": threads, "items": items, **ops})
                self.log(f"store {backend} {size_name}: {ops}")

    async def store_ops(self, port: int, hot: str) -> dict[str, float]:
        reps = self.sizes.store_reps
        conn = Connection(port)
        bodies = {
            "threads.list": {"type": "threads.list", "params": {"limit": 20, "order": "desc"}},
            "items.list": {
                "type": "items.list",
                "params": {"thread_id": hot, "limit": 20, "order": "desc"},
            },
        }
        out: dict[str, float] = {}
        for name, body in bodies.items():
            payload = json.dumps(body).encode()
            for _ in range(5):
                await conn.request("POST", "/chatkit", payload)
            times = []
            for _ in range(reps):
                r = await conn.request("POST", "/chatkit", payload, timeout=60)
                if r.status != 200:
                    raise RuntimeError(f"{name}: HTTP {r.status} {r.body[:300]!r}")
                times.append(r.total)
            out[f"{name}_p50_ms"] = pct(times, 0.5) * 1000
            out[f"{name}_p99_ms"] = pct(times, 0.99) * 1000
        add = json.dumps(
            {
                "type": "threads.add_user_message",
                "params": {"thread_id": hot, "input": user_input("One more thing")},
            }
        ).encode()
        stored, turn = [], []
        for n in range(reps // 2 + 3):
            r = await conn.request("POST", "/chatkit", add, timeout=60)
            if not stream_ok(r):
                raise RuntimeError(f"add item: {r.status} {r.body[:300]!r}")
            if n >= 3:
                stored.append(r.ttfb)  # first event: the user item, already stored
                turn.append(r.total)
        await conn.close()
        out["add_item_p50_ms"] = pct(stored, 0.5) * 1000
        out["add_item_p99_ms"] = pct(stored, 0.99) * 1000
        out["add_turn_p50_ms"] = pct(turn, 0.5) * 1000
        return out

    # -- driver --------------------------------------------------------------------

    async def run(self, sections: set[str]) -> None:
        async with self.stack:
            try:
                self.provider = procs.Provider(self.workdir)
                self.pg_reason = await procs.postgres_available()
                if self.pg_reason:
                    self.notes.append(f"PostgreSQL skipped: {self.pg_reason}")
                databases = {
                    A: f"sqlite:///{self.workdir / 'overhead.db'}",
                    E: f"sqlite:///{self.workdir / 'overhead-litellm.db'}",
                }
                if self.pg_reason is None:
                    databases[B] = await self.pg_url()
                if "overhead" in sections:
                    await self.overhead(databases)
                if "conversations" in sections:
                    s = self.sizes
                    await conversations(self, s.conv_sequential, s.conv_workers, s.conv_per_worker)
                if "startup" in sections:
                    await self.startup(databases)
                if "streams" in sections:
                    await self.streams_and_stop(databases)
                if "store" in sections:
                    await self.store_scale()
                if "capacity" in sections:
                    if self.pg_reason is None:
                        await capacity(self, self.sizes.capacity_streams, self.sizes.capacity_turns)
                    else:
                        self.notes.append("capacity skipped: it needs PostgreSQL")
            finally:
                for srv in self.servers:
                    srv.stop()
                if self.provider is not None:
                    self.provider.stop()


# -- the table -----------------------------------------------------------------------


def _f(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ratio(x: Any, y: Any) -> str:
    try:
        ratio = x / y
    except (TypeError, ZeroDivisionError):
        return ""
    return "" if math.isnan(ratio) else f"{ratio:.2f}"


RATIOS = ((A, C), (B, C), (A, D), (E, C))
NO_RATIOS = [""] * len(RATIOS)


def _ratios(values: dict[str, Any]) -> list[str]:
    """The a/c, b/c, a/d and e/c cells of a row."""
    return [_ratio(values[x], values[y]) for x, y in RATIOS]


def build_table(results: dict[str, Any], sizes: Sizes) -> list[list[str]]:
    rows: list[list[str]] = []
    ratios = [f"{x}/{y}" for x, y in RATIOS]
    header = ["section", "metric", *LABELS.values(), *ratios, "target (issue 6)"]
    rows.append(header)

    def get(section: str, metric: str, key: str) -> Any:
        return results.get(section, {}).get(metric, {}).get(key)

    over = results.get("overhead", {})
    if over:
        for mode, label in (
            ("sequential", "sequential"),
            ("concurrent", f"{sizes.conc_workers} concurrent"),
        ):

            def val(key: str, field_: str) -> Any:
                data = get("overhead", mode, key)
                return data.get(field_) if data else None

            rate = {k: val(k, "turns_per_s") for k in LABELS}
            target = ""
            if rate[A] and rate[C]:
                target = f">=1.2x ref: {'yes' if rate[A] / rate[C] >= 1.2 else 'NO'}"
            rows.append(
                ["overhead", f"{label}: turns/s"]
                + [_f(rate[k]) for k in LABELS]
                + [*_ratios(rate), target]
            )
            for what, name in (
                ("ttfb", "first byte"),
                ("ttft", "first text"),
                ("end", "end of stream"),
            ):
                p50 = {k: val(k, f"{what}_p50_ms") for k in LABELS}
                p99 = {k: val(k, f"{what}_p99_ms") for k in LABELS}
                rows.append(
                    ["overhead", f"{label}: {name} p50 / p99 ms"]
                    + [
                        f"{_f(p50[k])} / {_f(p99[k])}" if p50[k] is not None else "-"
                        for k in LABELS
                    ]
                    + [*_ratios(p50), ""]
                )
            cpu = {k: val(k, "cpu_ms_per_turn") for k in LABELS}
            rows.append(
                ["overhead", f"{label}: server CPU ms/turn"]
                + [_f(cpu[k]) for k in LABELS]
                + [*_ratios(cpu), ""]
            )
            errors = {k: val(k, "errors") for k in LABELS}
            if any(errors.values()):
                rows.append(
                    ["overhead", f"{label}: errors"]
                    + [_f(errors[k]) for k in LABELS]
                    + [*NO_RATIOS, ""]
                )

    if results.get("concurrency"):
        data = {k: get("concurrency", "streams", k) or {} for k in LABELS}
        errors = {k: data[k].get("errors") for k in LABELS}
        ok = all(errors[k] == 0 for k in (A, B) if data[k])
        rows.append(
            ["concurrency", f"{sizes.streams} streams (20 ms chunks): errors"]
            + [_f(errors[k]) for k in LABELS]
            + [*NO_RATIOS, f"0 errors: {'yes' if ok else 'NO'}"]
        )
        for what, name in (
            ("ttfb", "first byte"),
            ("ttft", "first text"),
            ("end", "end of stream"),
        ):
            rows.append(
                ["concurrency", f"  {name} p50 / p99 ms"]
                + [
                    f"{_f(data[k].get(f'{what}_p50_ms'), 0)} / "
                    f"{_f(data[k].get(f'{what}_p99_ms'), 0)}"
                    if data[k]
                    else "-"
                    for k in LABELS
                ]
                + [*NO_RATIOS, ""]
            )
        rows.append(
            ["concurrency", "  peak RSS MB"]
            + [_f(data[k].get("peak_rss_mb"), 0) for k in LABELS]
            + [*NO_RATIOS, ""]
        )
        users = {k: get("concurrency", "streams_many_users", k) or {} for k in LABELS}
        if any(users.values()):
            rows.append(
                ["concurrency", f"  the same, {sizes.streams} users: errors"]
                + [_f(users[k].get("errors")) if users[k] else "-" for k in LABELS]
                + [*NO_RATIOS, ""]
            )
            rows.append(
                ["concurrency", f"  the same, {sizes.streams} users: first byte p50 / p99 ms"]
                + [
                    f"{_f(users[k].get('ttfb_p50_ms'), 0)} / {_f(users[k].get('ttfb_p99_ms'), 0)}"
                    if users[k]
                    else "-"
                    for k in LABELS
                ]
                + [*NO_RATIOS, ""]
            )

    store = results.get("store", {})
    if store:
        small, large = sizes.store_small, sizes.store_large
        label = f"{small[0] // 1000}k -> {large[0] // 1000}k threads ({large[1] // 1000}k items)"
        for op, name in (
            ("threads.list_p50_ms", "threads.list p50 ms"),
            ("items.list_p50_ms", "items.list p50 ms"),
            ("add_item_p50_ms", "add item p50 ms"),
        ):
            cells, worst = [], 0.0
            for k in LABELS:
                lo, hi = get("store", "small", k), get("store", "large", k)
                if lo and hi:
                    factor = hi[op] / lo[op]
                    worst = max(worst, factor)
                    cells.append(f"{lo[op]:.1f} -> {hi[op]:.1f} ({factor:.2f}x)")
                else:
                    cells.append("-")
            rows.append(
                [
                    "store",
                    f"{name}, {label}",
                    *cells,
                    *NO_RATIOS,
                    f"<=1.5x: {'yes' if worst <= 1.5 else 'NO'}" if worst else "",
                ]
            )

    if results.get("stop"):
        data = {k: get("stop", "stop", k) or {} for k in LABELS}
        rows.append(
            ["stop", "chunks after disconnect (of 100), median / max"]
            + [
                f"{_f(data[k].get('chunks_after_median'), 0)} / {data[k].get('chunks_after_max')}"
                if data[k]
                else "-"
                for k in LABELS
            ]
            + [
                *NO_RATIOS,
                "<=10: "
                + (
                    "yes"
                    if all(data[k].get("chunks_after_max", 99) <= 10 for k in (A, B) if data[k])
                    else "NO"
                ),
            ]
        )
        rows.append(
            ["stop", "upstream closed after, median ms"]
            + [
                (
                    _f(data[k].get("close_ms_median"), 0)
                    + (" (ran to end)" if data[k].get("ran_to_end") else "")
                )
                if data[k]
                else "-"
                for k in LABELS
            ]
            + [*NO_RATIOS, ""]
        )

    if results.get("startup"):
        ready = {k: get("startup", "ready", k) for k in LABELS}
        rss = {k: get("startup", "idle_rss_mb", k) for k in LABELS}
        ok = all(ready[k] is not None and ready[k] < 2 for k in (A, B) if ready[k] is not None)
        rows.append(
            ["start-up", "ready /health s"]
            + [_f(ready[k], 2) for k in LABELS]
            + [*_ratios(ready), f"<2 s: {'yes' if ok else 'NO'}"]
        )
        first = {k: get("startup", "first_reply", k) for k in LABELS}
        rows.append(
            ["start-up", "first reply done s (from start)"]
            + [_f(first[k], 2) for k in LABELS]
            + [*_ratios(first), ""]
        )
        rows.append(
            ["start-up", "idle RSS MB (after one reply)"]
            + [_f(rss[k], 0) for k in LABELS]
            + [*_ratios(rss), ""]
        )
    return rows


def render(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    commit = subprocess.run(
        ["git", "-C", str(procs.ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    load = Path("/proc/loadavg").read_text().split()[0]
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 1024 / 1024:.1f} GiB RAM, "
        f"Python {platform.python_version()}, commit {commit or '?'}, load {load}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a few minutes")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also py-spy the sequential turns of (a) and (c); stacks in bench/results/",
    )
    parser.add_argument(
        "--only",
        default="overhead,conversations,startup,streams,store,capacity",
        help="comma-separated sections: overhead,conversations (three-turn conversations on "
        "both routes),startup,streams (200 streams + stop),store,"
        "capacity (PostgreSQL, 2 workers: per-turn statements, memory per open stream)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    procs.ensure_reference_venv()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ckbench-"))
    bench = Bench(sizes, workdir, args.profile)
    began = time.perf_counter()
    load_before = Path("/proc/loadavg").read_text().split()[0]
    failed = False
    try:
        asyncio.run(bench.run(sections))
    except Exception as exc:
        failed = True
        print(f"benchmark failed: {type(exc).__name__}: {exc} (logs in {workdir})", file=sys.stderr)
    finally:
        if not args.keep and not failed:
            for path in sorted(workdir.rglob("*"), reverse=True):
                path.rmdir() if path.is_dir() else path.unlink()
            workdir.rmdir()
    elapsed = time.perf_counter() - began
    title = (
        f"python -m bench{' --quick' if args.quick else ''}: {machine()} "
        f"(at start {load_before}); {elapsed / 60:.1f} min"
    )
    print(title)
    print(render(build_table(bench.results, sizes)))
    for line in conversations_report(bench.results, sizes.conv_workers):
        print(line)
    for line in capacity_report(bench.results):
        print(line)
    for note in bench.notes:
        print(note)
    if bench.profile_lines:
        print()
        print("\n".join(bench.profile_lines))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    record = {
        "title": title,
        "sizes": asdict(sizes),
        "results": bench.results,
        "profile": bench.profile_lines,
    }
    (RESULTS_DIR / f"{stamp}{'-quick' if args.quick else ''}.json").write_text(
        json.dumps(record, indent=1, default=str)
    )
    return 1 if failed else 0
