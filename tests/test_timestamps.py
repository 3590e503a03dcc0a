"""Every time the service writes carries its UTC offset and is the instant stored.

The server runs as `chatkit-backend serve` in a zone that is not UTC
(America/New_York), as a server may: the ChatKit SDK stamps what it creates with
naive local time, and a time without an offset is read by browsers as the viewer's
local time. Every wire format is checked: ChatKit JSON and streamed events, REST
conversations and their exports, tasks, usage and the debug listing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkit_backend.agent import task_widgets
from chatkit_backend.chat.tables import ItemRow, ThreadRow
from chatkit_backend.tasks.models import TaskRow

from .live import ChatKitClient
from .processes import clean_env, served

# A date with a time of day, in any of the forms ISO 8601 allows; the offset is optional
# here so that a time without one is found too (and then fails).
INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)
# Near enough to now to tell UTC from New York time (four or five hours apart).
SLACK = timedelta(minutes=30)


@pytest.fixture
def server_url(database_url: str, engine: AsyncEngine, tmp_path: Path) -> Iterator[str]:
    """The real server in New York time, the offline model answering, on `database_url`."""
    env = clean_env(DATABASE_URL=database_url, MODEL="offline", DEBUG="true", TZ="America/New_York")
    with served(env, tmp_path) as url:
        yield url


@pytest.fixture
async def client(server_url: str) -> AsyncIterator[ChatKitClient]:
    chat = ChatKitClient(server_url)
    try:
        yield chat
    finally:
        await chat.aclose()


def instants(value: Any) -> list[datetime]:
    """Every date-with-time in `value` (JSON, or text), each checked to carry an offset."""
    if isinstance(value, dict):
        return [moment for entry in value.values() for moment in instants(entry)]
    if isinstance(value, list):
        return [moment for entry in value for moment in instants(entry)]
    if not isinstance(value, str):
        return []
    found = []
    for text in INSTANT.findall(value):
        moment = datetime.fromisoformat(text)
        assert moment.utcoffset() is not None, f"{text!r} has no UTC offset"
        found.append(moment)
    return found


def stamped(value: Any, key: str = "created_at") -> dict[str, datetime]:
    """id -> `key` of every JSON object in `value` that has both."""
    found: dict[str, datetime] = {}
    if isinstance(value, dict):
        if isinstance(value.get("id"), str | int) and isinstance(value.get(key), str):
            found[str(value["id"])] = datetime.fromisoformat(value[key])
        for entry in value.values():
            found |= stamped(entry, key)
    elif isinstance(value, list):
        for entry in value:
            found |= stamped(entry, key)
    return found


class Stored:
    """The instants in the database, as aware UTC (the tables hold naive UTC)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def read(self, *columns: Any) -> dict[str, datetime]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(*columns))).all()
        return {str(key): value.replace(tzinfo=UTC) for key, value in rows if value is not None}

    async def created(self) -> dict[str, datetime]:
        """Of threads, items and tasks (tool results show tasks), by id."""
        threads = await self.read(ThreadRow.id, ThreadRow.created_at)
        items = await self.read(ItemRow.id, ItemRow.created_at)
        return threads | items | await self.read(TaskRow.id, TaskRow.created_at)

    async def updated(self) -> dict[str, datetime]:
        threads = await self.read(ThreadRow.id, ThreadRow.updated_at)
        return threads | await self.read(TaskRow.id, TaskRow.updated_at)


def assert_matches(on_wire: dict[str, datetime], stored: dict[str, datetime]) -> None:
    assert on_wire, "nothing to compare"
    for key, moment in on_wire.items():
        assert moment == stored[key], key


def assert_recent(moments: list[datetime], since: datetime) -> None:
    assert moments
    for moment in moments:
        assert since - SLACK < moment < datetime.now(UTC) + SLACK, moment


def find(value: Any, key: str) -> Any:
    """The first value of `key` in nested JSON."""
    if isinstance(value, dict):
        if key in value:
            return value[key]
        value = list(value.values())
    if isinstance(value, list):
        for entry in value:
            if (found := find(entry, key)) is not None:
                return found
    return None


async def test_chatkit_events_and_answers_carry_utc_offsets_of_the_stored_instants(
    client: ChatKitClient, engine: AsyncEngine
) -> None:
    since = datetime.now(UTC)
    thread_id, created = await client.create_thread("add a task to buy bread tomorrow")
    listed = await client.send(thread_id, "show my tasks")
    widget = next(
        e["item"]
        for e in listed
        if e["type"] == "thread.item.done" and e["item"]["type"] == "widget"
    )
    task_id = find(widget, "task_id")
    acted = await client.stream(
        "threads.custom_action",
        thread_id=thread_id,
        item_id=widget["id"],
        action={"type": task_widgets.COMPLETE, "payload": {"task_id": task_id}},
    )
    answers = [
        await client.call(
            "threads.sync_custom_action",
            thread_id=thread_id,
            item_id=widget["id"],
            action={"type": task_widgets.REOPEN, "payload": {"task_id": task_id}},
        ),
        await client.call("threads.update", thread_id=thread_id, title="Bread"),
        await client.call("threads.get_by_id", thread_id=thread_id),
        await client.call("threads.list", limit=10),
        await client.call("items.list", thread_id=thread_id, limit=100),
    ]
    events = created + listed + acted
    kinds = {e["type"] for e in events}
    assert kinds >= {"thread.created", "thread.updated", "thread.item.added"}
    assert kinds >= {"thread.item.done", "thread.item.replaced"}

    # Every time anywhere has an offset and is now, not five hours off.
    assert_recent(instants([*events, *answers]), since)
    # Threads and items as created, finished or replaced are the instants stored. (An
    # assistant message is stamped again when it is done; "added" is a draft.)
    final = [
        e
        for e in events
        if e["type"] in ("thread.created", "thread.updated", "thread.item.done")
        or e["type"] == "thread.item.replaced"
    ]
    stored = await Stored(engine).created()
    assert_matches(stamped(final), stored)
    assert {thread_id, widget["id"]} <= set(stamped(final))
    for answer in answers:
        assert_matches(stamped(answer), stored)


async def test_rest_answers_carry_utc_offsets_of_the_stored_instants(
    client: ChatKitClient, engine: AsyncEngine
) -> None:
    stored = Stored(engine)
    since = datetime.now(UTC)
    thread_id, _ = await client.create_thread("add a task to buy bread tomorrow")
    http: httpx.AsyncClient = client.http
    base = f"/api/conversations/{thread_id}"

    reads = [
        (await http.get("/api/conversations")).json(),
        (await http.get("/api/conversations/recent/first")).json(),
        (await http.get(base)).json(),
    ]
    stored_updates = [await stored.updated()] * len(reads)
    # A rename is activity: what it answers, and what follows, is its new time.
    writes = [
        (await http.patch(base, json={"title": "Bread"})).json(),
        (await http.get(f"{base}/export")).json(),
    ]
    stored_updates += [await stored.updated()] * len(writes)
    conversations = reads + writes
    assert_recent(instants(conversations), since)
    created = await stored.created()
    for answer, updated in zip(conversations, stored_updates, strict=True):
        assert_matches(stamped(answer), created)
        assert_matches(stamped(answer, "updated_at"), updated)

    # The transcript's times are the messages' stored times, to the second.
    markdown = (await http.get(f"{base}/export", params={"format": "markdown"})).text
    assert_recent(instants(markdown), since)
    headers = re.findall(r"^\*\*(?:User|Assistant)\*\* · (\S+)$", markdown, re.MULTILINE)
    assert [datetime.fromisoformat(h) for h in headers] == [
        created[m["id"]].replace(microsecond=0) for m in conversations[2]["messages"]
    ]

    new = (await http.post("/api/tasks", json={"title": "Milk", "due_date": "2030-01-02"})).json()
    task = f"/api/tasks/{new['id']}"
    tasks = [
        new,
        (await http.get("/api/tasks")).json(),
        (await http.get(task)).json(),
        (await http.patch(task, json={"priority": "high"})).json(),
        (await http.post(f"{task}/complete")).json(),
    ]
    assert_recent(instants(tasks), since)
    assert tasks[2]["due_date"] == "2030-01-02"  # a calendar date stays a date
    tasks_created = await stored.read(TaskRow.id, TaskRow.created_at)
    for answer in tasks:
        assert_matches(stamped(answer), tasks_created)
    # Each change moves updated_at: the last answer (complete) has the time stored now.
    for key in ("updated_at", "completed_at"):
        assert_matches(
            stamped(tasks[-1], key), await stored.read(TaskRow.id, getattr(TaskRow, key))
        )

    # Days stay dates (UTC days); the debug listing has no times to get wrong.
    usage = (await http.get("/api/usage")).json()
    assert usage["by_day"] and instants(usage) == []
    assert all(date.fromisoformat(day["date"]) for day in usage["by_day"])
    debug = (await http.get("/debug/threads")).json()
    assert thread_id in debug and instants(debug) == []
