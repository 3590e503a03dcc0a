"""Production behaviour of runs on one server: locks, idempotency, stop, heartbeats,
limits, usage, metrics and provider faults (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from .conftest import is_title_request
from .live import ChatKitClient, assistant_text, parse_sse, start_stream, user_input
from .scripted_provider import Call, Error, Hang, Malformed, ScriptedProvider, Text, ToolCalls

SLOW = Text(" ".join(f"w{i}" for i in range(200)), chunk_chars=4, delay=0.02)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


async def test_a_second_message_while_a_run_is_active_is_409(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(SLOW)
    reader, thread_id = await start_stream(
        client, {"type": "threads.create", "params": {"input": user_input("long one")}}
    )
    first_item = (await client.items(thread_id))[0]["id"]
    attempts = [
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": user_input("again")},
        },
        {
            "type": "threads.retry_after_item",
            "params": {"thread_id": thread_id, "item_id": first_item},
        },
        {
            "type": "threads.custom_action",
            "params": {"thread_id": thread_id, "action": {"type": "x", "payload": {}}},
        },
    ]
    for body in attempts:
        body_json = problem(await client.post(body), 409)
        assert body_json["detail"] == "a response is already in progress"
    simple = await client.http.post(
        "/api/chat/stream", json={"message": "again", "thread_id": thread_id}
    )
    assert problem(simple, 409)["code"] == "run_in_progress"
    await client.http.post(f"/api/conversations/{thread_id}/stop")
    await asyncio.wait_for(reader, 10)
    items = await client.items(thread_id)
    assert [i["type"] for i in items].count("user_message") == 1, "nothing else was added"


async def test_an_idempotency_key_replay_is_409_and_adds_nothing(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("one"), Text("two"))
    thread_id, _ = await client.create_thread("hello")
    body = {
        "type": "threads.add_user_message",
        "params": {"thread_id": thread_id, "input": user_input("only once")},
    }
    headers = {"Idempotency-Key": "k-123"}
    first = await client.http.post("/chatkit", json=body, headers=headers)
    assert first.status_code == 200
    second = await client.http.post("/chatkit", json=body, headers=headers)
    assert problem(second, 409)["code"] == "duplicate_request"
    texts = [
        i["content"][0]["text"]
        for i in await client.items(thread_id)
        if i["type"] == "user_message"
    ]
    assert texts == ["hello", "only once"]


async def test_stop_ends_the_run_keeps_the_partial_and_closes_the_provider_stream(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(SLOW)
    reader, thread_id = await start_stream(
        client, {"type": "threads.create", "params": {"input": user_input("tell me")}}
    )
    stopped = await client.http.post(f"/api/conversations/{thread_id}/stop")
    assert stopped.json() == {"thread_id": thread_id, "stopping": True}
    text = await asyncio.wait_for(reader, 5)  # the client's stream ends normally
    record = await provider.wait_for_stream_end_async(-1, timeout=5)
    assert record.client_disconnected and record.chunks_sent < record.chunks_planned // 2
    assert not any(e["type"] == "error" for e in parse_sse(text))
    # The partial is saved by the run as it winds down, which may be just after the
    # client's stream has ended: wait for it (a loaded machine is slow), then check it.
    partial: list[dict[str, Any]] = []
    for _ in range(100):
        items = await client.items(thread_id)
        partial = [i for i in items if i["type"] == "assistant_message"]
        if partial:
            break
        await asyncio.sleep(0.05)
    assert partial and 0 < len(partial[0]["content"][0]["text"]) < len(SLOW.text)

    idle = await client.http.post(f"/api/conversations/{thread_id}/stop")
    assert idle.json()["stopping"] is False
    missing = await client.http.post("/api/conversations/thr_missing/stop")
    problem(missing, 404)
    provider.enqueue(Text("after the stop"))
    assert assistant_text(await client.send(thread_id, "go on")) == "after the stop"


@pytest.mark.parametrize("server_options", [{"heartbeat_seconds": 0.2}])
async def test_heartbeats_while_the_provider_is_silent(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("late", initial_delay=1.2), Text("late again", initial_delay=1.2))
    response = await client.post(
        {"type": "threads.create", "params": {"input": user_input("wait for it")}}
    )
    assert response.text.count(": ping\n\n") >= 3
    assert assistant_text(parse_sse(response.text)) == "late"
    simple = await client.http.post("/api/chat/stream", json={"message": "and you?"})
    assert simple.text.count(": ping\n\n") >= 3


@pytest.mark.parametrize("server_options", [{"rate_limit_messages_per_minute": 2}])
async def test_the_message_rate_limit_is_429_with_retry_after(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    thread_id, _ = await client.create_thread("one")
    await client.send(thread_id, "two")
    body = {
        "type": "threads.add_user_message",
        "params": {"thread_id": thread_id, "input": user_input("three")},
    }
    response = await client.post(body)
    assert problem(response, 429)["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    # Reads are not limited.
    for _ in range(5):
        await client.call("threads.list")
        await client.items(thread_id)


@pytest.mark.parametrize("server_options", [{"max_concurrent_runs_per_user": 1}])
async def test_too_many_concurrent_runs_is_429(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(SLOW)
    reader, thread_id = await start_stream(
        client, {"type": "threads.create", "params": {"input": user_input("first")}}
    )
    response = await client.post(
        {"type": "threads.create", "params": {"input": user_input("second")}}
    )
    assert problem(response, 429)["code"] == "too_many_runs"
    assert response.headers["retry-after"]
    await client.http.post(f"/api/conversations/{thread_id}/stop")
    await asyncio.wait_for(reader, 10)


@pytest.mark.parametrize("server_options", [{"daily_token_budget": 50}])
async def test_usage_is_recorded_and_the_budget_enforced(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("counted", usage=(30, 25)))
    thread_id, _ = await client.create_thread("count me")
    usage = (await client.http.get("/api/usage", params={"days": 7})).json()
    assert usage["total"] == {"input_tokens": 30, "output_tokens": 25, "turns": 1}
    assert len(usage["by_day"]) == 1 and usage["by_day"][0]["turns"] == 1
    response = await client.post(
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": user_input("more")},
        }
    )
    body = problem(response, 429)
    assert body["code"] == "token_budget_exceeded" and "budget" in body["detail"]


async def test_metrics_count_turns_tools_and_tokens(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    def sample(text: str, name: str) -> float:
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    before = (await client.http.get("/metrics")).text
    provider.enqueue(ToolCalls([Call("list_tasks", {})], usage=(7, 3)), Text("none", usage=(11, 5)))
    await client.create_thread("list")
    after = (await client.http.get("/metrics")).text
    assert "# TYPE chatkit_active_streams gauge" in after
    delta = {
        name: sample(after, name) - sample(before, name)
        for name in (
            "chatkit_turns_total",
            "chatkit_tool_calls_total",
            "chatkit_tokens_total",
            "chatkit_turn_seconds_count",
            "chatkit_first_token_seconds_count",
        )
    }
    assert delta == {
        "chatkit_turns_total": 1,
        "chatkit_tool_calls_total": 1,
        "chatkit_tokens_total": 7 + 3 + 11 + 5,
        "chatkit_turn_seconds_count": 1,
        "chatkit_first_token_seconds_count": 1,
    }


@pytest.mark.parametrize("server_options", [{"model_timeout_seconds": 1.0}])
async def test_a_hanging_provider_times_out_with_an_error_event(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Hang())
    thread_id, events = await asyncio.wait_for(client.create_thread("anyone there?"), 10)
    errors = [e for e in events if e["type"] == "error"]
    assert errors and "too long" in errors[0]["message"]
    provider.enqueue(Text("back"))
    assert assistant_text(await client.send(thread_id, "now?")) == "back"


async def test_a_malformed_provider_stream_is_an_error_event(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Malformed())
    thread_id, events = await client.create_thread("hello")
    assert [e for e in events if e["type"] == "error"]
    assert (await client.items(thread_id))[0]["type"] == "user_message"


async def test_the_request_id_is_accepted_and_returned(client: ChatKitClient) -> None:
    response = await client.http.get("/api/tasks", headers={"X-Request-Id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = await client.http.get("/api/tasks", headers={"X-Request-Id": "bad id!"})
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])


async def test_a_repeated_long_request_id_does_not_collide_between_runs(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    """X-Request-Id is the client's (up to 128 characters, and a retrying proxy may send
    the same one twice): two runs at once under one id are both admitted, and both
    recorded, on PostgreSQL too, where a run's id column holds 64."""
    same = {"X-Request-Id": "r" * 100}
    repeated = ChatKitClient(str(client.http.base_url), headers=same)
    try:
        provider.enqueue(SLOW)
        provider.enqueue(SLOW)
        first, _ = await start_stream(
            repeated, {"type": "threads.create", "params": {"input": user_input("one")}}
        )
        second, _ = await start_stream(
            repeated, {"type": "threads.create", "params": {"input": user_input("two")}}
        )
        for reader in (first, second):
            events = parse_sse(await asyncio.wait_for(reader, 30))
            assert events[-1]["type"] != "error" and assistant_text(events).startswith("w0")
    finally:
        await repeated.aclose()
    usage = (await client.http.get("/api/usage", params={"days": 1})).json()
    assert usage["total"]["turns"] == 2


async def test_provider_errors_before_the_first_token_are_retried_with_backoff(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Error(429, retry_after=0.2), Error(503), Text("third time lucky"))
    _, events = await client.create_thread("please work")
    assert assistant_text(events) == "third time lucky"
    chat = [r for r in provider.requests if not is_title_request(r)]
    assert len(chat) == 3


async def test_a_stream_that_breaks_once_started_is_not_retried(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Malformed(), Text("never sent"))
    thread_id, events = await client.create_thread("hello")
    assert [e for e in events if e["type"] == "error"]
    chat = [r for r in provider.requests if not is_title_request(r)]
    assert len(chat) == 1
    # The queued "never sent" answers the next turn: the failed one was not retried.
    assert assistant_text(await client.send(thread_id, "again")) == "never sent"
