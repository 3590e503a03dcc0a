"""Two signed-in users side by side: B never reaches anything of A's, by any route."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from .conftest import is_title_request, scripted_settings
from .live import ChatKitClient, bearer_for, live_server, signed_in, user_input
from .scripted_provider import Call, ScriptedProvider, Text, ToolCalls

SECRET = "isolation-test-secret-0123456789abcdef"


def bearer(user: str) -> dict[str, str]:
    return bearer_for(user, SECRET)


@pytest.fixture
def server_url(database_url: str, provider: ScriptedProvider) -> Iterator[str]:
    settings = scripted_settings(database_url, provider, better_auth_secret=SECRET)
    with live_server(settings) as url:
        yield url


@pytest.fixture
async def users(server_url: str) -> AsyncIterator[tuple[ChatKitClient, ChatKitClient]]:
    async with signed_in(server_url, SECRET, "alice", "bob") as (alice, bob):
        yield alice, bob


async def test_user_b_cannot_reach_user_a_anywhere(
    users: tuple[ChatKitClient, ChatKitClient], provider: ScriptedProvider
) -> None:
    alice, bob = users
    # Alice: a task (through the agent), a thread with a widget, feedback, usage.
    provider.enqueue(
        ToolCalls([Call("add_task", {"title": "Alice's secret"})]),
        ToolCalls([Call("list_tasks", {})]),
        Text("Done."),
    )
    thread, events = await alice.create_thread("add my secret task")
    items = await alice.items(thread)
    user_item = items[0]["id"]
    widget = next(i for i in items if i["type"] == "widget")
    task_id = (await alice.http.get("/api/tasks")).json()["items"][0]["id"]
    reply = next(i for i in items if i["type"] == "assistant_message")["id"]

    action = {"type": "task.complete", "payload": {"task_id": task_id}}
    chatkit_requests: list[dict[str, Any]] = [
        {"type": "threads.get_by_id", "params": {"thread_id": thread}},
        {"type": "items.list", "params": {"thread_id": thread}},
        {"type": "threads.update", "params": {"thread_id": thread, "title": "mine"}},
        {
            "type": "items.feedback",
            "params": {"thread_id": thread, "item_ids": [reply], "kind": "negative"},
        },
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": thread, "input": user_input("hi")},
        },
        {"type": "threads.retry_after_item", "params": {"thread_id": thread, "item_id": user_item}},
        {"type": "threads.add_client_tool_output", "params": {"thread_id": thread, "result": {}}},
        {
            "type": "threads.add_structured_input",
            "params": {"thread_id": thread, "item_id": user_item, "input": {}},
        },
        {
            "type": "threads.custom_action",
            "params": {"thread_id": thread, "item_id": widget["id"], "action": action},
        },
        {
            "type": "threads.sync_custom_action",
            "params": {"thread_id": thread, "item_id": widget["id"], "action": action},
        },
        {"type": "threads.delete", "params": {"thread_id": thread}},
    ]
    for body in chatkit_requests:
        response = await bob.post(body)
        assert response.status_code == 404, (body["type"], response.text)
    assert (await bob.call("threads.list"))["data"] == []

    rest = [
        ("GET", f"/api/tasks/{task_id}"),
        ("PATCH", f"/api/tasks/{task_id}"),
        ("DELETE", f"/api/tasks/{task_id}"),
        ("POST", f"/api/tasks/{task_id}/complete"),
        ("POST", f"/api/tasks/{task_id}/reopen"),
        ("GET", f"/api/conversations/{thread}"),
        ("PATCH", f"/api/conversations/{thread}"),
        ("DELETE", f"/api/conversations/{thread}"),
        ("GET", f"/api/conversations/{thread}/export"),
        ("POST", f"/api/conversations/{thread}/stop"),
    ]
    for method, path in rest:
        body = {"title": "mine"} if method == "PATCH" else None
        response = await bob.http.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
    assert (await bob.http.get("/api/tasks")).json()["total"] == 0
    assert (await bob.http.get("/api/conversations")).json() == []
    assert (await bob.http.get("/api/conversations", params={"q": "secret"})).json() == []
    assert (await bob.http.get("/api/conversations/recent/first")).json() is None
    assert (await bob.http.get("/api/usage")).json()["total"]["turns"] == 0
    simple = await bob.http.post("/api/chat/stream", json={"message": "x", "thread_id": thread})
    assert simple.status_code == 404

    # Bob's own agent is asked to act on Alice's task id; Bob's widget is aimed at it too.
    provider.enqueue(
        ToolCalls([Call("complete_task", {"task_id": task_id})]),
        ToolCalls([Call("delete_task", {"task_id": task_id})]),
        ToolCalls([Call("list_tasks", {})]),
        Text("ok"),
    )
    bob_thread, _ = await bob.create_thread(f"complete task {task_id}")
    chat = [r for r in provider.requests if not is_title_request(r)]
    outputs = [json.loads(r["messages"][-1]["content"]) for r in chat[-3:]]
    assert [o.get("error") for o in outputs] == ["not_found", "not_found", None]
    assert outputs[2]["count"] == 0, "Bob's list does not show Alice's task"
    bob_widget = next(i for i in await bob.items(bob_thread) if i["type"] == "widget")
    events = await bob.stream(
        "threads.custom_action", thread_id=bob_thread, item_id=bob_widget["id"], action=action
    )
    assert any(e["type"] == "notice" for e in events)

    # Alice's data is exactly as she left it.
    task = (await alice.http.get(f"/api/tasks/{task_id}")).json()
    assert task["title"] == "Alice's secret" and task["completed"] is False
    alice_thread = await alice.call("threads.get_by_id", thread_id=thread)
    assert alice_thread["title"] != "mine"
    assert len(await alice.items(thread)) == len(items)
