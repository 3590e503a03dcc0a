# ruff: noqa: ASYNC109 - hand-run tool: plain timeouts
"""The conversations section: three-turn conversations on both model routes.

Where users are: a new thread, then two follow-ups that load its history, with the
provider answering the title request like any other request (the same 240-character
reply, so a title costs the provider and the route as much as a reply). Each of our
servers runs on both routes (the OpenAI client for `openai/...`, LiteLLM for
`litellm/openai/...`, the route Gemini and Anthropic take), on SQLite and PostgreSQL;
the reference runs once (it always goes through LiteLLM). Sequential (one connection,
conversations back to back) and 20 conversations at once, in rounds whose server order
alternates so drift hits all. Afterwards every conversation of our servers is read back:
six items and a title, or the run counts as failed.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import procs
from .client import Connection, Response, stream_ok, user_input
from .profile import process_cpu

if TYPE_CHECKING:
    from .run import Bench

SECTION = "conversations"
# key -> (label, database, route); "c" is the reference (LiteLLM, in memory).
SERVERS: dict[str, tuple[str, str, str]] = {
    "a": ("(a) SQLite, OpenAI client", "sqlite", procs.OPENAI_ROUTE),
    "e": ("(e) SQLite, LiteLLM", "sqlite", procs.LITELLM_ROUTE),
    "b": ("(b) PostgreSQL, OpenAI client", "postgres", procs.OPENAI_ROUTE),
    "f": ("(f) PostgreSQL, LiteLLM", "postgres", procs.LITELLM_ROUTE),
    "c": ("(c) reference", "memory", "openai/bench via LiteLLM"),
}
# Ratio columns: each of ours to the reference, and PostgreSQL to SQLite on one route.
RATIOS = (("a", "c"), ("e", "c"), ("b", "a"), ("f", "e"))
TURN_TEXTS = ("Hello, benchmark", "And a follow-up question", "One more thing, please")
TURNS_PER_CONVERSATION = len(TURN_TEXTS)


@dataclass
class Block:
    """Turns of one server in one mode, summed over rounds."""

    turns: int = 0
    errors: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    # first byte / first text of the first turn (new thread) and of follow-ups
    ttfb_new: list[float] = field(default_factory=list)
    ttft_new: list[float] = field(default_factory=list)
    ttft_follow: list[float] = field(default_factory=list)
    end: list[float] = field(default_factory=list)
    threads: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        from .run import pct

        ok = self.turns - self.errors
        return {
            "turns_per_s": ok / self.seconds if self.seconds else None,
            "conversations_per_s": ok / TURNS_PER_CONVERSATION / self.seconds
            if self.seconds
            else None,
            "new_ttfb_p50_ms": pct(self.ttfb_new, 0.5) * 1000,
            "new_ttft_p50_ms": pct(self.ttft_new, 0.5) * 1000,
            "follow_ttft_p50_ms": pct(self.ttft_follow, 0.5) * 1000,
            "follow_ttft_p99_ms": pct(self.ttft_follow, 0.99) * 1000,
            "end_p50_ms": pct(self.end, 0.5) * 1000,
            "end_p99_ms": pct(self.end, 0.99) * 1000,
            "cpu_ms_per_turn": self.cpu / max(1, self.turns) * 1000,
            "turns": self.turns,
            "errors": self.errors,
            "failures": self.failures[:5],
        }


def _thread_id(response: Response) -> str | None:
    for event in response.events():
        if event.get("type") == "thread.created":
            thread_id = event.get("thread", {}).get("id")
            return thread_id if isinstance(thread_id, str) else None
    return None


def _body(kind: str, **params: Any) -> bytes:
    return json.dumps({"type": kind, "params": params}).encode()


async def conversation(conn: Connection, block: Block, timeout: float = 120.0) -> None:
    """One three-turn conversation; each turn's outcome goes into `block`."""
    thread_id: str | None = None
    for number, text in enumerate(TURN_TEXTS):
        block.turns += 1
        if number == 0:
            body = _body("threads.create", input=user_input(text))
        elif thread_id is None:
            block.errors += 1  # no thread to follow up on
            continue
        else:
            body = _body("threads.add_user_message", thread_id=thread_id, input=user_input(text))
        try:
            response = await conn.request("POST", "/chatkit", body, timeout=timeout)
        except Exception as exc:
            block.errors += 1
            block.failures.append(f"turn {number + 1}: {type(exc).__name__}")
            continue
        if not stream_ok(response):
            block.errors += 1
            block.failures.append(f"turn {number + 1}: {response.status} {response.body[-200:]!r}")
            continue
        block.end.append(response.total)
        if number == 0:
            thread_id = _thread_id(response)
            if thread_id is not None:
                block.threads.append(thread_id)
            block.ttfb_new.append(response.ttfb)
            if response.ttft is not None:
                block.ttft_new.append(response.ttft)
        elif response.ttft is not None:
            block.ttft_follow.append(response.ttft)


async def sequential(port: int, conversations: int, block: Block) -> None:
    conn = Connection(port)
    began = time.perf_counter()
    for _ in range(conversations):
        await conversation(conn, block)
    block.seconds += time.perf_counter() - began
    await conn.close()


async def concurrent(port: int, workers: int, per_worker: int, block: Block) -> None:
    start = asyncio.Event()

    async def worker() -> None:
        conn = Connection(port)
        await start.wait()
        for _ in range(per_worker):
            await conversation(conn, block)
        await conn.close()

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    await asyncio.sleep(0)
    began = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    block.seconds += time.perf_counter() - began


async def persisted(port: int, threads: list[str]) -> tuple[int, list[str]]:
    """How many of `threads` were stored whole (six items and a title), and what was not."""
    conn = Connection(port)
    whole, problems = 0, []
    for thread_id in threads:
        response = await conn.request(
            "POST", "/chatkit", _body("threads.get_by_id", thread_id=thread_id), timeout=30
        )
        thread = response.json() if response.status == 200 else {}
        items = thread.get("items", {}).get("data", [])
        kinds = sorted(item.get("type") for item in items)
        wanted = ["assistant_message"] * 3 + ["user_message"] * 3
        if kinds == wanted and thread.get("title"):
            whole += 1
        elif len(problems) < 5:
            problems.append(f"{thread_id}: {response.status} {kinds} title={thread.get('title')!r}")
    await conn.close()
    return whole, problems


async def run_section(bench: Bench, sequential_n: int, workers: int, per_worker: int) -> None:
    servers: dict[str, procs.Server] = {}
    for key, (_label, database, route) in SERVERS.items():
        if database == "postgres" and bench.pg_reason is not None:
            continue
        if key == "c":
            srv = procs.reference(bench.prov.base_url, bench.workdir)
        else:
            url = (
                f"sqlite:///{bench.workdir / f'conversations-{key}.db'}"
                if database == "sqlite"
                else await bench.pg_url()
            )
            srv = procs.ours(f"conv-{key}", url, bench.prov.base_url, bench.workdir, route)
        bench.servers.append(srv)
        servers[key] = srv
    bench.prov.mode("conversation")
    for key, srv in servers.items():
        await srv.start()
        warm = Block()
        conn = Connection(srv.port)
        for _ in range(3):
            await conversation(conn, warm)
        await conn.close()
        if warm.errors:
            raise RuntimeError(f"{SERVERS[key][0]} warm-up failed: {warm.failures}")
        bench.log(f"conversations: {SERVERS[key][0]} up on :{srv.port}")

    seq = {k: Block() for k in servers}
    conc = {k: Block() for k in servers}
    order = list(servers)
    for round_no in range(bench.sizes.rounds):
        keys = order if round_no % 2 == 0 else order[::-1]
        for mode, blocks in (("sequential", seq), ("concurrent", conc)):
            for key in keys:
                srv, block = servers[key], blocks[key]
                turns_before, seconds_before = block.turns, block.seconds
                cpu = process_cpu(srv.pid)
                if mode == "sequential":
                    await sequential(srv.port, sequential_n, block)
                else:
                    await concurrent(srv.port, workers, per_worker, block)
                block.cpu += process_cpu(srv.pid) - cpu
                rate = (block.turns - turns_before) / (block.seconds - seconds_before)
                bench.log(
                    f"round {round_no + 1}: conversations {mode} {SERVERS[key][0]} "
                    f"{rate:.1f} turns/s"
                )
            bench.prov.command("reset")

    for key, srv in servers.items():
        for mode, blocks in (("sequential", seq), ("concurrent", conc)):
            summary = blocks[key].summary()
            if key != "c":
                whole, problems = await persisted(srv.port, blocks[key].threads)
                summary["threads"] = len(blocks[key].threads)
                summary["threads_whole"] = whole
                summary["persist_problems"] = problems
            bench.put(SECTION, mode, key, summary)
        srv.stop()
    bench.prov.mode("overhead")


def _cell(value: Any, digits: int = 1) -> str:
    if value is None or value != value:  # None or nan
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def report(results: dict[str, Any], workers: int) -> list[str]:
    """The section's own table, printed under the main one."""
    section = results.get(SECTION)
    if not section:
        return []
    keys = [k for k in SERVERS if any(k in section.get(m, {}) for m in section)]
    header = ["metric", *(SERVERS[k][0] for k in keys), *(f"{x}/{y}" for x, y in RATIOS)]
    rows = [header]
    for mode, label in (("sequential", "sequential"), ("concurrent", f"{workers} at once")):
        data = {k: section.get(mode, {}).get(k, {}) for k in keys}
        for metric, name, digits in (
            ("turns_per_s", "turns/s", 1),
            ("new_ttfb_p50_ms", "first byte p50 ms (new thread)", 1),
            ("new_ttft_p50_ms", "first text p50 ms (new thread)", 1),
            ("follow_ttft_p50_ms", "first text p50 ms (follow-up)", 1),
            ("end_p99_ms", "end of turn p99 ms", 1),
            ("cpu_ms_per_turn", "server CPU ms/turn", 1),
            ("errors", "errors", 0),
        ):
            values = {k: data[k].get(metric) for k in keys}
            ratios = []
            for x, y in RATIOS:
                vx, vy = values.get(x), values.get(y)
                ratios.append(f"{vx / vy:.2f}" if vx and vy and metric != "errors" else "")
            rows.append([f"{label}: {name}", *(_cell(values[k], digits) for k in keys), *ratios])
        stored = {
            k: f"{data[k]['threads_whole']}/{data[k]['threads']}" if "threads" in data[k] else "-"
            for k in keys
        }
        rows.append([f"{label}: threads stored whole", *stored.values(), *[""] * len(RATIOS)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "conversations (3 turns each; title requests answered like replies; "
        "ratios: x/y of turns/s, higher is faster, or of ms, higher is slower):"
    ]
    for n, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(row)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for key in keys:
        for mode in ("sequential", "concurrent"):
            problems = section.get(mode, {}).get(key, {})
            for text in problems.get("persist_problems", []) + problems.get("failures", []):
                lines.append(f"  {SERVERS[key][0]} {mode}: {text}")
    return lines
