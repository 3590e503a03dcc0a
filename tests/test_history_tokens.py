"""HISTORY_TOKENS, end to end: what the scripted provider is sent for a thread with long
messages and a big tool output (the todo agent's list_tasks over long descriptions)."""

from __future__ import annotations

from typing import Any

import pytest

from chatkit_backend.chat.history_budget import BYTES_PER_TOKEN

from .conftest import is_title_request
from .live import ChatKitClient
from .scripted_provider import Call, ScriptedProvider, Text, ToolCalls

BUDGET = 2000
CUT = "[cut to fit the conversation:"


def history_requests(provider: ScriptedProvider) -> list[dict[str, Any]]:
    """The first request of each turn: the one that carries the thread's history.

    Later requests of a turn add that turn's own tool calls, which the budget leaves alone.
    """
    requests = [r for r in provider.requests if not is_title_request(r)]
    return [r for r in requests if r["messages"][-1]["role"] == "user"]


def history(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request["messages"] if m["role"] != "system"]


def history_bytes(request: dict[str, Any]) -> int:
    """The bytes of history text sent: what the token estimate is made from (at most)."""
    size = 0
    for message in history(request):
        size += len((message.get("content") or "").encode())
        for call in message.get("tool_calls") or []:
            size += len((call["function"]["name"] + call["function"]["arguments"]).encode())
    return size


def pairs_are_whole(request: dict[str, Any]) -> bool:
    calls = {
        call["id"] for m in history(request) for call in m.get("tool_calls") or [] if call["id"]
    }
    outputs = {m["tool_call_id"] for m in history(request) if m["role"] == "tool"}
    return calls == outputs


@pytest.mark.parametrize(
    "server_options", [{"history_tokens": BUDGET, "max_message_chars": 10_000}]
)
async def test_a_long_thread_stays_under_its_token_budget(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    for n in range(8):
        created = await client.http.post(
            "/api/tasks", json={"title": f"task {n}", "description": f"{n} " * 490}
        )
        assert created.status_code == 201, created.text

    # Turn 1: a tool call whose output (the eight long descriptions) is over the budget.
    provider.enqueue(ToolCalls([Call("list_tasks", {}, call_id="call_list")]), Text("8 tasks."))
    thread_id, _ = await client.create_thread("list my tasks")
    tool_turn = [r for r in provider.requests if not is_title_request(r)][-1]
    full_output = next(m for m in tool_turn["messages"] if m["role"] == "tool")["content"]
    assert len(full_output.encode()) > BUDGET * BYTES_PER_TOKEN

    # Turn 2: the old output is shortened, and that is enough: nothing is dropped.
    long_one = "first long message " * 142  # 2,698 characters, about 900 tokens
    provider.enqueue(Text("Noted."))
    await client.send(thread_id, long_one)
    second = history_requests(provider)[-1]
    assert history_bytes(second) <= BUDGET * BYTES_PER_TOKEN
    assert history(second)[0] == {"role": "user", "content": "list my tasks"}
    tool_messages = [m for m in history(second) if m["role"] == "tool"]
    assert len(tool_messages) == 1 and CUT in tool_messages[0]["content"]
    assert full_output.startswith(tool_messages[0]["content"].split("\n" + CUT)[0])
    assert pairs_are_whole(second) and any(m.get("tool_calls") for m in history(second))
    assert history(second)[-1] == {"role": "user", "content": long_one}

    # Turn 3: a second long message; now the oldest turn goes whole, call and output together.
    long_two = "second long message " * 135
    provider.enqueue(Text("Noted too."))
    await client.send(thread_id, long_two)
    third = history_requests(provider)[-1]
    assert history_bytes(third) <= BUDGET * BYTES_PER_TOKEN
    contents = [m.get("content") for m in history(third)]
    assert "list my tasks" not in contents
    assert not any(m["role"] == "tool" or m.get("tool_calls") for m in history(third))
    assert contents[-3:] == [long_one, "Noted.", long_two]
    assert history(third)[0]["role"] == "user"

    # Turn 4: a message over the budget on its own is still sent, whole, and alone.
    huge = "a very long question " * 450
    await client.send(thread_id, huge)
    fourth = history_requests(provider)[-1]
    assert history(fourth) == [{"role": "user", "content": huge}]

    # HISTORY_ITEMS still reads the same newest items; the stored thread keeps everything.
    items = await client.items(thread_id)
    assert sum(i["type"] == "user_message" for i in items) == 4


KNOWN, UNKNOWN = "openai/gpt-4o-mini", "openai/scripted"  # LiteLLM knows only the first


@pytest.mark.parametrize("model_name", [KNOWN])
@pytest.mark.parametrize(
    "server_options", [{"models": f"{KNOWN},{UNKNOWN}", "max_message_chars": 30_000}]
)
async def test_the_budget_follows_the_model_of_the_turn(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    # About 6,700 estimated tokens each: three are over 16,000, far under gpt-4o-mini's 64,000.
    messages = [f"{n}" * 20_000 for n in range(4)]
    provider.enqueue(Text("One."), Text("Two."), Text("Three."), Text("Four."))
    thread_id, _ = await client.create_thread(messages[0])
    await client.send(thread_id, messages[1])
    await client.send(thread_id, messages[2])
    third = history_requests(provider)[-1]
    assert third["model"] == "gpt-4o-mini"
    assert [m["content"] for m in history(third) if m["role"] == "user"] == messages[:3]

    # The same thread on the model LiteLLM does not know: 16,000 tokens, the oldest go.
    body = {
        "content": [{"type": "input_text", "text": messages[3]}],
        "attachments": [],
        "inference_options": {"model": UNKNOWN},
    }
    events = await client.stream("threads.add_user_message", thread_id=thread_id, input=body)
    assert events[-1]["type"] != "error"
    fourth = history_requests(provider)[-1]
    assert fourth["model"] == "scripted"
    assert history_bytes(fourth) <= 16_000 * BYTES_PER_TOKEN
    assert [m["content"] for m in history(fourth)] == [messages[2], "Three.", messages[3]]
