"""Active runs in the database: the per-thread run lock, stop requests and heartbeats.

A run is one row in `active_runs`, keyed by thread: inserting it is taking the
thread's lock, so two workers or machines can never run the same thread at once.
The owning process refreshes a heartbeat; a row whose heartbeat is stale belongs to
a crashed worker and no longer counts. A stop request (from any instance) sets a
flag that the owner polls for, so a stop lands within a poll interval wherever the
run is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..context import RequestContext
from ..db import utcnow
from ..errors import Conflict, TooManyRequests
from .lease import Lease
from .statements import run_statements
from .tables import ActiveRunRow

log = logging.getLogger(__name__)

IN_PROGRESS = "a response is already in progress"
# Taken first in a PostgreSQL admission (see acquire).
_USER_ADMISSION_LOCK = text("SELECT pg_advisory_xact_lock(hashtext(:u))")


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class RunRegistry:
    """Takes, watches and releases run locks for this process."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_runs_per_user: int,
        stale_after: float = 30.0,
        poll_interval: float = 0.25,
        heartbeat_interval: float = 5.0,
    ) -> None:
        self.engine = engine
        self.max_runs_per_user = max_runs_per_user
        self.stale_after = timedelta(seconds=stale_after)
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.instance = instance_name()
        self._local: dict[str, Lease] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._sqlite_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._sql = run_statements(engine.dialect.name)

    async def acquire(
        self,
        thread_id: str,
        ctx: RequestContext,
        *,
        then: Callable[[AsyncConnection], Awaitable[None]] | None = None,
    ) -> Lease:
        """Take the thread's run lock, or raise 409 (thread busy) / 429 (too many runs).

        `then(conn)` runs in the same transaction once the lock is taken (the other
        admission checks): if it raises, the lock is not taken either, and one commit
        serves them all.
        """
        now = utcnow()
        fresh = now - self.stale_after
        lease = Lease(thread_id=thread_id, run_id=ctx.request_id, user_id=ctx.user_id)
        lock = self._sqlite_lock or contextlib.nullcontext()
        async with lock, self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # Serialises one user's admissions so the concurrency count cannot race.
                await conn.execute(_USER_ADMISSION_LOCK, {"u": ctx.user_id})
            running = await conn.scalar(
                self._sql.count_runs, {"user_id": ctx.user_id, "fresh": fresh}
            )
            # Inserted, or taken over from a crashed worker (its heartbeat is stale); a
            # live run's row is left alone and nothing is written.
            inserted = await conn.execute(
                self._sql.take_lock,
                {
                    "thread_id": thread_id,
                    "run_id": lease.run_id,
                    "user_id": ctx.user_id,
                    "instance": self.instance,
                    "started_at": now,
                    "heartbeat_at": now,
                    "stop_requested": False,
                    "fresh": fresh,
                },
            )
            if inserted.rowcount == 0:
                raise Conflict(IN_PROGRESS, code="run_in_progress")
            if (running or 0) >= self.max_runs_per_user:
                raise TooManyRequests(
                    f"You already have {running} responses in progress; wait for one to finish.",
                    code="too_many_runs",
                    headers={"Retry-After": "5"},
                )
            if then is not None:
                await then(conn)
        self._local[lease.run_id] = lease
        return lease

    def attach(self, lease: Lease, task: asyncio.Task[None]) -> None:
        """The task producing the lease's run: what a stop request cancels."""
        lease.task = task
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch())

    async def release(self, lease: Lease) -> None:
        """Drop the lock, and write the run's usage row in the same transaction."""
        self._local.pop(lease.run_id, None)
        lease.released = True
        usage, lease.usage = lease.usage, None
        if usage is not None:
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(self._sql.insert_usage, usage)
                    await self._drop_lock(conn, lease)
                return
            except Exception:
                # Losing one usage row must not keep the thread locked.
                log.exception("could not record usage")
        async with self.engine.begin() as conn:
            await self._drop_lock(conn, lease)

    async def _drop_lock(self, conn: AsyncConnection, lease: Lease) -> None:
        await conn.execute(self._sql.drop_lock, {"run_id": lease.run_id})

    async def request_stop(self, thread_id: str, ctx: RequestContext) -> bool:
        """Ask the thread's active run to stop, wherever it runs; False if none is active."""
        for lease in self._local.values():
            if lease.thread_id == thread_id and lease.user_id == ctx.user_id and lease.task:
                lease.task.cancel()  # it runs here: no need to wait for a poll
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(ActiveRunRow)
                .where(
                    ActiveRunRow.thread_id == thread_id,
                    ActiveRunRow.user_id == ctx.user_id,
                    ActiveRunRow.heartbeat_at >= utcnow() - self.stale_after,
                )
                .values(stop_requested=True)
            )
        return bool(result.rowcount)

    async def _watch(self) -> None:
        """While this process has runs: cancel those asked to stop, keep the rest alive."""
        last_beat = asyncio.get_running_loop().time()
        while self._local:
            await asyncio.sleep(self.poll_interval)
            run_ids = list(self._local)
            if not run_ids:
                break
            try:
                async with self.engine.begin() as conn:
                    stopped = await conn.scalars(self._sql.stop_requested, {"run_ids": run_ids})
                    for run_id in stopped:
                        lease = self._local.get(run_id)
                        if lease is not None and lease.task is not None:
                            lease.task.cancel()
                    now = asyncio.get_running_loop().time()
                    if now - last_beat >= self.heartbeat_interval:
                        last_beat = now
                        await conn.execute(
                            self._sql.heartbeat, {"run_ids": run_ids, "heartbeat_at": utcnow()}
                        )
            except Exception:
                # A database hiccup must not kill the watcher of every run.
                log.exception("run watcher failed; retrying")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
