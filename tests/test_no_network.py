"""Nothing reaches the network at import, at start-up or on a first turn, on any model route.

The real `chatkit-backend serve` runs with no LITELLM_LOCAL_MODEL_COST_MAP and no
OPENAI_AGENTS_DISABLE_TRACING in its environment (the server must keep itself offline),
under tests/network_guard/sitecustomize.py, which refuses and records every lookup or
connection beyond loopback. The model routes point at the scripted provider on loopback;
Gemini and Anthropic do not speak its protocol, so their first turn ends in a provider
error, which is fine here: it still went only to 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from .databases import sqlite_url
from .live import parse_sse
from .processes import ServerProcess, clean_env
from .scripted_provider import ScriptedProvider

GUARD = Path(__file__).parent / "network_guard"
# What the server must not depend on being set for it.
UNSET = ("LITELLM_LOCAL_MODEL_COST_MAP", "OPENAI_AGENTS_DISABLE_TRACING")


def guarded_env(tmp_path: Path, **settings: str) -> tuple[dict[str, str], Path]:
    log = tmp_path / "network.log"
    env = clean_env(
        DATABASE_URL=sqlite_url(tmp_path),
        NETWORK_GUARD_LOG=str(log),
        # A key the Agents SDK would send traces with, if it tried.
        OPENAI_API_KEY="sk-test-not-a-real-key",
        **settings,
    )
    for name in UNSET:
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(GUARD), env.get("PYTHONPATH")]))
    return env, log


def first_turn(url: str) -> list[dict[str, object]]:
    reply = httpx.post(f"{url}/api/chat/stream", json={"message": "show my tasks"}, timeout=90)
    assert reply.status_code == 200
    assert reply.text.rstrip().endswith("data: [DONE]")
    events = parse_sse(reply.text)
    assert events[-1]["type"] == "done"
    return events


def attempts(log: Path) -> str:
    return log.read_text() if log.exists() else ""


def interrupt(server: ServerProcess) -> int:
    """Ctrl+C, and wait for the exit: unlike SIGTERM's, it runs the at-exit handlers, where
    the Agents SDK sends the traces it still holds, so an attempt shows up by the end."""
    server.signal(signal.SIGINT)
    try:
        return server.proc.wait(timeout=60)
    finally:
        server.stop()


ROUTES = {
    "offline": {"MODEL": "offline"},
    "openai-direct": {"MODEL": "openai/scripted"},
    "litellm-openai": {"MODEL": "litellm/openai/scripted"},
    "litellm-gemini": {"MODEL": "gemini/gemini-2.5-flash", "GEMINI_API_KEY": "test-key"},
    "litellm-anthropic": {
        "MODEL": "anthropic/claude-sonnet-4-5",
        "ANTHROPIC_API_KEY": "test-key",
    },
}


@pytest.mark.parametrize("route", ROUTES)
def test_start_up_and_a_first_turn_stay_on_this_machine(
    tmp_path: Path, provider: ScriptedProvider, route: str
) -> None:
    settings = dict(ROUTES[route])
    if route != "offline":
        settings["MODEL_API_BASE"] = provider.base_url
        settings.setdefault("MODEL_API_KEY", "test-key")
    env, log = guarded_env(tmp_path, **settings)
    server = ServerProcess(env, tmp_path)
    try:
        events = first_turn(server.url)
        answered = [e for e in events if e["type"] in {"text", "error"}]
        assert answered, events
    finally:
        interrupt(server)
    assert attempts(log) == "", f"the server tried to reach the network:\n{attempts(log)}"


def test_the_guard_catches_the_trace_export_an_operator_opts_into(
    tmp_path: Path, provider: ScriptedProvider
) -> None:
    """The other tests would see an export: with AGENTS_TRACING=true one is attempted."""
    env, log = guarded_env(
        tmp_path,
        MODEL="openai/scripted",
        MODEL_API_BASE=provider.base_url,
        MODEL_API_KEY="test-key",
        AGENTS_TRACING="true",
    )
    server = ServerProcess(env, tmp_path)
    try:
        first_turn(server.url)
    finally:
        interrupt(server)
    assert "api.openai.com" in attempts(log)
