"""A new user with no API key: the offline model manages tasks through the real tools."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from chatkit_backend.config import load_settings

from .live import ChatKitClient, assistant_text, live_server


@pytest.fixture
def offline_url(tmp_path: Path) -> Iterator[str]:
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'chat.db'}", model="offline")
    with live_server(settings) as url:
        yield url


@pytest.fixture
async def chat(offline_url: str) -> AsyncIterator[ChatKitClient]:
    client = ChatKitClient(offline_url)
    try:
        yield client
    finally:
        await client.aclose()


def widget_of(events: list[dict[str, object]]) -> dict[str, object] | None:
    for event in events:
        item = event.get("item")
        if (
            event["type"] == "thread.item.done"
            and isinstance(item, dict)
            and item["type"] == "widget"
        ):
            return item
    return None


async def test_the_first_conversation_of_a_new_user(chat: ChatKitClient) -> None:
    rest = chat.http
    tomorrow = (date.today() + timedelta(days=1)).isoformat()

    thread_id, events = await chat.create_thread("add a task to buy bread tomorrow")
    reply = assistant_text(events)
    assert "Buy bread" in reply
    tasks = (await rest.get("/api/tasks")).json()["items"]
    assert [(t["title"], t["due_date"], t["completed"]) for t in tasks] == [
        ("Buy bread", tomorrow, False)
    ]
    task_id = tasks[0]["id"]
    activity = [
        e for e in events if e["type"] == "thread.item.done" and e["item"]["type"] == "workflow"
    ]
    assert activity and "Added task 'Buy bread'" in str(activity[0]["item"])

    events = await chat.send(thread_id, "show my tasks")
    assert "Buy bread" in assistant_text(events)
    widget = widget_of(events)
    assert widget is not None and "Buy bread" in str(widget["copy_text"])

    events = await chat.send(thread_id, "mark buy bread as done")
    assert "Buy bread" in assistant_text(events)
    assert (await rest.get(f"/api/tasks/{task_id}")).json()["completed"] is True

    events = await chat.send(thread_id, f"delete task {task_id}")
    assert "Buy bread" in assistant_text(events)
    assert (await rest.get(f"/api/tasks/{task_id}")).status_code == 404

    events = await chat.send(thread_id, "what can you do?")
    assert "offline" in assistant_text(events).lower()

    thread = await chat.call("threads.get_by_id", thread_id=thread_id)
    assert thread["title"] == "Add a task to buy bread tomorrow"


async def test_offline_replies_stream_in_small_deltas(chat: ChatKitClient) -> None:
    _, events = await chat.create_thread("hello")
    deltas = [
        e
        for e in events
        if e["type"] == "thread.item.updated"
        and e["update"]["type"] == "assistant_message.content_part.text_delta"
    ]
    assert len(deltas) > 10
    assert "offline" in assistant_text(events).lower()
