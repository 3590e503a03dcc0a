"""The simple SSE chat format, and that it shares threads with the ChatKit protocol."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from .live import ChatKitClient, assistant_text
from .scripted_provider import Call, Error, ScriptedProvider, Text, ToolCalls


async def simple(
    http: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> tuple[httpx.Response, list[Any]]:
    response = await http.post(path, json=body)
    if response.status_code != 200:
        return response, []
    frames = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert frames[-1] == "[DONE]"
    return response, [json.loads(f) for f in frames[:-1]]


@pytest.mark.parametrize("path", ["/chatkit", "/api/chat/stream"])
async def test_the_seeds_curl_example_streams_the_simple_format(
    client: ChatKitClient, provider: ScriptedProvider, path: str
) -> None:
    provider.enqueue(
        ToolCalls([Call("list_tasks", {}, call_id="call_list1")]), Text("You have no tasks.")
    )
    response, events = await simple(client.http, path, {"message": "Show my tasks"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    thread_id = response.headers["x-thread-id"]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "thinking"
    assert kinds[-1] == "done"
    assert {"type": "tool_call", "id": "call_list1", "name": "list_tasks", "args": {}} in events
    result = next(e for e in events if e["type"] == "tool_result")
    assert result["id"] == "call_list1" and result["result"]["ok"] is True
    text = "".join(e["content"] for e in events if e["type"] == "text")
    assert text == "You have no tasks."
    done = events[-1]
    assert done["thread_id"] == thread_id and done["message_id"].startswith("msg_")

    # The conversation is a ChatKit thread: continue it there.
    provider.enqueue(Text("Still none."))
    events2 = await client.send(thread_id, "and now?")
    assert assistant_text(events2) == "Still none."
    items = await client.items(thread_id)
    assert items[0]["content"][0]["text"] == "Show my tasks"
    assert done["message_id"] in [i["id"] for i in items]


async def test_a_chatkit_thread_continues_in_the_simple_format(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("first answer"), Text("second answer"))
    thread_id, _ = await client.create_thread("first question")
    response, events = await simple(
        client.http, "/api/chat/stream", {"message": "second question", "thread_id": thread_id}
    )
    assert response.headers["x-thread-id"] == thread_id
    assert "".join(e["content"] for e in events if e["type"] == "text") == "second answer"
    items = await client.items(thread_id)
    assert [i["type"] for i in items] == ["user_message", "assistant_message"] * 2


async def test_simple_format_errors(client: ChatKitClient, provider: ScriptedProvider) -> None:
    for body in ({"message": ""}, {"message": "   \n"}, {"message": None}):
        response, _ = await simple(client.http, "/api/chat/stream", body)
        assert response.status_code == 400
        assert response.json()["detail"] == "Message is required"
    response, _ = await simple(client.http, "/chatkit", {"message": "  "})
    assert response.status_code == 400
    response, _ = await simple(client.http, "/api/chat/stream", {"message": "x" * 4001})
    assert response.status_code == 400
    response, _ = await simple(
        client.http, "/api/chat/stream", {"message": "hi", "thread_id": "thr_nope"}
    )
    assert response.status_code == 404
    assert provider.requests == [], "nothing reached the model"


async def test_a_provider_failure_is_an_error_event_then_done(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(*[Error(500)] * 3)
    response, events = await simple(client.http, "/api/chat/stream", {"message": "hello?"})
    assert response.status_code == 200
    kinds = [e["type"] for e in events]
    assert kinds == ["thinking", "error", "done"]
    assert "try" in events[1]["message"].lower()
    thread_id = response.headers["x-thread-id"]
    page = await client.call("items.list", thread_id=thread_id)
    assert page["data"][0]["content"][0]["text"] == "hello?", "the message is kept"
