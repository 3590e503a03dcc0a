"""Database faults (SQLite and PostgreSQL): an outage is a 503 with Retry-After, every
stream still ends, the run lock is dropped once the database is back, readiness says so,
and the server heals by itself, with no restart.

The faults are real (tests/db_outages.py): a server process whose file writes fail (a
failing disk), PostgreSQL going away behind a TCP proxy, a PostgreSQL database switched to
read-only, a SQLite file moved away or made read-only. Servers that get a fault run as
`chatkit-backend serve` processes, so the fault hits that process alone.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from chatkit_backend.app import create_app
from chatkit_backend.db import create_engine
from chatkit_backend.db_errors import BUSY, READ_ONLY, UNREACHABLE, DatabaseUnavailable

from .conftest import scripted_settings
from .databases import admin_connection, postgres_database, sqlite_url
from .db_outages import (
    Fault,
    PostgresDown,
    WritesFail,
    during,
    permission_override_can_be_dropped,
    without_file_permission_override,
)
from .live import assistant_text, free_port, live_server, parse_sse, user_input
from .processes import ServerProcess, clean_env
from .scripted_provider import ScriptedProvider, Text
from .tcp_proxy import TcpProxy

SLOW = Text(" ".join(f"w{i}" for i in range(150)), chunk_chars=4, delay=0.02)
OUTAGE = "The database is unavailable"


def server_env(provider: ScriptedProvider, database_url: str) -> dict[str, str]:
    return clean_env(
        DATABASE_URL=database_url,
        MODEL="openai/scripted",
        MODEL_API_BASE=provider.base_url,
        MODEL_API_KEY="test-key",
        HEARTBEAT_SECONDS="1",
        # A crashed worker's lock goes stale after six minutes here: a thread that is free
        # again sooner had its lock released, not taken over.
        RUN_HEARTBEAT_SECONDS="60",
    )


@dataclass
class Served:
    url: str
    fault: Fault


@pytest.fixture
def served(database_url: str, provider: ScriptedProvider, tmp_path: Path) -> Iterator[Served]:
    """A server process and the outage that fits its database: on SQLite its disk fails
    (every file write of the process), on PostgreSQL the database server goes away."""
    if database_url.startswith("sqlite"):
        server = ServerProcess(server_env(provider, database_url), tmp_path)
        try:
            yield Served(server.url, WritesFail(server.proc.pid))
        finally:
            server.stop()
        return
    url = make_url(database_url)
    assert url.host and url.port
    with TcpProxy(url.host, url.port) as proxy:
        through_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
        server = ServerProcess(server_env(provider, through_proxy), tmp_path)
        try:
            yield Served(server.url, PostgresDown(proxy))
        finally:
            server.stop()


@pytest.fixture
async def http(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        yield client


def assert_outage(response: httpx.Response) -> None:
    """A 503 problem that says the database is unavailable and when to come back."""
    assert response.status_code == 503, (response.request.url, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"].isdigit()
    body = response.json()
    assert body["status"] == 503
    assert body["detail"].startswith(OUTAGE), body
    assert body["code"] == "database_unavailable"


def titles(page: httpx.Response) -> set[str]:
    assert page.status_code == 200, page.text
    return {task["title"] for task in page.json()["items"]}


# --- an outage answers 503, and only the outage ------------------------------------------


async def test_a_database_outage_is_a_503_with_retry_after_until_the_database_is_back(
    served: Served, http: httpx.AsyncClient, database_url: str
) -> None:
    assert (await http.post("/api/tasks", json={"title": "before"})).status_code == 201
    new_thread = {"type": "threads.create", "params": {"input": user_input("hello")}}
    with during(served.fault):
        # Writes fail on both databases; a message is refused before any stream starts.
        assert_outage(await http.post("/api/tasks", json={"title": "during"}))
        assert_outage(await http.post("/chatkit", json=new_thread))
        assert_outage(await http.post("/api/chat/stream", json={"message": "hello"}))
        if database_url.startswith("postgresql"):
            assert_outage(await http.get("/api/tasks"))
            assert_outage(await http.get("/api/conversations"))
            threads = {"type": "threads.list", "params": {}}
            assert_outage(await http.post("/chatkit", json=threads))
    assert (await http.post("/api/tasks", json={"title": "after"})).status_code == 201
    assert titles(await http.get("/api/tasks")) == {"before", "after"}


def test_a_programming_error_in_the_database_is_still_a_500(
    database_url: str, provider: ScriptedProvider
) -> None:
    settings = scripted_settings(database_url, provider)
    app = create_app(settings)

    @app.get("/test/bad-statement")
    async def bad_statement(request: Request) -> None:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT no_such_column FROM no_such_table"))

    with live_server(settings, app) as url:
        response = httpx.get(f"{url}/test/bad-statement", timeout=10)
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert "Request id" in response.json()["detail"]
        assert httpx.get(f"{url}/api/tasks", timeout=10).status_code == 200


# --- the engine tells an outage from a bug ---------------------------------------------------


async def test_sqlite_errors_are_unavailable_only_when_the_database_is(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        # Another process holds the write lock ("database is locked").
        other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(DatabaseUnavailable) as locked:
                async with engine.begin() as conn:
                    await conn.exec_driver_sql("PRAGMA busy_timeout=0")  # no 30 s wait
                    await conn.execute(text("INSERT INTO t VALUES (1)"))
            assert locked.value.reason == BUSY
        finally:
            other.execute("ROLLBACK")
            other.close()
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (1), (1)"))
        with pytest.raises(OperationalError):  # a bug, not an outage
            async with engine.connect() as conn:
                await conn.execute(text("SELECT * FROM no_such_table"))
    finally:
        await engine.dispose()
    missing = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    (tmp_path / "db.sqlite").unlink()
    (tmp_path / "db.sqlite").mkdir()  # a directory where the file should be: cannot open
    try:
        with pytest.raises(DatabaseUnavailable) as cannot_open:
            async with missing.connect() as conn:
                await conn.execute(text("SELECT 1"))
        assert cannot_open.value.reason == UNREACHABLE
    finally:
        await missing.dispose()
    # aiosqlite stops the thread of a connection that failed to open without waiting for
    # it; the thread then hands its last result to this test's loop. Once the loop is
    # closed that fails in the thread, and pytest charges it to whichever test runs then.
    await asyncio.to_thread(_join_aiosqlite_threads)


def _join_aiosqlite_threads() -> None:
    for thread in threading.enumerate():
        if thread.name.endswith("(_connection_worker_thread)"):
            thread.join(timeout=10)


async def test_postgres_errors_are_unavailable_only_when_the_database_is() -> None:
    async with postgres_database() as database_url:
        url = make_url(database_url).set(drivername="postgresql+asyncpg")
        closed_port = create_engine(url.set(port=free_port()).render_as_string(False))
        no_database = create_engine(url.set(database="no_such_db").render_as_string(False))
        engine = create_engine(url.render_as_string(False))
        try:
            for unreachable in (closed_port, no_database):
                with pytest.raises(DatabaseUnavailable) as refused:
                    async with unreachable.connect() as conn:
                        await conn.execute(text("SELECT 1"))
                assert refused.value.reason == UNREACHABLE
            with pytest.raises(DatabaseUnavailable) as read_only:
                async with engine.begin() as conn:
                    await conn.execute(text("SET TRANSACTION READ ONLY"))
                    await conn.execute(text("CREATE TABLE t (id int)"))
            assert read_only.value.reason == READ_ONLY
            with pytest.raises(ProgrammingError):  # a bug, not an outage
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT * FROM no_such_table"))
        finally:
            for each in (closed_port, no_database, engine):
                await each.dispose()


# --- every stream ends --------------------------------------------------------------------


def first_message(wire: str, text: str) -> tuple[str, dict[str, Any]]:
    if wire == "chatkit":
        return "/chatkit", {"type": "threads.create", "params": {"input": user_input(text)}}
    return "/api/chat/stream", {"message": text}


def next_message(wire: str, thread_id: str, text: str) -> tuple[str, dict[str, Any]]:
    if wire == "chatkit":
        params = {"thread_id": thread_id, "input": user_input(text)}
        return "/chatkit", {"type": "threads.add_user_message", "params": params}
    return "/api/chat/stream", {"message": text, "thread_id": thread_id}


def reply_text(events: list[dict[str, Any]]) -> str:
    """The assistant's words, in either wire format."""
    simple = "".join(e["content"] for e in events if e["type"] == "text")
    return simple or assistant_text(events)


async def read_while_failing(
    http: httpx.AsyncClient, fault: Fault, path: str, body: dict[str, Any]
) -> tuple[httpx.Headers, str]:
    """Start a stream, break the database once the reply is streaming, read to the end."""
    replying = asyncio.Event()

    async def read() -> tuple[httpx.Headers, str]:
        received = ""
        async with http.stream("POST", path, json=body) as response:
            assert response.status_code == 200, await response.aread()
            async for chunk in response.aiter_text():
                received += chunk
                if "thread.item.updated" in received or '"type": "text"' in received:
                    replying.set()
        return response.headers, received

    reader = asyncio.create_task(read())
    await asyncio.wait_for(replying.wait(), 20)
    with during(fault):
        # Before the fix the lock's release failed in the stream's close path and the
        # stream never ended: one error event, then pings forever.
        return await asyncio.wait_for(reader, 60)


@pytest.mark.parametrize("wire", ["chatkit", "simple"])
async def test_a_database_failure_while_a_stream_runs_ends_the_stream_with_an_error(
    served: Served, http: httpx.AsyncClient, provider: ScriptedProvider, wire: str
) -> None:
    provider.enqueue(SLOW, Text("Back again."))
    headers, received = await read_while_failing(http, served.fault, *first_message(wire, "hello"))
    events = parse_sse(received)
    assert "error" in [event["type"] for event in events]
    if wire == "simple":
        assert events[-1]["type"] == "done"
        assert received.endswith("data: [DONE]\n\n")
        thread_id = headers["x-thread-id"]
    else:
        assert events[0]["type"] == "thread.created"
        thread_id = events[0]["thread"]["id"]

    # The database is back: the lock that could not be released is dropped soon (not
    # when it goes stale), so the thread takes the next message.
    for _ in range(150):
        path, body = next_message(wire, thread_id, "again")
        again = await http.post(path, json=body)
        if again.status_code != 409:
            break
        await asyncio.sleep(0.1)
    assert again.status_code == 200, again.text
    assert reply_text(parse_sse(again.text)) == "Back again."
    conversation = (await http.get(f"/api/conversations/{thread_id}")).json()
    said = [m["content"] for m in conversation["messages"] if m["role"] == "user"]
    assert said == ["hello", "again"], "the first message was kept"


# --- readiness ------------------------------------------------------------------------------


def wait_until_ready(url: str) -> None:
    """The server answers, but the model libraries load for a few seconds more."""
    for _ in range(300):
        if httpx.get(f"{url}/health/ready", timeout=10).status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError("the server did not become ready")


def assert_not_ready(response: httpx.Response, *reasons: str) -> None:
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert detail.startswith(OUTAGE) and any(reason in detail for reason in reasons), detail


async def test_readiness_is_503_while_the_database_is_down(
    served: Served, http: httpx.AsyncClient
) -> None:
    assert (await http.get("/health/ready")).status_code == 200
    with during(served.fault):
        assert_not_ready(await http.get("/health/ready"), "unreachable", "storage")
        assert (await http.get("/health")).status_code == 200, "the process itself is alive"
    assert (await http.get("/health/ready")).status_code == 200


def test_readiness_is_503_while_the_sqlite_file_is_gone(
    tmp_path: Path, provider: ScriptedProvider
) -> None:
    """The directory of the database goes away (an unmounted volume): connections the
    server holds still read the old file, but nothing can open it."""
    data = tmp_path / "data"
    data.mkdir()
    with live_server(scripted_settings(sqlite_url(data), provider)) as url:
        wait_until_ready(url)
        data.rename(tmp_path / "elsewhere")
        try:
            assert_not_ready(httpx.get(f"{url}/health/ready", timeout=10), "unreachable")
        finally:
            (tmp_path / "elsewhere").rename(data)
        assert httpx.get(f"{url}/health/ready", timeout=10).status_code == 200


async def test_readiness_and_writes_are_503_while_postgres_is_read_only(
    provider: ScriptedProvider,
) -> None:
    """A database switched to read-only (as a hot standby or a maintenance switch is)."""
    async with postgres_database() as database_url:
        name = make_url(database_url).database
        settings = scripted_settings(database_url, provider)
        with live_server(settings) as url:
            await asyncio.to_thread(wait_until_ready, url)
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                await set_read_only(name, True)
                try:
                    assert_not_ready(await http.get("/health/ready"), "read-only")
                    assert_outage(await http.post("/api/tasks", json={"title": "no"}))
                    assert (await http.get("/api/tasks")).status_code == 200
                finally:
                    await set_read_only(name, False)
                assert (await http.get("/health/ready")).status_code == 200
                assert (await http.post("/api/tasks", json={"title": "yes"})).status_code == 201


async def set_read_only(database: str | None, read_only: bool) -> None:
    admin = await admin_connection()
    try:
        setting = "SET default_transaction_read_only = on" if read_only else "RESET ALL"
        await admin.execute(f'ALTER DATABASE "{database}" {setting}')
        # Sessions read the setting when they start: end the server's current ones.
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            database,
        )
    finally:
        await admin.close()


# --- SQLite heals by itself ---------------------------------------------------------------


@pytest.fixture
def sqlite_server_under_file_modes(
    tmp_path: Path, provider: ScriptedProvider
) -> Iterator[tuple[str, Path]]:
    """A server process on a SQLite file that is subject to file modes even under root."""
    if not permission_override_can_be_dropped():
        pytest.skip("running as root without CAP_SETPCAP: chmod cannot make a file read-only")
    url = sqlite_url(tmp_path)
    server = ServerProcess(
        server_env(provider, url), tmp_path, preexec_fn=without_file_permission_override
    )
    try:
        yield server.url, tmp_path / "chatkit.db"
    finally:
        server.stop()


async def test_sqlite_made_read_only_then_writable_serves_every_request_again(
    sqlite_server_under_file_modes: tuple[str, Path],
) -> None:
    """The database file is made read-only for a while (chmod), then writable again.

    A SQLite connection opened while the file is read-only stays read-only for its whole
    life. Before the fix such connections went back to the pool, and after the file was
    writable again the requests that drew one kept failing ("attempt to write a readonly
    database") until a restart. The fault is made real for a root test run by starting
    the server without the capabilities that let root ignore file modes. The requests
    come in concurrent bursts, so the server has to open new connections while the file
    is read-only.
    """
    url, database = sqlite_server_under_file_modes
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        assert (await http.post("/api/tasks", json={"title": "before"})).status_code == 201
        mode = database.stat().st_mode
        database.chmod(0o444)
        try:
            assert_not_ready(await http.get("/health/ready"), "read-only")
            refused = 0
            for burst in range(10):
                answers = await asyncio.gather(
                    *(http.post("/api/tasks", json={"title": f"ro {burst}"}) for _ in range(12)),
                    *(http.get("/api/tasks") for _ in range(4)),
                )
                for answer in answers:
                    if answer.status_code >= 400:
                        assert_outage(answer)  # never a 500
                        refused += 1
                if refused:
                    break
            assert refused, "no connection was opened while the file was read-only"
        finally:
            database.chmod(mode)

        assert (await http.get("/health/ready")).status_code == 200
        for i in range(40):
            created = await http.post("/api/tasks", json={"title": f"after {i}"})
            assert created.status_code == 201, (i, created.text)
            assert (await http.get("/api/tasks", params={"limit": 1})).status_code == 200
