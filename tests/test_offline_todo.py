"""A new user with no API key: the offline model manages tasks through the real tools."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
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

    # Said once: a sentence, and the tasks themselves in the widget.
    events = await chat.send(thread_id, "show my tasks")
    assert assistant_text(events) == "You have 1 task."
    widget = widget_of(events)
    assert widget is not None and "Buy bread" in str(widget["copy_text"])
    assert widget["widget"]["status"]["text"] == "1 task"

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


def widget_keys(events: list[dict[str, Any]]) -> list[str]:
    widget = widget_of(events)
    assert widget is not None, "no task list widget"
    return [row["key"] for row in widget["widget"]["children"]]


def captions(node: Any) -> list[str]:
    """The Caption texts of a widget, depth first."""
    if isinstance(node, list):
        return [text for child in node for text in captions(child)]
    if not isinstance(node, dict):
        return []
    own = [node["value"]] if node.get("type") == "Caption" else []
    return own + captions(node.get("children"))


async def add_via_rest(rest: httpx.AsyncClient, title: str, due: date | None = None) -> int:
    body: dict[str, Any] = {"title": title}
    if due is not None:
        body["due_date"] = due.isoformat()
    response = await rest.post("/api/tasks", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_what_is_due_this_week_lists_this_weeks_tasks_only(chat: ChatKitClient) -> None:
    """The page's own suggestion: today to Sunday, pending ones."""
    today = date.today()
    sunday = today + timedelta(days=6 - today.weekday())
    due_today = await add_via_rest(chat.http, "Pay rent", today)
    due_sunday = await add_via_rest(chat.http, "Call mom", sunday)
    await add_via_rest(chat.http, "Later", sunday + timedelta(days=1))
    await add_via_rest(chat.http, "Missed", today - timedelta(days=1))
    await add_via_rest(chat.http, "Someday")
    done = await add_via_rest(chat.http, "Done already", today)
    assert (await chat.http.post(f"/api/tasks/{done}/complete")).status_code == 200

    _, events = await chat.create_thread("What is due this week?")
    assert assistant_text(events) == "You have 2 pending tasks due this week."
    assert widget_keys(events) == [f"task-{due_today}", f"task-{due_sunday}"]


async def test_what_do_i_have_to_do_today_lists_todays_tasks(chat: ChatKitClient) -> None:
    today = date.today()
    due_today = await add_via_rest(chat.http, "Pay rent", today)
    await add_via_rest(chat.http, "Call mom", today + timedelta(days=1))
    await add_via_rest(chat.http, "Someday")

    _, events = await chat.create_thread("what do I have to do today")
    assert assistant_text(events) == "You have 1 pending task due today."
    assert widget_keys(events) == [f"task-{due_today}"]


async def test_clearing_completed_tasks_deletes_them_all(chat: ChatKitClient) -> None:
    ids = [await add_via_rest(chat.http, title) for title in ("One", "Two", "Three")]
    for task_id in ids[:2]:
        assert (await chat.http.post(f"/api/tasks/{task_id}/complete")).status_code == 200

    _, events = await chat.create_thread("clear all completed tasks")
    assert assistant_text(events) == "Cleared 2 completed tasks."
    left = (await chat.http.get("/api/tasks")).json()["items"]
    assert [task["id"] for task in left] == [ids[2]]
    # What the turn listed is gone, so no empty list is shown.
    assert widget_of(events) is None


async def test_a_bare_phrase_becomes_a_task(chat: ChatKitClient) -> None:
    _, events = await chat.create_thread("buy eggs")
    tasks = (await chat.http.get("/api/tasks")).json()["items"]
    assert [task["title"] for task in tasks] == ["Buy eggs"]
    assert f"Say “delete task {tasks[0]['id']}”" in assistant_text(events)


async def test_a_numeric_date_is_the_due_date_not_part_of_the_title(chat: ChatKitClient) -> None:
    today = date.today()
    dec15 = date(today.year, 12, 15)
    if dec15 < today:
        dec15 = date(today.year + 1, 12, 15)
    await chat.create_thread("add a task: book dentist on 12/15")
    tasks = (await chat.http.get("/api/tasks")).json()["items"]
    assert [(t["title"], t["due_date"]) for t in tasks] == [("Book dentist", dec15.isoformat())]


async def test_the_reply_and_the_widget_write_dates_alike(chat: ChatKitClient) -> None:
    # A 5th, more than a day away: a one-digit day is where the two used to differ.
    day = date.today() + timedelta(days=2)
    while day.day != 5:
        day += timedelta(days=1)
    thread_id, events = await chat.create_thread(f"add call mom on {day:%B} 5")
    added = assistant_text(events)
    # "Added **Call mom** (due Sat 5 Dec, medium priority) as task #1."
    phrase = added.split("(", 1)[1].split(",", 1)[0]
    assert phrase.startswith(f"due {day:%a} 5 {day:%b}")

    events = await chat.send(thread_id, "show my tasks")
    widget = widget_of(events)
    assert widget is not None
    assert captions(widget["widget"]) == [phrase[:1].upper() + phrase[1:]]
