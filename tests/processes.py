"""Run the real `chatkit-backend` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from .live import free_port

COMMAND = shutil.which("chatkit-backend") or str(Path(sys.executable).with_name("chatkit-backend"))

# Variables a developer's shell may carry that would change what the server does.
_SCRUB = (
    "MODEL",
    "MODEL_API_BASE",
    "MODEL_API_KEY",
    "GEMINI_API_KEY",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "DATABASE_URL",
    "BETTER_AUTH_SECRET",
    "AUTH_SECRET",
    "AUTH_JWKS_URL",
    "AUTH_ISSUER",
    "AUTH_AUDIENCE",
    "AGENT",
    "MODELS",
    "SYSTEM_PROMPT",
    "SYSTEM_PROMPT_FILE",
)


def clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(overrides)
    return env


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


class ServerProcess:
    """`chatkit-backend serve` on a free port, in its own process group, once ready."""

    def __init__(
        self,
        env: dict[str, str],
        cwd: Path,
        *extra: str,
        ready_path: str = "/health/ready",
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / f"serve-{self.port}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [COMMAND, "serve", "--port", str(self.port), *extra],
            env=env,
            cwd=cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                self.log.close()
                raise RuntimeError(self.log_path.read_text())
            try:
                if httpx.get(f"{self.url}{ready_path}", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not become ready")
            time.sleep(0.1)

    def signal(self, signum: int) -> None:
        os.killpg(self.proc.pid, signum)

    def stop(self) -> None:
        """SIGTERM (a graceful shutdown), then SIGKILL if it takes over 30 s."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait()
        self.log.close()


@contextmanager
def served(env: dict[str, str], cwd: Path, *extra: str) -> Iterator[str]:
    """A served URL until the block ends."""
    server = ServerProcess(env, cwd, *extra)
    try:
        yield server.url
    finally:
        server.stop()
