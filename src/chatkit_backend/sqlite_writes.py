"""One queue for the writers of a SQLite database within this process.

SQLite lets one connection write at a time; another that tries waits in SQLite's busy
handler, which sleeps and retries (1, 2, 5 ... 100 ms steps) instead of being told when
the writer is done. The store and the run registry write on every turn, and under load
their transactions overlap: each of them queuing on a lock of its own still left the two
colliding in SQLite. One asyncio lock per engine, shared by every writer (`writing`),
makes the writes wait in order, woken the moment the previous one commits. PostgreSQL
needs none. Not reentrant: a writer must not open another `writing` inside its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_locks: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


def writer_lock(engine: AsyncEngine) -> asyncio.Lock | None:
    """The lock every writer of this SQLite engine takes; None for other databases."""
    if engine.dialect.name != "sqlite":
        return None
    lock = _locks.get(engine.sync_engine)
    if lock is None:
        lock = _locks[engine.sync_engine] = asyncio.Lock()
    return lock


@contextlib.asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction, queued behind this process's other writers on SQLite."""
    async with writer_lock(engine) or contextlib.nullcontext(), engine.begin() as conn:
        yield conn
