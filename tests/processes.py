"""Run the real `chatkit-backend` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
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


@contextmanager
def served(env: dict[str, str], cwd: Path, *extra: str) -> Iterator[str]:
    """`chatkit-backend serve` on a free port until the block ends (then SIGTERM)."""
    port = free_port()
    log = open(cwd / f"serve-{port}.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [COMMAND, "serve", "--port", str(port), *extra],
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError((cwd / f"serve-{port}.log").read_text())
            try:
                if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
