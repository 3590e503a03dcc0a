"""Reads a pyinstrument session of a server and says where its main thread's time went.

pyinstrument samples the main thread (the event loop) from inside the process, so
stacks are exact. Time the loop spent waiting (its own native code: epoll, uvloop)
shows up as `Runner.run` itself and is reported as idle. SQLite runs in aiosqlite's
thread with the GIL released; its CPU is measured from /proc per-thread counters
instead (`thread_cpu`).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_PATH = re.compile(r"\((.*)\)$")

# (unused with pyinstrument's full paths; kept for stacks from other profilers)
_LITELLM_FILES = {
    "streaming_handler.py",
    "litellm_logging.py",
    "utils.py",
    "get_litellm_params.py",
    "core_helpers.py",
    "common_utils.py",
    "streaming_chunk_builder_utils.py",
    "logging_utils.py",
    "openai.py",
    "cost_calculator.py",
    "main.py",
}
# Generic helpers: a sample in them is charged to the library that called them.
_HELPERS = {
    "pydantic",
    "pydantic_core",
    "typing.py",
    "typing_extensions.py",
    "copy.py",
    "inspect.py",
    "<frozen abc>",
    "abc.py",
    "enum.py",
    "contextlib.py",
    "dataclasses.py",
    "functools.py",
    "json",
    "re",
    "uuid.py",
    "datetime.py",
    "weakref.py",
    "collections",
    "threading.py",
    "_weakrefset.py",
    "types.py",
}
BUCKETS = {
    "openai": "openai SDK (request build + response parse)",
    "litellm": "LiteLLM",
    "agents": "Agents SDK",
    "chatkit": "ChatKit SDK",
    "sql": "SQLAlchemy + DB driver",
    "ours": "app code (chatkit_backend / reference main.py)",
    "asgi": "uvicorn / Starlette / FastAPI / anyio",
    "http": "HTTP client to provider (aiohttp / httpx)",
    "logging": "logging",
    "title": "title request (whole subtree)",
    "watcher": "run watcher (whole subtree)",
    "loop": "event loop / other",
}
_PACKAGE_BUCKET = {
    "openai": "openai",
    "litellm": "litellm",
    "agents": "agents",
    "chatkit": "chatkit",
    "sqlalchemy": "sql",
    "aiosqlite": "sql",
    "asyncpg": "sql",
    "chatkit_backend": "ours",
    "main.py": "ours",  # the reference's app module
    "uvicorn": "asgi",
    "starlette": "asgi",
    "fastapi": "asgi",
    "anyio": "asgi",
    "aiohttp": "http",
    "httpx": "http",
    "httpcore": "http",
    "h11": "http",
    "logging": "logging",
}


@dataclass
class Sample:
    frames: list[str]  # root first, each "Class.function (short/path.py)"
    seconds: float


def _short(path: str, prefixes: list[str]) -> str:
    for prefix in prefixes:
        if path.startswith(prefix + "/"):
            return path[len(prefix) + 1 :]
    if "/src/" in path:
        return path.rsplit("/src/", 1)[1]
    return path.rsplit("/", 1)[-1] if path.startswith("/") else path


def _frame(identifier: str, prefixes: list[str]) -> str:
    head, *attributes = identifier.split("\x01")
    function, path, _line = ([*head.split("\x00"), "", ""])[:3]
    owner = next((a[1:] for a in attributes if a.startswith("c")), "")
    name = f"{owner}.{function}" if owner else function
    return f"{name} ({_short(path, prefixes)})"


def parse(path: Path) -> list[Sample]:
    """The frame records of a pyinstrument session (`-r pyisession`)."""
    session = json.loads(path.read_text())
    prefixes = sorted(
        (p.rstrip("/") for p in session.get("sys_path", []) if p.startswith("/")),
        key=len,
        reverse=True,
    )
    out = []
    for stack, seconds in session["frame_records"]:
        frames = [_frame(f, prefixes) for f in stack[1:]]  # [0] is the thread
        out.append(Sample(frames or ["<thread>"], float(seconds)))
    return out


def _package(frame: str) -> str:
    match = _PATH.search(frame)
    path = match.group(1) if match else frame
    head = path.split("/", 1)[0]
    if "/" not in path and head in _LITELLM_FILES and head != "main.py":
        return "litellm"
    return head


def bucket(frames: list[str]) -> str:
    joined = ";".join(frames)
    if "generate_title (" in joined:
        return "title"
    if "RunRegistry._watch (" in joined:
        return "watcher"
    for frame in reversed(frames):
        package = _package(frame)
        if package in _HELPERS:
            continue
        if package in _PACKAGE_BUCKET:
            return _PACKAGE_BUCKET[package]
    return "loop"


# Call sites behind the optimisation proposals in docs/benchmarks.md: inclusive time.
KEY_FRAMES = {
    "TypeAdapter.__init__ (": "pydantic TypeAdapter built per request (ChatKitServer.process)",
    "generate_title (": "title request (beside the reply)",
    "CustomStreamWrapper.__anext__ (": "LiteLLM: per-chunk stream wrapper",
    "LitellmModel._fetch_response (": "LiteLLM: building and sending the request",
    "async_maybe_transform (": "openai SDK: request params transform",
    "remove_cache_control_flag_from_messages_and_tools (": "LiteLLM: cache_control scrub",
    "Logging.async_success_handler (": "LiteLLM: success logging / cost",
    "Connection.execute (sqlalchemy": "SQLAlchemy Core execute (all statements)",
    "Admission.admit (": "admission: budget, run lock, rate",
    "RunRegistry.release (": "run lock release",
    "RunAccounting.finished (": "usage row + metrics",
    "with_fresh_ids (": "id remapping of events (with_fresh_ids)",
    "._serialize (chatkit": "ChatKit event -> JSON",
    ".to_agent_input (": "history -> model input",
}
IDLE_LEAVES = ("Runner.run (", "BaseEventLoop.run_until_complete (", "select (")
# Start-up and shutdown are not part of a turn.
NOT_SERVING = ("_find_and_load (", "lifespan (", "Server.startup (", "Server.shutdown (")


@dataclass
class Summary:
    busy: float  # seconds the main thread was not waiting, over the turns
    idle: float
    turns: int
    buckets: list[tuple[str, float]]
    self_top: list[tuple[str, float]]
    app_inclusive: list[tuple[str, float]]
    key_inclusive: list[tuple[str, float]]

    def ms(self, seconds: float) -> float:
        return seconds / max(1, self.turns) * 1000


def summarize(path: Path, turns: int, app_marker: str = "chatkit_backend/") -> Summary:
    buckets: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    app: Counter[str] = Counter()
    keys: Counter[str] = Counter()
    busy = idle = 0.0
    for s in parse(path):
        joined = ";".join(s.frames)
        if any(marker in joined for marker in NOT_SERVING):
            continue
        if s.frames[-1].startswith(IDLE_LEAVES):
            idle += s.seconds
            continue
        busy += s.seconds
        buckets[bucket(s.frames)] += s.seconds
        leaf[s.frames[-1]] += s.seconds
        for frame in {f for f in s.frames if app_marker in f and "cli.py" not in f}:
            app[frame] += s.seconds
        for key in KEY_FRAMES:
            if key in joined:
                keys[key] += s.seconds
    return Summary(
        busy,
        idle,
        turns,
        buckets.most_common(),
        leaf.most_common(12),
        app.most_common(14),
        [(k, keys[k]) for k in KEY_FRAMES],
    )


def report(name: str, summary: Summary, scale: float = 1.0) -> list[str]:
    """Lines for `summary`; ms are multiplied by `scale` (unprofiled / profiled CPU time)."""

    def ms(seconds: float) -> float:
        return summary.ms(seconds) * scale

    lines = [
        f"{name}: main thread busy {ms(summary.busy):.1f} ms/turn "
        f"(waiting {ms(summary.idle):.1f}), over {summary.turns} turns; ms scaled by "
        f"{scale:.2f} = CPU without / with the profiler",
        "  by library (helpers such as pydantic/typing charged to their caller):",
    ]
    for key, seconds in summary.buckets:
        share = 100 * seconds / max(1e-9, summary.busy)
        lines.append(f"    {share:5.1f}%  {ms(seconds):5.1f} ms/turn  {BUCKETS[key]}")
    lines.append("  top functions by own time:")
    for frame, seconds in summary.self_top:
        lines.append(f"    {ms(seconds):5.2f} ms/turn  {frame}")
    lines.append("  key call sites, inclusive:")
    for key, seconds in summary.key_inclusive:
        lines.append(f"    {ms(seconds):5.2f} ms/turn  {KEY_FRAMES[key]}")
    if summary.app_inclusive:
        lines.append("  app code, inclusive (time with the function on the stack):")
        for frame, seconds in summary.app_inclusive:
            lines.append(f"    {ms(seconds):5.2f} ms/turn  {frame}")
    return lines


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) so far per thread name of a process."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: Counter[str] = Counter()
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    for tid in tids:
        try:
            raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        utime, stime = int(fields[11]), int(fields[12])
        label = "main" if tid == str(pid) else re.sub(r"[-_]?\d+.*$", "", name) or name
        out[label] += (utime + stime) / ticks
    return dict(out)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
