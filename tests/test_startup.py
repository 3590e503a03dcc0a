"""Start-up: /health answers before the model libraries load; chat waits for them.

The Agents SDK, the OpenAI client and LiteLLM load in the background after start-up
(chat/runtime.py). A message that arrives in that window is answered once they are in;
/health/ready says 503 until then.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from chatkit_backend.chat import runtime

from .conftest import scripted_settings
from .databases import sqlite_url
from .live import live_server, parse_sse
from .processes import ServerProcess, clean_env
from .scripted_provider import ScriptedProvider, Text


def test_a_message_sent_the_moment_health_answers_gets_its_reply(
    tmp_path: Path, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("Loaded and answering."))
    env = clean_env(
        DATABASE_URL=sqlite_url(tmp_path),
        MODEL="openai/scripted",
        MODEL_API_BASE=provider.base_url,
        MODEL_API_KEY="test-key",
    )
    server = ServerProcess(env, tmp_path, ready_path="/health")
    try:
        reply = httpx.post(f"{server.url}/api/chat/stream", json={"message": "hello"}, timeout=60)
        assert reply.status_code == 200
        texts = [e["content"] for e in parse_sse(reply.text) if e["type"] == "text"]
        assert "".join(texts) == "Loaded and answering."
        assert httpx.get(f"{server.url}/health/ready", timeout=5).status_code == 200
    finally:
        server.stop()


def test_a_model_runtime_that_cannot_load_is_a_503_not_a_hang(
    tmp_path: Path, provider: ScriptedProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "CHAT_MODULES", ("chatkit_backend.no_such_module",))
    body: dict[str, Any] = {"message": "hello"}
    with live_server(scripted_settings(sqlite_url(tmp_path), provider)) as url:
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        chat = httpx.post(f"{url}/api/chat/stream", json=body, timeout=30)
        assert chat.status_code == 503
        assert chat.json()["code"] == "model_unavailable"
        ready = httpx.get(f"{url}/health/ready", timeout=5)
        assert ready.status_code == 503
        # The REST API does not need the model.
        assert httpx.get(f"{url}/api/conversations", timeout=5).status_code == 200
