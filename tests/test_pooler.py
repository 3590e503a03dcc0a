"""Connection economy: a transaction pooler in front of PostgreSQL, and a bounded pool.

Which URLs name a pooler; PgBouncer in transaction mode (tests/pgbouncer.py) serving many
concurrent transactions and the migrations; DATABASE_DIRECT_URL for the migrations; and
an exhausted pool answered with 503 `database_busy` (never a hang), streams included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest
from chatkit.store import NotFoundError
from chatkit.types import AssistantMessageContent, AssistantMessageItem, ThreadMetadata
from fastapi import FastAPI, Request
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chatkit_backend.app import create_app
from chatkit_backend.chat.store import SQLStore, new_id
from chatkit_backend.config import ConfigError, Settings, load_settings
from chatkit_backend.context import RequestContext
from chatkit_backend.db import autocommit_engine, create_engine, engine_for, migrate, migrate_for
from chatkit_backend.db_errors import DatabaseBusy, DatabaseUnavailable
from chatkit_backend.db_pooler import names_a_pooler
from chatkit_backend.metrics import DB_CONNECTIONS_IN_USE
from chatkit_backend.runs.admission import Admission
from chatkit_backend.runs.limits import Limits
from chatkit_backend.runs.registry import RunRegistry

from .conftest import scripted_settings
from .databases import postgres_database
from .db_outages import PostgresDown, during
from .live import live_server, parse_sse
from .pgbouncer import PgBouncer
from .scripted_provider import ScriptedProvider, Text
from .tcp_proxy import TcpProxy

# --- which URLs name a pooler ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@db.internal:6432/chat",  # PgBouncer's port
        "postgresql://u:p@aws-0-eu-west-1.pooler.supabase.com:6543/postgres",
        "postgresql://u:p@aws-0-eu-west-1.pooler.supabase.com:5432/postgres",
        "postgresql://u:p@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/neondb",
        "postgresql://u:p@db.internal/chat?pgbouncer=true",  # Prisma's flag
        "postgresql://u:p@db.internal/chat?sslmode=require&pgbouncer=1",
    ],
)
def test_pooler_urls_are_recognised(url: str) -> None:
    assert names_a_pooler(url)
    assert load_settings(database_url=url).transaction_pooled


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@db.internal/chat",
        "postgresql://u:p@db.internal:5432/chat?pgbouncer=false",
        "postgresql://u:p@ep-cool-darkness-123456.us-east-2.aws.neon.tech/neondb",
        "postgresql://u:p@db.supabase.co:5432/postgres",
        "postgresql://u:p@db.internal:notaport/chat",
    ],
)
def test_direct_urls_are_not_taken_for_poolers(url: str) -> None:
    assert not names_a_pooler(url)


def test_the_setting_overrides_what_the_url_says() -> None:
    direct, pooled = "postgresql://u@db/chat", "postgresql://u@db:6432/chat"
    assert load_settings(database_url=direct, database_pooler="transaction").transaction_pooled
    assert not load_settings(database_url=pooled, database_pooler="None").transaction_pooled
    assert not load_settings(
        database_url="sqlite:///x.db", database_pooler="transaction"
    ).transaction_pooled
    with pytest.raises(ConfigError, match="DATABASE_POOLER"):
        load_settings(database_pooler="session")


def test_pooler_only_url_options_are_not_passed_to_the_driver() -> None:
    settings = load_settings(
        database_url="postgresql://u@db:6432/chat?pgbouncer=true&sslmode=require",
        database_direct_url="postgresql://u@db:5432/chat?channel_binding=require",
    )
    assert settings.async_database_url == "postgresql+asyncpg://u@db:6432/chat?ssl=require"
    assert settings.async_direct_url == "postgresql+asyncpg://u@db:5432/chat"


def test_the_direct_url_is_optional_and_postgresql_only() -> None:
    assert load_settings(database_direct_url="  ").async_direct_url is None
    with pytest.raises(ConfigError, match="DATABASE_DIRECT_URL"):
        load_settings(database_direct_url="sqlite:///other.db")


def test_pool_settings_reach_the_engine() -> None:
    settings = load_settings(
        database_url="postgresql://u@db.internal/chat",
        database_pool_size=3,
        database_max_overflow=0,
        database_pool_timeout=2.5,
    )
    engine = engine_for(settings)
    pool: Any = engine.pool
    assert (pool.size(), pool._max_overflow, pool._timeout) == (3, 0, 2.5)
    assert engine.sync_engine.dialect.name == "postgresql"
    with pytest.raises(ConfigError, match="DATABASE_POOL_SIZE"):
        load_settings(database_pool_size=0)


# --- through PgBouncer in transaction mode --------------------------------------------------


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with postgres_database() as url:
        yield url


ADD = text("SELECT CAST(:a AS integer) + CAST(:b AS integer)")


async def test_concurrent_transactions_through_pgbouncer(pgbouncer: PgBouncer, pg_url: str) -> None:
    settings = load_settings(database_url=pgbouncer.url(pg_url), database_pooler="transaction")
    engine = engine_for(settings)
    try:
        await migrate(engine)  # the migration lock is a transaction lock: fine here

        async def worker(n: int) -> int:
            total = 0
            for round_ in range(15):
                # The same statements again and again, as a server runs them: with a
                # statement cache these fail on the next server connection.
                async with engine.begin() as conn:
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(hashtext(:u))"), {"u": f"u{n}"}
                    )
                    total += await conn.scalar(ADD, {"a": n, "b": round_})
                    total += await conn.scalar(text("SELECT count(*) FROM alembic_version"))
            return total

        results = await asyncio.gather(*(worker(n) for n in range(30)))
        assert results == [15 * n + sum(range(15)) + 15 for n in range(30)]
    finally:
        await engine.dispose()
    assert "prepared statement" not in pgbouncer.log()


async def test_migrations_take_the_direct_url_when_it_is_set(
    pgbouncer: PgBouncer, pg_url: str
) -> None:
    settings = load_settings(
        database_url=pgbouncer.url(pg_url),
        database_pooler="transaction",
        database_direct_url=pg_url,
    )
    engine = engine_for(settings)
    try:
        await migrate_for(settings, engine)
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(pg_url)
    try:
        # A direct connection's own session: nothing of the migration is left locked.
        assert await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0
    finally:
        await conn.close()


# --- an exhausted pool: 503 database_busy, and streams end ----------------------------------

POOL = {"database_pool_size": 1, "database_max_overflow": 1, "database_pool_timeout": 0.5}


def holding_app(settings: Settings) -> FastAPI:
    """The app, plus two test routes that take every pooled connection and give them back."""
    app = create_app(settings)
    held: list[AsyncConnection] = []

    @app.post("/test/hold")
    async def hold(request: Request) -> dict[str, int]:
        engine = request.app.state.engine
        while len(held) < POOL["database_pool_size"] + POOL["database_max_overflow"]:
            conn = engine.connect()
            try:
                await conn.start()
            except DatabaseBusy:
                continue  # a request of the server's has it for a moment
            held.append(conn)
        return {"held": len(held)}

    @app.post("/test/release")
    async def release() -> dict[str, int]:
        while held:
            await held.pop().close()
        return {"held": 0}

    return app


@pytest.fixture
def busy_server(pg_url: str, provider: ScriptedProvider) -> Iterator[str]:
    settings = scripted_settings(pg_url, provider, heartbeat_seconds=0.2, **POOL)
    with live_server(settings, holding_app(settings)) as url:
        yield url


IN_USE, CAPACITY = "chatkit_db_connections_in_use", "chatkit_db_connections_capacity"
BUSY = 'chatkit_errors_total{kind="database_busy"}'


async def metric_values(http: httpx.AsyncClient) -> dict[str, float]:
    text = (await http.get("/metrics")).text
    lines = [line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#")]
    return {name: float(value) for name, value in lines}


def assert_busy(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"].isdigit()
    assert response.json()["code"] == "database_busy"


async def test_an_exhausted_pool_is_a_503_to_retry_not_a_hang(busy_server: str) -> None:
    async with httpx.AsyncClient(base_url=busy_server, timeout=30) as http:
        assert (await http.get("/api/conversations")).status_code == 200
        before = await metric_values(http)
        assert (await http.post("/test/hold")).json() == {"held": 2}
        assert_busy(await http.get("/api/conversations"))
        assert_busy(await http.post("/api/chat/stream", json={"message": "hello"}))
        # The sign on /metrics: every connection in use, and busy errors counted.
        during = await metric_values(http)
        assert during[IN_USE] - before[IN_USE] == 2
        assert during[CAPACITY] >= 2
        assert during[BUSY] - before.get(BUSY, 0) == 2
        await http.post("/test/release")
        assert (await http.get("/api/conversations")).status_code == 200
        # Back to what it was once the requests of the moment are done.
        for _ in range(50):
            if (await metric_values(http))[IN_USE] == before[IN_USE]:
                break
            await asyncio.sleep(0.1)
        assert (await metric_values(http))[IN_USE] == before[IN_USE]


async def test_a_stream_that_runs_out_of_connections_still_ends(
    busy_server: str, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text(" ".join(f"w{i}" for i in range(150)), chunk_chars=4, delay=0.02))
    provider.enqueue(Text("Back again."))
    async with httpx.AsyncClient(base_url=busy_server, timeout=30) as http:
        replying = asyncio.Event()

        async def read() -> tuple[str, str]:
            received = ""
            async with http.stream("POST", "/api/chat/stream", json={"message": "hi"}) as resp:
                assert resp.status_code == 200
                async for chunk in resp.aiter_text():
                    received += chunk
                    if '"type": "text"' in received:
                        replying.set()
            return resp.headers["x-thread-id"], received

        reader = asyncio.create_task(read())
        await asyncio.wait_for(replying.wait(), 20)
        await http.post("/test/hold")
        thread_id, received = await asyncio.wait_for(reader, 30)
        events = parse_sse(received)
        assert "error" in [e["type"] for e in events]
        assert events[-1]["type"] == "done" and "data: [DONE]\n\n" in received
        await http.post("/test/release")

        # The connections are back: the run's lock is dropped and the thread goes on.
        for _ in range(100):
            again = await http.post(
                "/api/chat/stream", json={"message": "again", "thread_id": thread_id}
            )
            if again.status_code != 409:
                break
            await asyncio.sleep(0.1)
        assert again.status_code == 200, again.text
        reply = "".join(e["content"] for e in parse_sse(again.text) if e["type"] == "text")
        assert reply == "Back again."


async def test_create_engine_without_a_pool_for_one_off_work(pg_url: str) -> None:
    engine = create_engine(
        load_settings(database_url=pg_url).async_database_url, pooled=False, transaction_pooler=True
    )
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()


# --- round trips per transaction (PostgreSQL) ------------------------------------------------


def _log_round_trips(engine: Any) -> list[str]:
    """The simple-protocol queries each pooled connection sends: pings, BEGIN, COMMIT,
    ROLLBACK (asyncpg's query logger; the statements themselves run as prepared ones,
    which it does not log)."""
    sent: list[str] = []

    @event.listens_for(engine.sync_engine, "connect")
    def _logged(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(
            lambda q: sent.append(q.query.rstrip(";").split(" ISOLATION")[0])
        )

    return sent


@pytest.fixture
async def pg_engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    """The server's kind of engine (pooled, pinged) on a throw-away database."""
    engine = create_engine(load_settings(database_url=pg_url).async_database_url)
    yield engine
    await engine.dispose()


async def test_a_checkout_pings_once_a_new_connection_not_at_all(pg_engine: AsyncEngine) -> None:
    engine = pg_engine
    sent = _log_round_trips(engine)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE counted (n integer)"))
    assert sent == ["BEGIN", "COMMIT"]  # a new connection needs no ping
    sent.clear()
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO counted VALUES (1)"))
    # However recently used: one ping (SQLAlchemy's own wraps an empty query in BEGIN,
    # ROLLBACK).
    assert sent == ["SELECT 1", "BEGIN", "COMMIT"]


async def test_a_read_sends_no_begin(pg_engine: AsyncEngine) -> None:
    engine = pg_engine
    sent = _log_round_trips(engine)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE counted (n integer)"))
        await conn.execute(text("INSERT INTO counted VALUES (1)"))
    sent.clear()
    async with autocommit_engine(engine).connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM counted")) == 1
    assert sent == ["SELECT 1"]
    # A connection that served a read is back in transactions for the next writer.
    sent.clear()
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO counted VALUES (2)"))
        await conn.execute(text("INSERT INTO counted VALUES (3)"))
    assert sent == ["SELECT 1", "BEGIN", "COMMIT"]
    sent.clear()
    with pytest.raises(ProgrammingError):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO counted VALUES (4)"))
            await conn.execute(text("INSERT INTO no_such_table VALUES (1)"))
    assert sent == ["SELECT 1", "BEGIN", "ROLLBACK"]
    async with autocommit_engine(engine).connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM counted")) == 3


@pytest.mark.parametrize("seen", [False, True], ids=["at-once", "seen-closed"])
async def test_a_pooled_connection_the_server_dropped_is_replaced_at_checkout(
    pg_engine: AsyncEngine, pg_url: str, seen: bool
) -> None:
    # At once: the ping finds it gone. Seen closed: asyncpg knows, and no ping is sent.
    sent = _log_round_trips(pg_engine)
    async with pg_engine.connect() as conn:
        first = await conn.scalar(text("SELECT pg_backend_pid()"))
        driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    ended = asyncio.Event()
    driver.add_termination_listener(lambda _conn: ended.set())
    # An administrator (or a failover) ends the idle pooled connection.
    admin = await asyncpg.connect(pg_url)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
    finally:
        await admin.close()
    if seen:
        async with asyncio.timeout(5):
            await ended.wait()
        assert driver.is_closed()
    sent.clear()
    # The pool opens a new one: no error for this read.
    async with autocommit_engine(pg_engine).connect() as conn:
        second = await conn.scalar(text("SELECT pg_backend_pid()"))
    assert second != first
    if seen:
        assert sent == []  # no ping for a connection known closed, none for a new one


async def test_a_threads_row_and_an_item_are_each_written_in_one_statement(
    pg_engine: AsyncEngine,
) -> None:
    """A new thread's row before its first event, and each item of a turn with its
    thread's activity time: one statement each (after the check-out's ping), no BEGIN,
    no COMMIT."""
    sent = _log_round_trips(pg_engine)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement.split()[0])

    await migrate(pg_engine)
    store = SQLStore(pg_engine)
    alice = RequestContext(user_id="alice")
    thread = ThreadMetadata(id=new_id("thread"), created_at=datetime.now(), title="t")
    await store.save_thread(thread, alice)
    sent.clear()
    event.listen(pg_engine.sync_engine, "before_cursor_execute", record)
    await store.save_thread(thread.model_copy(update={"title": "renamed"}), alice)
    assert (sent, statements) == (["SELECT 1"], ["INSERT"])
    statements.clear()
    item = AssistantMessageItem(
        id="msg_1",
        thread_id=thread.id,
        created_at=datetime.now(),
        content=[AssistantMessageContent(text="hello")],
    )
    sent.clear()
    await store.add_thread_item(thread.id, item, alice)
    assert (sent, statements) == (["SELECT 1"], ["WITH"])
    event.remove(pg_engine.sync_engine, "before_cursor_execute", record)
    assert (await store.load_thread(thread.id, alice)).title == "renamed"
    assert (await store.load_item(thread.id, "msg_1", alice)).id == "msg_1"
    # Still scoped: another user's save of the same id changes nothing, and an item for
    # a thread that is not the user's is not written.
    bob = RequestContext("bob")
    await store.save_thread(thread.model_copy(update={"title": "bob's"}), bob)
    assert (await store.load_thread(thread.id, alice)).title == "renamed"
    with pytest.raises(NotFoundError):
        await store.add_thread_item(thread.id, item.model_copy(update={"id": "msg_2"}), bob)
    with pytest.raises(NotFoundError):
        await store.load_item(thread.id, "msg_2", alice)


async def test_admission_is_one_statement_committed_without_waiting_for_the_wal_flush(
    pg_engine: AsyncEngine,
) -> None:
    """Admission (postgres_admission.py) sends only the call of `chatkit_admit`, a
    release only its one statement (each after its check-out's ping); both write
    bookkeeping only (runs/registry.py) and skip the flush wait, every other transaction
    keeps it."""
    engine = pg_engine
    sent = _log_round_trips(engine)
    await migrate(engine)
    registry = RunRegistry(engine, max_runs_per_user=5)
    admission = Admission(Limits(engine, messages_per_minute=5, daily_token_budget=None), registry)
    async with engine.begin() as conn:
        # What admission's and release's own transactions have for synchronous_commit,
        # seen by triggers on the rows they write.
        await conn.execute(text("CREATE TABLE seen (setting text)"))
        await conn.execute(
            text(
                "CREATE FUNCTION note_setting() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "INSERT INTO seen VALUES (current_setting('synchronous_commit')); "
                "RETURN NEW; END $$"
            )
        )
        await conn.execute(
            text(
                "CREATE TRIGGER noted AFTER INSERT OR DELETE ON active_runs "
                "FOR EACH ROW EXECUTE FUNCTION note_setting()"
            )
        )
        await conn.execute(
            text(
                "CREATE TRIGGER noted_usage AFTER INSERT ON usage "
                "FOR EACH ROW EXECUTE FUNCTION note_setting()"
            )
        )
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement.split()[0] + " " + statement.split()[1])

    try:
        with pytest.raises(TypeError):  # SQLite's admission, without PostgreSQL's user lock
            await registry.acquire("thr_1", RequestContext(user_id="u"))
        sent.clear()
        event.listen(engine.sync_engine, "before_cursor_execute", record)
        lease = await admission.admit("thr_1", RequestContext(user_id="u"), "key-1")
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        assert sent == ["SELECT 1"]  # the ping; no BEGIN, no COMMIT
        assert statements == ["SELECT refusal,"]
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT setting FROM seen")) == "off"
            assert await conn.scalar(text("SELECT count(*) FROM idempotency_keys")) == 1
        statements.clear()
        lease.usage = {
            "user_id": "u",
            "thread_id": "thr_1",
            "run_id": lease.run_id,
            "model": "m",
            "input_tokens": 1,
            "output_tokens": 2,
            "duration_ms": 3,
            "created_at": datetime.now(),
        }
        sent.clear()
        event.listen(engine.sync_engine, "before_cursor_execute", record)
        await registry.release(lease)
        # A run with no usage row to write (it failed before the model answered).
        bare = await admission.admit("thr_2", RequestContext(user_id="u"), None)
        await registry.release(bare)
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        assert sent == ["SELECT 1"] * 3
        assert statements == ["WITH no_flush_wait", "SELECT refusal,", "WITH no_flush_wait"]
        async with engine.begin() as conn:  # set_config(..., true): gone with its commit
            assert await conn.scalar(text("SHOW synchronous_commit")) == "on"
            assert await conn.scalar(text("SELECT count(*) FROM usage")) == 1
            assert await conn.scalar(text("SELECT count(*) FROM active_runs")) == 0
            # Admission, usage row, lock dropped; admission, lock dropped.
            assert (await conn.scalars(text("SELECT setting FROM seen"))).all() == ["off"] * 5
    finally:
        await registry.close()


async def test_connections_in_use_stay_true_through_an_outage(pg_url: str) -> None:
    """/metrics' connections in use (db._count_connections) after check-outs that failed
    while PostgreSQL was away: SQLAlchemy checks such a connection in without it ever
    having been checked out, which once counted the gauge down for nothing."""
    url = make_url(pg_url)
    assert url.host is not None and url.port is not None
    with TcpProxy(url.host, url.port) as proxy:
        through = load_settings(
            database_url=url.set(port=proxy.port).render_as_string(hide_password=False)
        )
        engine = create_engine(through.async_database_url, pool_size=2, max_overflow=0)
        try:
            async with engine.connect() as conn:
                await conn.scalar(text("SELECT 1"))
            before = DB_CONNECTIONS_IN_USE._value.get()
            with during(PostgresDown(proxy)):
                for _ in range(3):
                    with pytest.raises(DatabaseUnavailable):
                        async with engine.connect() as conn:
                            await conn.scalar(text("SELECT 1"))
            assert DB_CONNECTIONS_IN_USE._value.get() == before
            async with engine.connect() as conn:
                assert await conn.scalar(text("SELECT 1")) == 1
                assert DB_CONNECTIONS_IN_USE._value.get() == before + 1
            assert DB_CONNECTIONS_IN_USE._value.get() == before
        finally:
            await engine.dispose()
