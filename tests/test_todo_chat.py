"""The todo assistant on both routes to a model (the OpenAI client and LiteLLM): tools,
activity, replay, widgets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chatkit_backend.config import load_settings
from chatkit_backend.context import RequestContext
from chatkit_backend.db import create_engine
from chatkit_backend.tasks.schemas import TaskCreate
from chatkit_backend.tasks.service import TaskService

from .conftest import DIRECT, VIA_LITELLM, is_title_request
from .live import ChatKitClient, assistant_text
from .scripted_provider import Call, ScriptedProvider, Text, ToolCalls


@pytest.fixture(params=[DIRECT, VIA_LITELLM])
def model_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def tasks(database_url: str, server_url: str) -> AsyncIterator[TaskService]:
    """Direct access to the tasks table the server uses (to check and to plant rows)."""
    engine = create_engine(load_settings(database_url=database_url).async_database_url)
    try:
        yield TaskService(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def rest(server_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server_url) as http:
        yield http


def chat_requests(provider: ScriptedProvider) -> list[dict[str, Any]]:
    return [r for r in provider.requests if not is_title_request(r)]


def tool_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request["messages"] if m["role"] == "tool"]


async def test_a_tool_call_creates_the_task_and_is_remembered_next_turn(
    client: ChatKitClient, provider: ScriptedProvider, rest: httpx.AsyncClient
) -> None:
    provider.enqueue(
        ToolCalls(
            [
                Call(
                    "add_task",
                    {"title": "Water the plants", "due_date": "2026-11-23"},
                    call_id="call_water1",
                )
            ]
        ),
        Text("Added **Water the plants**."),
    )
    thread_id, events = await client.create_thread("remind me to water the plants on monday")
    assert assistant_text(events) == "Added **Water the plants**."

    listed = (await rest.get("/api/tasks")).json()
    assert [(t["title"], t["due_date"]) for t in listed["items"]] == [
        ("Water the plants", "2026-11-23")
    ]

    # The tool's output reached the model within the turn.
    second = chat_requests(provider)[1]
    output = json.loads(tool_messages(second)[0]["content"])
    assert output["ok"] is True and output["task"]["title"] == "Water the plants"

    # The activity is shown while it runs and stays in the thread.
    items = await client.items(thread_id)
    assert [i["type"] for i in items] == ["user_message", "workflow", "assistant_message"]
    titles = [t.get("title") for t in items[1]["workflow"]["tasks"]]
    assert titles == ["Added task 'Water the plants'"]
    assert any(e["type"] == "thread.item.added" and e["item"]["type"] == "workflow" for e in events)

    # Next turn: the provider sees the earlier call and its output, with the original id.
    provider.enqueue(Text("You added one task."))
    await client.send(thread_id, "what did you do?")
    history = chat_requests(provider)[-1]["messages"]
    calls = [m for m in history if m["role"] == "assistant" and m.get("tool_calls")]
    assert calls and calls[0]["tool_calls"][0]["id"] == "call_water1"
    assert calls[0]["tool_calls"][0]["function"]["name"] == "add_task"
    replayed = [m for m in history if m["role"] == "tool"]
    assert replayed[0]["tool_call_id"] == "call_water1"
    assert json.loads(replayed[0]["content"])["task"]["title"] == "Water the plants"


async def test_list_tasks_shows_a_widget_whose_buttons_work(
    client: ChatKitClient, provider: ScriptedProvider, rest: httpx.AsyncClient
) -> None:
    for title in ("Buy bread", "Call mum"):
        assert (await rest.post("/api/tasks", json={"title": title})).status_code == 201
    bread, mum = (await rest.get("/api/tasks", params={"sort": "title"})).json()["items"]
    provider.enqueue(ToolCalls([("list_tasks", {"status": "all"})]), Text("Here they are."))
    thread_id, events = await client.create_thread("show my tasks")

    widgets = [
        e["item"]
        for e in events
        if e["type"] == "thread.item.done" and e["item"]["type"] == "widget"
    ]
    assert len(widgets) == 1
    widget = widgets[0]
    keys = [child["key"] for child in widget["widget"]["children"]]
    assert keys == [f"task-{bread['id']}", f"task-{mum['id']}"]
    assert "Buy bread" in widget["copy_text"]

    # Complete "Buy bread" from the widget.
    events = await client.stream(
        "threads.custom_action",
        thread_id=thread_id,
        item_id=widget["id"],
        action={"type": "task.complete", "payload": {"task_id": bread["id"]}},
    )
    assert any(e["type"] == "thread.item.replaced" for e in events)
    assert (await rest.get(f"/api/tasks/{bread['id']}")).json()["completed"] is True

    # Delete "Call mum" with the sync variant.
    answer = await client.call(
        "threads.sync_custom_action",
        thread_id=thread_id,
        item_id=widget["id"],
        action={"type": "task.delete", "payload": {"task_id": mum["id"]}},
    )
    assert [c["key"] for c in answer["updated_item"]["widget"]["children"]] == [
        f"task-{bread['id']}"
    ]
    assert (await rest.get(f"/api/tasks/{mum['id']}")).status_code == 404

    # A reload shows the truth: one task, done.
    stored = [i for i in await client.items(thread_id) if i["type"] == "widget"]
    assert len(stored) == 1
    rows = stored[0]["widget"]["children"]
    assert [r["key"] for r in rows] == [f"task-{bread['id']}"]
    assert "[x]" in stored[0]["copy_text"]


async def test_tools_never_touch_another_users_task(
    client: ChatKitClient, provider: ScriptedProvider, tasks: TaskService
) -> None:
    other = RequestContext(user_id="someone-else")
    theirs = await tasks.create(other, TaskCreate(title="Their secret task"))
    provider.enqueue(
        ToolCalls([("complete_task", {"task_id": theirs.id})]),
        ToolCalls([("delete_task", {"task_id": theirs.id})]),
        ToolCalls([("update_task", {"task_id": theirs.id, "title": "pwned"})]),
        ToolCalls([("list_tasks", {})]),
        Text("done"),
    )
    await client.create_thread("do things to task 1")
    outputs = [json.loads(tool_messages(r)[-1]["content"]) for r in chat_requests(provider)[1:5]]
    assert [o["ok"] for o in outputs[:3]] == [False, False, False]
    assert all(o["error"] == "not_found" for o in outputs[:3])
    assert outputs[3]["count"] == 0
    still = await tasks.get(other, theirs.id)
    assert still.title == "Their secret task" and not still.completed


async def test_bad_tool_arguments_come_back_as_structured_errors(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(
        ToolCalls([("complete_task", {"task_id": "not-a-number"})]),
        ToolCalls([("add_task", {"title": ""})]),
        ToolCalls([("complete_task", {"task_id": 424242})]),
        Text("sorry"),
    )
    _, events = await client.create_thread("finish it")
    assert assistant_text(events) == "sorry"
    outputs = [json.loads(tool_messages(r)[-1]["content"]) for r in chat_requests(provider)[1:4]]
    assert [(o["ok"], o["error"]) for o in outputs] == [
        (False, "invalid"),
        (False, "invalid"),
        (False, "not_found"),
    ]


async def test_list_tasks_via_the_model_shows_the_widget_and_only_the_models_words(
    client: ChatKitClient, provider: ScriptedProvider, rest: httpx.AsyncClient
) -> None:
    for title in ("Buy bread", "Call mum"):
        assert (await rest.post("/api/tasks", json={"title": title})).status_code == 201
    provider.enqueue(ToolCalls([("list_tasks", {})]), Text("You have two tasks."))
    _, events = await client.create_thread("list tasks")

    messages = [
        e["item"]
        for e in events
        if e["type"] == "thread.item.done" and e["item"]["type"] == "assistant_message"
    ]
    assert [m["content"][0]["text"] for m in messages] == ["You have two tasks."]
    widgets = [
        e["item"]
        for e in events
        if e["type"] == "thread.item.done" and e["item"]["type"] == "widget"
    ]
    assert len(widgets) == 1
    assert widgets[0]["widget"]["status"]["text"] == "2 tasks"
    assert "Buy bread" in widgets[0]["copy_text"] and "Call mum" in widgets[0]["copy_text"]


async def listed_widget(
    client: ChatKitClient, provider: ScriptedProvider, rest: httpx.AsyncClient
) -> tuple[str, dict[str, Any], list[int]]:
    """A thread whose list widget shows two tasks: (thread id, widget item, task ids)."""
    ids = []
    for title in ("Buy bread", "Call mum"):
        response = await rest.post("/api/tasks", json={"title": title})
        ids.append(response.json()["id"])
    provider.enqueue(ToolCalls([("list_tasks", {})]), Text("Here they are."))
    thread_id, events = await client.create_thread("show my tasks")
    widget = next(
        e["item"]
        for e in events
        if e["type"] == "thread.item.done" and e["item"]["type"] == "widget"
    )
    return thread_id, widget, ids


def row_keys(widget_item: dict[str, Any]) -> list[str]:
    return [row["key"] for row in widget_item["widget"]["children"]]


async def stored_widget(client: ChatKitClient, thread_id: str) -> dict[str, Any]:
    widgets = [i for i in await client.items(thread_id) if i["type"] == "widget"]
    assert len(widgets) == 1
    return widgets[0]


async def test_a_button_of_a_task_deleted_since_says_so_and_refreshes_the_widget(
    client: ChatKitClient, provider: ScriptedProvider, rest: httpx.AsyncClient
) -> None:
    thread_id, widget, (bread, mum) = await listed_widget(client, provider, rest)
    assert (await rest.delete(f"/api/tasks/{bread}")).status_code in (200, 204)

    events = await client.stream(
        "threads.custom_action",
        thread_id=thread_id,
        item_id=widget["id"],
        action={"type": "task.complete", "payload": {"task_id": bread}},
    )
    notices = [e for e in events if e["type"] == "notice"]
    assert [n["message"] for n in notices] == [
        f"Task #{bread} no longer exists, so it is gone from the list."
    ]
    replaced = [e["item"] for e in events if e["type"] == "thread.item.replaced"]
    assert [row_keys(item) for item in replaced] == [[f"task-{mum}"]]
    assert row_keys(await stored_widget(client, thread_id)) == [f"task-{mum}"]


async def test_a_sync_action_on_a_deleted_task_returns_the_refreshed_widget(
    client: ChatKitClient, provider: ScriptedProvider, rest: httpx.AsyncClient
) -> None:
    thread_id, widget, (bread, mum) = await listed_widget(client, provider, rest)
    assert (await rest.delete(f"/api/tasks/{mum}")).status_code in (200, 204)

    answer = await client.call(
        "threads.sync_custom_action",
        thread_id=thread_id,
        item_id=widget["id"],
        action={"type": "task.delete", "payload": {"task_id": mum}},
    )
    assert row_keys(answer["updated_item"]) == [f"task-{bread}"]
    assert row_keys(await stored_widget(client, thread_id)) == [f"task-{bread}"]
