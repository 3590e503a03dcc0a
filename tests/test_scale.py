"""Scale-out on PostgreSQL: several workers and instances behave like one server.

Real `chatkit-backend serve` processes, one database, the scripted provider. Each test
runs twice: connected to PostgreSQL directly, and through PgBouncer in transaction
pooling mode (tests/pgbouncer.py), how Neon's and Supabase's pooled URLs front it.
"""

from __future__ import annotations

import asyncio
import signal
import time
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest

from .conftest import is_title_request
from .databases import postgres_database
from .live import ChatKitClient, assistant_text, parse_sse, start_stream, user_input
from .pgbouncer import PgBouncer
from .processes import COMMAND, ServerProcess, clean_env, run_cli
from .scripted_provider import ScriptedProvider, Text

SECRET = "scale-test-secret-that-is-long-enough-0123456789"
SLOW = Text(" ".join(f"w{i}" for i in range(150)), chunk_chars=4, delay=0.03)


async def start_of_a_minute(latest_second: int = 20) -> None:
    """Return early in a UTC minute: at once if within its first `latest_second` s."""
    second = time.time() % 60
    if second > latest_second:
        await asyncio.sleep(60 - second + 0.2)


def token(user: str) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """The test's database, reached directly (what the test itself checks with)."""
    async with postgres_database() as url:
        yield url


@pytest.fixture(params=["direct", "pgbouncer"])
def database_env(request: pytest.FixtureRequest, pg_url: str) -> dict[str, str]:
    """How the servers reach `pg_url`: directly, or through PgBouncer (transaction mode)."""
    if request.param == "direct":
        return {"DATABASE_URL": pg_url}
    bouncer: PgBouncer = request.getfixturevalue("pgbouncer")
    return {"DATABASE_URL": bouncer.url(pg_url), "DATABASE_POOLER": "transaction"}


@pytest.fixture
def env(database_env: dict[str, str], provider: ScriptedProvider) -> dict[str, str]:
    return clean_env(
        **database_env,
        MODEL="openai/scripted",
        MODEL_API_BASE=provider.base_url,
        MODEL_API_KEY="test-key",
        BETTER_AUTH_SECRET=SECRET,
        RUN_HEARTBEAT_SECONDS="0.5",
        LOG_LEVEL="WARNING",
    )


class Instance(ServerProcess):
    """One `chatkit-backend serve` process (with its workers)."""

    def __init__(self, env: dict[str, str], cwd: Path, workers: int = 1) -> None:
        super().__init__(env, cwd, "--workers", str(workers))

    def client(self, user: str) -> ChatKitClient:
        return ChatKitClient(self.url, headers={"Authorization": f"Bearer {token(user)}"})

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait()


@contextmanager
def instances(env: dict[str, str], cwd: Path, *workers: int) -> Iterator[list[Instance]]:
    started: list[Instance] = []
    try:
        for count in workers:
            started.append(Instance(env, cwd, count))
        yield started
    finally:
        for instance in started:
            instance.stop()


def metric_total(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


async def test_two_workers_answer_many_users_and_count_them_all(
    env: dict[str, str], provider: ScriptedProvider, tmp_path: Path
) -> None:
    users = [f"user-{n}" for n in range(12)]
    with instances(env, tmp_path, 2) as (server,):
        clients = {u: server.client(u) for u in users}

        async def two_turns(user: str) -> str:
            client = clients[user]
            thread_id, events = await client.create_thread(f"hello from {user}")
            assert assistant_text(events) == f"Echo: hello from {user}"
            events = await client.send(thread_id, f"again from {user}")
            assert assistant_text(events) == f"Echo: again from {user}"
            return thread_id

        thread_ids = await asyncio.gather(*(two_turns(u) for u in users))
        for user, thread_id in zip(users, thread_ids, strict=True):
            listed = await clients[user].call("threads.list")
            assert [t["id"] for t in listed["data"]] == [thread_id]
            assert len(await clients[user].items(thread_id)) == 4
            # The REST API reads the same rows, from either worker.
            rest = (await clients[user].http.get("/api/conversations")).json()
            assert [(c["id"], c["message_count"]) for c in rest] == [(thread_id, 4)]
            task = await clients[user].http.post("/api/tasks", json={"title": f"for {user}"})
            assert task.status_code == 201, task.text
            tasks = (await clients[user].http.get("/api/tasks")).json()
            assert [t["title"] for t in tasks["items"]] == [f"for {user}"]
        chat = [r for r in provider.requests if not is_title_request(r)]
        assert len(chat) == 2 * len(users)

        metrics = (await clients[users[0]].http.get("/metrics")).text
        assert metric_total(metrics, "chatkit_turns_total") == 2 * len(users)
        for client in clients.values():
            await client.aclose()


async def test_lock_stop_and_rate_limit_hold_across_instances(
    env: dict[str, str], provider: ScriptedProvider, tmp_path: Path
) -> None:
    env = {**env, "RATE_LIMIT_MESSAGES_PER_MINUTE": "4"}
    with instances(env, tmp_path, 1, 1) as (a, b):
        # The limit counts fixed UTC minutes: begin the five messages early in one, so a
        # slow machine cannot carry them across a boundary (which resets the count).
        await start_of_a_minute()
        on_a, on_b = a.client("alice"), b.client("alice")
        provider.enqueue(SLOW)
        reader, thread_id = await start_stream(
            on_a, {"type": "threads.create", "params": {"input": user_input("story")}}
        )
        busy = await on_b.post(
            {
                "type": "threads.add_user_message",
                "params": {"thread_id": thread_id, "input": user_input("me too")},
            }
        )
        assert busy.status_code == 409
        assert busy.json()["detail"] == "a response is already in progress"

        started = time.monotonic()
        stop = await on_b.http.post(f"/api/conversations/{thread_id}/stop")
        assert stop.json()["stopping"] is True
        record = await provider.wait_for_stream_end_async(-1, timeout=5)
        assert record.client_disconnected, "instance B's stop closed A's provider stream"
        assert record.disconnected_at is not None
        assert record.disconnected_at - started < 1.0, "stopped within a second"
        text = await asyncio.wait_for(reader, 5)
        assert not [e for e in parse_sse(text) if e["type"] == "error"]
        items = await on_b.items(thread_id)
        assert [i["type"] for i in items] == ["user_message", "assistant_message"]

        # Messages 2, 3 and 4 of this minute (the first was the story), spread over both.
        provider.enqueue(Text("ok"), Text("ok"), Text("ok"))
        await on_a.send(thread_id, "two")
        await on_b.send(thread_id, "three")
        await on_a.send(thread_id, "four")
        over = await on_b.post(
            {
                "type": "threads.add_user_message",
                "params": {"thread_id": thread_id, "input": user_input("five")},
            }
        )
        assert over.status_code == 429 and over.headers["retry-after"]
        await on_a.aclose()
        await on_b.aclose()


async def test_a_killed_worker_leaves_no_lock_behind(
    env: dict[str, str], provider: ScriptedProvider, tmp_path: Path, pg_url: str
) -> None:
    with instances(env, tmp_path, 1, 1) as (a, b):
        on_a, on_b = a.client("bob"), b.client("bob")
        provider.enqueue(Text(SLOW.text, chunk_chars=4, delay=0.1))
        reader, thread_id = await start_stream(
            on_a, {"type": "threads.create", "params": {"input": user_input("doomed")}}
        )
        a.kill()
        with pytest.raises(httpx.HTTPError):
            await reader
        await on_a.aclose()

        # Within a few heartbeats the dead worker's lock no longer holds.
        provider.enqueue(Text("I survived"))
        deadline = time.monotonic() + 10
        while True:
            response = await on_b.post(
                {
                    "type": "threads.add_user_message",
                    "params": {"thread_id": thread_id, "input": user_input("still there?")},
                }
            )
            if response.status_code == 200:
                break
            assert response.status_code == 409, response.text
            assert time.monotonic() < deadline, f"the thread stayed locked: {response.text}"
            await asyncio.sleep(0.5)
        assert assistant_text(parse_sse(response.text)) == "I survived"
        conn = await asyncpg.connect(pg_url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM active_runs") == 0
        finally:
            await conn.close()
        await on_b.aclose()


async def test_shutdown_lets_an_active_stream_finish(
    env: dict[str, str], provider: ScriptedProvider, tmp_path: Path
) -> None:
    with instances(env, tmp_path, 1, 1) as (a, b):
        on_a, on_b = a.client("carol"), b.client("carol")
        provider.enqueue(Text("one two three four five six seven", chunk_chars=3, delay=0.1))
        reader, thread_id = await start_stream(
            on_a, {"type": "threads.create", "params": {"input": user_input("finish it")}}
        )
        a.signal(signal.SIGTERM)
        text = await asyncio.wait_for(reader, 20)
        assert assistant_text(parse_sse(text)) == "one two three four five six seven"
        a.proc.wait(timeout=30)
        items = await on_b.items(thread_id)
        assert items[-1]["content"][0]["text"] == "one two three four five six seven"
        await on_a.aclose()
        await on_b.aclose()


async def test_an_idempotency_key_is_honoured_by_every_instance(
    env: dict[str, str], provider: ScriptedProvider, tmp_path: Path
) -> None:
    with instances(env, tmp_path, 1, 1) as (a, b):
        on_a, on_b = a.client("dora"), b.client("dora")
        thread_id, _ = await on_a.create_thread("hello")
        body = {
            "type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": user_input("only once")},
        }
        headers = {"Idempotency-Key": "same-key"}
        first = await on_a.http.post("/chatkit", json=body, headers=headers)
        assert first.status_code == 200
        again = await on_b.http.post("/chatkit", json=body, headers=headers)
        assert again.status_code == 409 and again.json()["code"] == "duplicate_request"
        users = [i for i in await on_b.items(thread_id) if i["type"] == "user_message"]
        assert [i["content"][0]["text"] for i in users] == ["hello", "only once"]
        await on_a.aclose()
        await on_b.aclose()


async def test_concurrent_migrations_and_purge_through_the_same_connection_route(
    env: dict[str, str], provider: ScriptedProvider, tmp_path: Path, pg_url: str
) -> None:
    # Four `migrate` commands at once on the empty database: the migration lock lets one
    # migrate and the rest find nothing to do (through a pooler too: a transaction lock).
    commands = [
        asyncio.create_subprocess_exec(
            *_cli("migrate"), env=env, cwd=tmp_path, stdout=PIPE, stderr=PIPE
        )
        for _ in range(4)
    ]
    procs = await asyncio.gather(*commands)
    outputs = await asyncio.gather(*(p.communicate() for p in procs))
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
        assert b"database is up to date" in out
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM alembic_version") == 1
    finally:
        await conn.close()

    with instances(env, tmp_path, 1) as (server,):
        client = server.client("erin")
        await client.create_thread("old news")
        await client.aclose()
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("UPDATE threads SET updated_at = updated_at - interval '10 days'")
    finally:
        await conn.close()
    purged = run_cli("purge", "--older-than", "7d", env=env, cwd=tmp_path)
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.startswith("purged 1 thread ")
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM threads") == 0
        assert await conn.fetchval("SELECT count(*) FROM thread_items") == 0
    finally:
        await conn.close()


def _cli(*args: str) -> list[str]:
    return [COMMAND, *args]
