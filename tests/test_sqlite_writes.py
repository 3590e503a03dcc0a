"""SQLite writers of one process queue on one lock (chatkit_backend/sqlite_writes.py).

The store's and the run registry's write transactions used to queue on locks of their
own and then collide inside SQLite, whose busy handler sleeps and polls: with 200 new
streams at once the first byte came after 3.2-3.6 s instead of about 1 s (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkit_backend.chat.store import SQLStore
from chatkit_backend.context import RequestContext
from chatkit_backend.db import create_engine, migrate
from chatkit_backend.runs.registry import RunRegistry
from chatkit_backend.sqlite_writes import writer_lock


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'writes.db'}")
    await migrate(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


async def test_one_lock_per_engine(engine: AsyncEngine, tmp_path: Path) -> None:
    other = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    try:
        assert writer_lock(engine) is writer_lock(engine)
        assert writer_lock(other) is not writer_lock(engine)
    finally:
        await other.dispose()


async def test_the_registry_waits_for_the_store_before_touching_the_database(
    engine: AsyncEngine,
) -> None:
    store = SQLStore(engine)
    registry = RunRegistry(engine, max_runs_per_user=5)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with store._write():
            # The store holds the write queue: admission must wait on it, not go into
            # SQLite to wait in its busy handler.
            admit = asyncio.create_task(registry.acquire("thr_1", RequestContext(user_id="u")))
            for _ in range(20):
                await asyncio.sleep(0.01)
            assert not admit.done()
            assert statements == []
        lease = await asyncio.wait_for(admit, 10)
        assert lease.thread_id == "thr_1"
        assert statements  # it ran once the store's transaction had committed
        await registry.release(lease)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        await registry.close()
