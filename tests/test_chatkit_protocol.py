"""The ChatKit protocol end to end over HTTP, answered by the scripted provider on both
routes to a model: the OpenAI client and LiteLLM."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from .conftest import DIRECT, VIA_LITELLM, is_title_request
from .live import ChatKitClient, assistant_text, user_input
from .scripted_provider import Error, ScriptedProvider, Text


@pytest.fixture(params=[DIRECT, VIA_LITELLM])
def model_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_create_thread_streams_the_reply_and_stores_it(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("Hello from the scripted model."))
    thread_id, events = await client.create_thread("hi there")

    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["thread.created", "thread.item.done", "stream_options"]
    assert "thread.item.added" in kinds and "thread.item.updated" in kinds
    assert assistant_text(events) == "Hello from the scripted model."
    deltas = [e for e in events if e["type"] == "thread.item.updated"]
    assert len(deltas) > 3, "the reply must arrive in several deltas"

    items = await client.items(thread_id)
    assert [i["type"] for i in items] == ["user_message", "assistant_message"]
    assert items[1]["content"][0]["text"] == "Hello from the scripted model."

    thread = await client.call("threads.get_by_id", thread_id=thread_id)
    assert thread["title"] == "Scripted title"


async def test_three_turns_get_distinct_ids_and_the_model_sees_history(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("one"), Text("two"), Text("three"))
    thread_id, _ = await client.create_thread("first")
    await client.send(thread_id, "second")
    await client.send(thread_id, "third")

    items = await client.items(thread_id)
    assistant_ids = [i["id"] for i in items if i["type"] == "assistant_message"]
    assert len(assistant_ids) == 3
    assert len(set(assistant_ids)) == 3
    assert all(i.startswith("msg_") and "fake" not in i for i in assistant_ids)

    chat_requests = [r for r in provider.requests if not is_title_request(r)]
    assert len(chat_requests) == 3
    last = chat_requests[-1]["messages"]
    conversation = [(m["role"], m["content"]) for m in last if m["role"] != "system"]
    assert conversation == [
        ("user", "first"),
        ("assistant", "one"),
        ("user", "second"),
        ("assistant", "two"),
        ("user", "third"),
    ]


async def test_sse_headers_suit_proxies(client: ChatKitClient, provider: ScriptedProvider) -> None:
    provider.enqueue(Text("ok"))
    response = await client.post(
        {"type": "threads.create", "params": {"input": user_input("hello")}}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "connection" not in response.headers
    assert response.headers["x-request-id"]


async def test_a_disconnect_closes_the_provider_stream_and_keeps_the_partial_reply(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    words = [f"w{i:03d} " for i in range(100)]
    provider.enqueue(Text("".join(words), chunk_chars=5, delay=0.02))
    body = {"type": "threads.create", "params": {"input": user_input("tell me a long story")}}
    thread_id = None
    deltas = 0
    async with client.http.stream("POST", "/chatkit", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event["type"] == "thread.created":
                thread_id = event["thread"]["id"]
            if event["type"] == "thread.item.updated":
                deltas += 1
            if deltas >= 10:
                break  # the user pressed Stop: the connection closes here
    assert thread_id is not None

    record = await provider.wait_for_stream_end_async(-1, timeout=5)
    assert record.client_disconnected, "the provider's stream must be closed by the server"
    assert not record.finished
    assert record.chunks_sent < 40, f"{record.chunks_sent} of {record.chunks_planned} sent"

    # The partial reply is saved (asynchronously, as the run winds down).
    partial = ""
    for _ in range(50):
        items = await client.items(thread_id)
        texts = [i["content"][0]["text"] for i in items if i["type"] == "assistant_message"]
        if texts:
            partial = texts[0]
            break
        await asyncio.sleep(0.1)
    assert partial, "the partial reply must be kept"
    assert "".join(words).startswith(partial.rstrip()) or "".join(words).startswith(partial)
    assert len(partial) < len("".join(words))

    # The thread stays usable, and the model is told the last answer was cut off.
    provider.enqueue(Text("fine"))
    events = await client.send(thread_id, "ok, go on")
    assert assistant_text(events) == "fine"
    last = [r for r in provider.requests if not is_title_request(r)][-1]["messages"]
    assert any("cancelled" in str(m.get("content")) for m in last)


async def test_retry_after_item_on_a_long_thread_ends(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(*[Text(f"answer {i}") for i in range(12)])
    thread_id, _ = await client.create_thread("question 0")
    for i in range(1, 12):
        await client.send(thread_id, f"question {i}")
    items = await client.items(thread_id)
    assert len(items) == 24
    last_user = [i for i in items if i["type"] == "user_message"][-1]

    provider.enqueue(Text("a better answer"))
    events = await asyncio.wait_for(
        client.stream("threads.retry_after_item", thread_id=thread_id, item_id=last_user["id"]),
        timeout=20,
    )
    assert assistant_text(events) == "a better answer"
    items = await client.items(thread_id)
    assert len(items) == 24
    assert items[-1]["content"][0]["text"] == "a better answer"


async def test_items_page_completely_in_both_orders(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(*[Text(f"a{i}") for i in range(25)])
    thread_id, _ = await client.create_thread("q0")
    for i in range(1, 25):
        await client.send(thread_id, f"q{i}")
    for order in ("asc", "desc"):
        seen: list[str] = []
        after = None
        while True:
            params = {"thread_id": thread_id, "limit": 7, "order": order}
            if after:
                params["after"] = after
            page = await client.call("items.list", **params)
            seen += [i["id"] for i in page["data"]]
            if not page["has_more"]:
                assert "after" not in page or page["after"] is None
                break
            after = page["after"]
        assert len(seen) == 50 and len(set(seen)) == 50
        full = await client.items(thread_id)
        expected = [i["id"] for i in full]
        assert seen == (expected if order == "asc" else expected[::-1])


async def test_a_provider_error_becomes_an_error_event_and_keeps_the_message(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    # The OpenAI client (alone or under LiteLLM) retries twice: three failures exhaust it.
    provider.enqueue(*[Error(500, "upstream exploded")] * 3)
    thread_id, events = await client.create_thread("will this work?")
    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) == 1
    assert errors[0]["allow_retry"] is True
    assert "upstream exploded" not in errors[0].get("message", "")
    assert len([r for r in provider.requests if not is_title_request(r)]) == 3
    items = await client.items(thread_id)
    assert items[0]["type"] == "user_message"

    provider.enqueue(Text("recovered"))
    events = await client.send(thread_id, "and now?")
    assert assistant_text(events) == "recovered"


async def test_feedback_is_stored(client: ChatKitClient, provider: ScriptedProvider) -> None:
    provider.enqueue(Text("rate me"))
    thread_id, events = await client.create_thread("hello")
    reply = [e for e in events if e["type"] == "thread.item.done"][-1]["item"]["id"]
    assert (
        await client.call("items.feedback", thread_id=thread_id, item_ids=[reply], kind="positive")
        == {}
    )


async def test_thread_history_is_newest_activity_first_like_the_rest_api(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    """An old thread written in moves to the top of threads.list, as in /api/conversations."""
    provider.enqueue(*[Text(f"a{i}") for i in range(4)])
    first, _ = await client.create_thread("first")
    second, _ = await client.create_thread("second")
    third, _ = await client.create_thread("third")
    await client.send(first, "first again")

    expected = [first, third, second]
    newest = await client.call("threads.list", limit=10, order="desc")
    assert [t["id"] for t in newest["data"]] == expected
    oldest = await client.call("threads.list", limit=10, order="asc")
    assert [t["id"] for t in oldest["data"]] == expected[::-1]
    rest = (await client.http.get("/api/conversations")).json()
    assert [c["id"] for c in rest] == expected

    # Paged one at a time, the same threads come in the same order.
    paged: list[str] = []
    params: dict[str, Any] = {"limit": 1, "order": "desc"}
    while True:
        page = await client.call("threads.list", **params)
        paged += [t["id"] for t in page["data"]]
        if not page["has_more"]:
            break
        params["after"] = page["after"]
    assert paged == expected
