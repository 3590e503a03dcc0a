# ruff: noqa: ASYNC109, ASYNC220 - hand-run tool: plain timeouts, blocking calls
"""Processes the benchmark starts: the servers under test, the provider, the profiler.

Every process is started here and stopped by its own pid; nothing else is touched.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.databases import admin_connection, throwaway_postgres
from tests.live import free_port
from tests.processes import clean_env as tests_clean_env

from .client import wait_ready

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
REFERENCE_DIR = ROOT / "bench" / "reference"
REFERENCE_PYTHON = REFERENCE_DIR / ".venv" / "bin" / "python"

UNLIMITED = "1000000"


def clean_env(**extra: str) -> dict[str, str]:
    """The tests' scrubbed environment, kept off the network at import."""
    return tests_clean_env(
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        OPENAI_AGENTS_DISABLE_TRACING="1",
        PYTHONUNBUFFERED="1",
        **extra,
    )


# Our server's two routes to an OpenAI-compatible provider (agent/models.py).
OPENAI_ROUTE = "openai/bench"
LITELLM_ROUTE = "litellm/openai/bench"


def ours_env(database_url: str, provider_url: str, model: str = OPENAI_ROUTE) -> dict[str, str]:
    return clean_env(
        DATABASE_URL=database_url,
        MODEL=model,
        MODEL_API_BASE=provider_url,
        MODEL_API_KEY="x",
        RATE_LIMIT_MESSAGES_PER_MINUTE=UNLIMITED,
        MAX_CONCURRENT_RUNS_PER_USER=UNLIMITED,
    )


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (kB) of a live process; empty if it is gone."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                out[name] = int(value.split()[0])
    except OSError:
        pass
    return out


@dataclass
class Server:
    """One server process under test, listening on 127.0.0.1:port."""

    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    startup_seconds: float = 0.0
    began: float = 0.0  # perf_counter at Popen
    stop_signal: int = signal.SIGTERM

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float = 90.0) -> float:
        """Start and wait for GET /health; returns the start-up time in seconds."""
        command = [arg.replace("{port}", str(self.port)) for arg in self.command]
        log = open(self.log_path, "ab")  # noqa: SIM115, ASYNC230 - the child writes it
        began = self.began = time.perf_counter()
        self.proc = subprocess.Popen(
            command, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        try:
            ready = await wait_ready(self.port, timeout=timeout)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{self.name} did not start; see {self.log_path}") from None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited; see {self.log_path}")
        self.startup_seconds = ready - began
        return self.startup_seconds

    def memory_mb(self) -> tuple[float, float]:
        """(current RSS, peak RSS) in MB."""
        status = proc_status(self.pid)
        return status.get("VmRSS", 0) / 1024, status.get("VmHWM", 0) / 1024

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(self.stop_signal)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def ours(
    name: str,
    database_url: str,
    provider_url: str,
    workdir: Path,
    model: str = OPENAI_ROUTE,
    extra_env: dict[str, str] | None = None,
) -> Server:
    return Server(
        name,
        [str(VENV_BIN / "chatkit-backend"), "serve", "--port", "{port}"],
        {**ours_env(database_url, provider_url, model), **(extra_env or {})},
        workdir,
        workdir / f"{name}.log",
    )


def reference(provider_url: str, workdir: Path) -> Server:
    env = clean_env(MODEL="openai/bench", MODEL_API_BASE=provider_url, MODEL_API_KEY="x")
    command = [str(REFERENCE_PYTHON), "-m", "uvicorn", "main:app", "--host", "127.0.0.1"]
    command += ["--port", "{port}", "--app-dir", str(REFERENCE_DIR)]
    return Server("reference", command, env, workdir, workdir / "reference.log")


def ceiling(events: int, event_bytes: int, workdir: Path) -> Server:
    env = clean_env(CEILING_EVENTS=str(events), CEILING_EVENT_BYTES=str(event_bytes))
    command = [str(VENV_BIN / "python"), "-m", "uvicorn", "bench.ceiling:app"]
    command += ["--host", "127.0.0.1", "--port", "{port}", "--app-dir", str(ROOT)]
    return Server("ceiling", command, env, workdir, workdir / "ceiling.log")


def ensure_reference_venv() -> None:
    """Create bench/reference/.venv from the seed's requirements (once; needs PyPI)."""
    if REFERENCE_PYTHON.exists():
        return
    uv = shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv is needed to build the reference's venv (pip install uv)")
    print("building bench/reference/.venv from the seed's requirements ...", file=sys.stderr)
    venv = str(REFERENCE_DIR / ".venv")
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, venv], check=True)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--python",
            str(REFERENCE_PYTHON),
            "-r",
            str(REFERENCE_DIR / "requirements.txt"),
            "-c",
            str(REFERENCE_DIR / "constraints.txt"),
        ],
        check=True,
        timeout=600,
    )


class Provider:
    """bench/provider.py in a child process, steered over its stdin/stdout."""

    def __init__(self, workdir: Path) -> None:
        self.log = open(workdir / "provider.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "python"), "-m", "bench.provider"],
            cwd=ROOT,
            env=clean_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        self.base_url: str = self._read()["base_url"]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the scripted provider exited; see provider.log")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def command(self, cmd: str, **params: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **params}).encode() + b"\n")
        self.proc.stdin.flush()
        answer = self._read()
        if not answer.get("ok"):
            raise RuntimeError(f"provider: {answer}")
        return answer

    def mode(self, mode: str) -> None:
        self.command("mode", mode=mode)

    def last_stream(self) -> dict[str, Any] | None:
        streams = self.command("streams", last=1)["streams"]
        return streams[0] if streams else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A throw-away PostgreSQL database (created, yielded as a URL, dropped)."""
    async with throwaway_postgres("ckbench") as url:
        yield url


async def postgres_available() -> str | None:
    """None if PostgreSQL answers, else why not."""
    try:
        admin = await admin_connection()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    await admin.close()
    return None


def migrate(database_url: str, workdir: Path) -> None:
    """`chatkit-backend migrate`: the schema the server itself would create."""
    subprocess.run(
        [str(VENV_BIN / "chatkit-backend"), "migrate"],
        env=clean_env(DATABASE_URL=database_url),
        cwd=workdir,
        check=True,
        capture_output=True,
        timeout=120,
    )


def profiled(server: Server, output: Path, interval: float = 0.001) -> Server:
    """The same server run under pyinstrument (stop it with SIGINT to get `output`)."""
    python = REFERENCE_PYTHON if server.command[0] == str(REFERENCE_PYTHON) else VENV_BIN / "python"
    if python == REFERENCE_PYTHON:
        _ensure_reference_pyinstrument()
    head = [str(python), "-m", "pyinstrument", "-r", "pyisession", "-o", str(output)]
    head += ["-i", str(interval)]
    # `python -m uvicorn ...` loses its python; a console script is a Python file.
    rest = server.command[1:] if server.command[1:2] == ["-m"] else server.command
    return Server(
        f"{server.name}-profiled",
        head + rest,
        server.env,
        server.cwd,
        server.cwd / f"{server.name}-profiled.log",
        stop_signal=signal.SIGINT,
    )


def _ensure_reference_pyinstrument() -> None:
    check = subprocess.run(
        [str(REFERENCE_PYTHON), "-c", "import pyinstrument"], capture_output=True
    )
    if check.returncode == 0:
        return
    uv = shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv is needed to add pyinstrument to the reference's venv")
    # Profiling only: the reference's own requirements stay as the seed wrote them.
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(REFERENCE_PYTHON), "pyinstrument==5.1.3"],
        check=True,
        timeout=300,
    )
