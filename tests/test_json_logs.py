"""LOG_FORMAT=json: every line the real server writes is one JSON object, and the lines of
a turn carry its request_id, user_id, thread_id and run_id."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from .databases import sqlite_url
from .live import parse_sse
from .processes import ServerProcess, clean_env
from .scripted_provider import Malformed, ScriptedProvider

API_KEY = "sk-json-logs-never-printed"


def test_json_log_lines_carry_the_ids_of_the_turn(
    tmp_path: Path, provider: ScriptedProvider
) -> None:
    env = clean_env(
        DATABASE_URL=sqlite_url(tmp_path),
        MODEL="openai/scripted",
        MODEL_API_BASE=provider.base_url,
        MODEL_API_KEY=API_KEY,
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
    )
    # A broken provider stream: the run logs an error from inside its own task.
    provider.enqueue(Malformed())
    server = ServerProcess(env, tmp_path)
    try:
        reply = httpx.post(
            f"{server.url}/api/chat/stream",
            json={"message": "hello"},
            headers={"X-Request-Id": "turn-0001"},
            timeout=30,
        )
        assert reply.status_code == 200
        assert [e["type"] for e in parse_sse(reply.text)][-2:] == ["error", "done"]
        thread_id = reply.headers["x-thread-id"]
    finally:
        server.stop()

    text = server.log_path.read_text()
    assert API_KEY not in text
    lines: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines() if line]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    turn = [line for line in lines if line.get("request_id") == "turn-0001"]
    failed = [line for line in turn if line["message"] == "agent run failed"]
    assert failed, f"the run's error is logged: {turn}"
    # The run's id is the server's own (runs/lease.py), not the client's request id.
    assert re.fullmatch(r"run_[0-9a-f]{32}", failed[0]["run_id"])
    ids = {
        "request_id": "turn-0001",
        "user_id": "local",
        "thread_id": thread_id,
        "run_id": failed[0]["run_id"],
    }
    assert all(line.items() >= ids.items() for line in failed)
    assert failed[0]["model"] == "openai/scripted", "a turn's lines name the model it ran on"
    assert "Traceback" in failed[0]["exception"]
    access = [line for line in turn if line["logger"] == "uvicorn.access"]
    assert len(access) == 1 and access[0].items() >= ids.items()
    assert "POST /api/chat/stream" in access[0]["message"]
