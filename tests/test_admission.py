"""Admission rules whose state lives in the database: Idempotency-Key expiry and scope, a
refused message leaving nothing behind, and a crashed worker's stale run lock.

A live server on SQLite and PostgreSQL; the test reaches into the same database to age
rows as time would.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkit_backend.config import load_settings
from chatkit_backend.db import create_engine, utcnow
from chatkit_backend.runs.tables import ActiveRunRow, IdempotencyKeyRow, RateWindowRow

from .live import ChatKitClient, assistant_text, parse_sse, start_stream, user_input
from .scripted_provider import ScriptedProvider, Text

SECRET = "admission-test-secret-0123456789abcdef"
SLOW = Text(" ".join(f"w{i}" for i in range(200)), chunk_chars=4, delay=0.02)


def bearer(user: str) -> dict[str, str]:
    token = jwt.encode({"sub": user, "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def server_options() -> dict[str, Any]:
    return {"better_auth_secret": SECRET}


@pytest.fixture
async def alice(server_url: str) -> AsyncIterator[ChatKitClient]:
    client = ChatKitClient(server_url, bearer("alice"))
    yield client
    await client.aclose()


@pytest.fixture
async def bob(server_url: str) -> AsyncIterator[ChatKitClient]:
    client = ChatKitClient(server_url, bearer("bob"))
    yield client
    await client.aclose()


@pytest.fixture
async def db(server_url: str, database_url: str) -> AsyncIterator[AsyncEngine]:
    """The live server's database (already migrated by it)."""
    engine = create_engine(load_settings(database_url=database_url).async_database_url)
    yield engine
    await engine.dispose()


def new_message(thread_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "threads.add_user_message",
        "params": {"thread_id": thread_id, "input": user_input(text)},
    }


async def send_with_key(client: ChatKitClient, body: dict[str, Any], key: str) -> httpx.Response:
    return await client.http.post("/chatkit", json=body, headers={"Idempotency-Key": key})


def code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    value: str = response.json()["code"]
    return value


async def user_texts(client: ChatKitClient, thread_id: str) -> list[str]:
    items = await client.items(thread_id)
    return [i["content"][0]["text"] for i in items if i["type"] == "user_message"]


async def test_an_idempotency_key_is_remembered_for_24_hours(
    alice: ChatKitClient, db: AsyncEngine
) -> None:
    thread_id, _ = await alice.create_thread("hello")
    first = await send_with_key(alice, new_message(thread_id, "once"), "key-1")
    assert first.status_code == 200, first.text

    async def age_key(hours: float) -> None:
        async with db.begin() as conn:
            await conn.execute(
                update(IdempotencyKeyRow)
                .where(IdempotencyKeyRow.key == "key-1")
                .values(created_at=utcnow() - timedelta(hours=hours))
            )

    await age_key(23.5)
    still = await send_with_key(alice, new_message(thread_id, "twice"), "key-1")
    assert code(still, 409) == "duplicate_request"

    await age_key(24.5)
    expired = await send_with_key(alice, new_message(thread_id, "a day later"), "key-1")
    assert expired.status_code == 200, expired.text
    assert await user_texts(alice, thread_id) == ["hello", "once", "a day later"]
    # Sent again now, the key is a duplicate again: the expired row was replaced.
    again = await send_with_key(alice, new_message(thread_id, "thrice"), "key-1")
    assert code(again, 409) == "duplicate_request"


async def test_an_idempotency_key_belongs_to_the_user_who_sent_it(
    alice: ChatKitClient, bob: ChatKitClient
) -> None:
    alice_thread, _ = await alice.create_thread("alice here")
    bob_thread, _ = await bob.create_thread("bob here")
    for client, thread_id in ((alice, alice_thread), (bob, bob_thread)):
        response = await send_with_key(client, new_message(thread_id, "same key"), "shared")
        assert response.status_code == 200, response.text
        assert assistant_text(parse_sse(response.text)) == "Echo: same key"
    assert await user_texts(alice, alice_thread) == ["alice here", "same key"]
    assert await user_texts(bob, bob_thread) == ["bob here", "same key"]


async def test_a_message_refused_as_busy_leaves_its_key_free(
    alice: ChatKitClient, provider: ScriptedProvider, db: AsyncEngine
) -> None:
    provider.enqueue(SLOW)
    reader, thread_id = await start_stream(
        alice, {"type": "threads.create", "params": {"input": user_input("long story")}}
    )
    busy = await send_with_key(alice, new_message(thread_id, "me too"), "retry-me")
    assert code(busy, 409) == "run_in_progress"
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(IdempotencyKeyRow)) == 0

    await alice.http.post(f"/api/conversations/{thread_id}/stop")
    await reader
    retried = await send_with_key(alice, new_message(thread_id, "me too"), "retry-me")
    assert retried.status_code == 200, retried.text
    assert await user_texts(alice, thread_id) == ["long story", "me too"]


@pytest.mark.parametrize(
    "server_options", [{"better_auth_secret": SECRET, "rate_limit_messages_per_minute": 2}]
)
async def test_a_rate_limited_message_is_not_counted_and_leaves_its_key_free(
    alice: ChatKitClient, db: AsyncEngine
) -> None:
    thread_id, _ = await alice.create_thread("one")
    await alice.send(thread_id, "two")

    async def counted() -> int:
        async with db.connect() as conn:
            total = await conn.scalar(
                select(func.sum(RateWindowRow.count)).where(RateWindowRow.user_id == "alice")
            )
        return int(total or 0)

    before = await counted()
    assert before == 2
    for _ in range(3):
        refused = await send_with_key(alice, new_message(thread_id, "three"), "later")
        assert code(refused, 429) == "rate_limited"
    assert await counted() == before, "refused messages do not count"
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(IdempotencyKeyRow)) == 0

    # Once the minute is over the same key goes through: move the window back in time.
    async with db.begin() as conn:
        await conn.execute(
            update(RateWindowRow).values(
                window_start=utcnow().replace(second=0, microsecond=0) - timedelta(minutes=2)
            )
        )
    accepted = await send_with_key(alice, new_message(thread_id, "three"), "later")
    assert accepted.status_code == 200, accepted.text
    assert await user_texts(alice, thread_id) == ["one", "two", "three"]


@pytest.mark.parametrize(
    "server_options",
    [{"better_auth_secret": SECRET, "max_concurrent_runs_per_user": 1}],
)
async def test_a_stale_run_lock_does_not_block_the_thread(
    alice: ChatKitClient, provider: ScriptedProvider, db: AsyncEngine
) -> None:
    """A crashed worker's run (its heartbeat long gone) neither holds its thread nor counts
    against the user's concurrent runs; a live one does."""
    thread_id, _ = await alice.create_thread("hello")

    async def lock(heartbeat_age: timedelta) -> None:
        async with db.begin() as conn:
            await conn.execute(
                insert(ActiveRunRow).values(
                    thread_id=thread_id,
                    run_id="run-of-a-dead-worker",
                    user_id="alice",
                    instance="gone:1",
                    started_at=utcnow() - heartbeat_age,
                    heartbeat_at=utcnow() - heartbeat_age,
                    stop_requested=False,
                )
            )

    await lock(timedelta(seconds=1))
    live = await alice.post(new_message(thread_id, "blocked"))
    assert code(live, 409) == "run_in_progress"
    async with db.begin() as conn:
        await conn.execute(update(ActiveRunRow).values(heartbeat_at=utcnow() - timedelta(hours=1)))

    provider.enqueue(Text("Taken over."))
    events = await alice.send(thread_id, "still there?")
    assert assistant_text(events) == "Taken over."
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(ActiveRunRow)) == 0
    assert await user_texts(alice, thread_id) == ["hello", "still there?"]
