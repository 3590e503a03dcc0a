"""The PostgreSQL pool hands connections out first come, first served (db_pool_queue.py).

On the machine's PostgreSQL with a pool of one connection, so every check-out after
the first waits its turn: in order, with nobody taking a returned connection past a
waiter, and with no connection lost to a waiter that gave up or was cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from chatkit_backend.config import load_settings
from chatkit_backend.db import create_engine
from chatkit_backend.db_errors import DatabaseBusy
from chatkit_backend.db_pool_queue import FairAsyncQueue

from .databases import postgres_database


@pytest.fixture
async def one_connection() -> AsyncIterator[AsyncEngine]:
    async with postgres_database() as url:
        async_url = load_settings(database_url=url).async_database_url
        engine = create_engine(async_url, pool_size=1, max_overflow=0, pool_timeout=5)
        yield engine
        await engine.dispose()


async def test_waiters_get_the_connection_in_the_order_they_came(
    one_connection: AsyncEngine,
) -> None:
    engine, served = one_connection, []
    holder = await engine.connect()
    await holder.scalar(text("SELECT 1"))

    async def use(name: str) -> None:
        async with engine.connect() as conn:
            served.append(name)
            await conn.scalar(text("SELECT 1"))

    waiting = []
    for name in ("first", "second", "third"):
        waiting.append(asyncio.create_task(use(name)))
        await asyncio.sleep(0.05)  # queued in this order
    await holder.close()
    # Asks as the connection comes back, before any waiter has run: it must queue.
    await use("late")
    await asyncio.gather(*waiting)
    assert served == ["first", "second", "third", "late"]


async def test_a_waiter_that_gives_up_or_is_cancelled_loses_no_connection(
    one_connection: AsyncEngine,
) -> None:
    engine = one_connection
    pool = engine.sync_engine.pool
    holder = await engine.connect()
    await holder.scalar(text("SELECT 1"))

    async def take() -> int:
        async with engine.connect() as conn:
            return int(await conn.scalar(text("SELECT 7")))

    cancelled = asyncio.create_task(take())
    await asyncio.sleep(0.05)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    # Cancelled in the same moment the connection was handed to it: passed on, not lost.
    handed = asyncio.create_task(take())
    await asyncio.sleep(0.05)
    await holder.close()  # hands the connection to `handed`'s waiter ...
    handed.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await handed
    assert await take() == 7
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    # A waiter past the pool's timeout gets DatabaseBusy (a 503); the pool still works.
    busy = create_engine(
        engine.url.render_as_string(hide_password=False),
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.2,
    )
    try:
        held = await busy.connect()
        with pytest.raises(DatabaseBusy):
            async with busy.connect():
                pass
        await held.close()
        async with busy.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await busy.dispose()


async def test_a_connection_handed_over_as_its_waiter_is_cancelled_is_kept_past_maxsize() -> None:
    """The queue itself, called as the pool calls it (inside SQLAlchemy's greenlet): the
    pool can get more connections back than it keeps idle (its overflow), so the one
    handed to a waiter cancelled in that moment must not be refused as Full (lost)."""
    queue: FairAsyncQueue[str] = FairAsyncQueue(maxsize=1)
    waiter = asyncio.create_task(greenlet_spawn(queue.get, True, None))
    await asyncio.sleep(0.01)
    queue.put_nowait("first back")  # handed to the waiter ...
    queue.put_nowait("second back")  # ... and the queue is full
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert sorted([queue.get_nowait(), queue.get_nowait()]) == ["first back", "second back"]
