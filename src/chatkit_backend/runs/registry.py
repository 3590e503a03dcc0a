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
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .. import metrics
from ..context import RequestContext
from ..db import autocommit_engine, prefixed, utcnow
from ..db_errors import DatabaseUnavailable
from ..sqlite_writes import writing
from .lease import Lease, new_run_id
from .refusals import run_in_progress, too_many_runs
from .statements import USAGE_PREFIX, run_statements
from .tables import ActiveRunRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Unreleased:
    usage: dict[str, object] | None
    deadline: float  # loop time after which the lock has gone stale anyway


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
        # Runs that ended but whose lock the database failed to drop, by run id.
        self._unreleased: dict[str, _Unreleased] = {}
        self._watcher: asyncio.Task[None] | None = None
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
        serves them all. This is SQLite's admission, where this process's writers queue
        on one lock (sqlite_writes.py) so the count cannot race; PostgreSQL admits in
        one statement instead (postgres_admission.py), under a per-user lock.
        """
        if self.engine.dialect.name == "postgresql":
            raise TypeError("on PostgreSQL, admit with postgres_admission.admit_on_postgres")
        now = utcnow()
        fresh = now - self.stale_after
        lease = Lease(thread_id=thread_id, run_id=new_run_id(), user_id=ctx.user_id)
        async with writing(self.engine) as conn:
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
                raise run_in_progress()
            if (running or 0) >= self.max_runs_per_user:
                raise too_many_runs(running)
            if then is not None:
                await then(conn)
        return self.hold(lease)

    def hold(self, lease: Lease) -> Lease:
        """Watch a lease whose lock row was just written (here or by postgres_admission.py):
        heartbeats, stop requests, release."""
        self._local[lease.run_id] = lease
        return lease

    def attach(self, lease: Lease, task: asyncio.Task[None]) -> None:
        """The task producing the lease's run: what a stop request cancels."""
        lease.task = task
        self._ensure_watcher()

    def _ensure_watcher(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch())

    async def release(self, lease: Lease) -> None:
        """Drop the lock, and write the run's usage row in the same transaction.

        Never raises: if the database fails, the lock is dropped by the watcher once it
        is back (and it is no longer heartbeated, so at worst it goes stale).
        """
        self._local.pop(lease.run_id, None)
        lease.released = True
        usage, lease.usage = lease.usage, None
        try:
            await self._release_rows(lease.run_id, usage)
        except Exception as exc:
            log.warning(
                "could not release run %s (%s); retrying until the database is back",
                lease.run_id,
                type(exc).__name__,
            )
            metrics.ERRORS.labels("run_release").inc()
            deadline = asyncio.get_running_loop().time() + self.stale_after.total_seconds()
            self._unreleased[lease.run_id] = _Unreleased(usage, deadline)
            self._ensure_watcher()

    async def _release_rows(self, run_id: str, usage: dict[str, object] | None) -> None:
        """Write `usage` and drop the lock; raise only if the lock could not be dropped."""
        usage_error: Exception | None = None
        if usage is not None:
            try:
                await self._drop_lock(run_id, usage)
                return
            except Exception as exc:
                usage_error = exc
        await self._drop_lock(run_id, None)
        if usage_error is not None:
            # Losing one usage row must not keep the thread locked.
            log.error("could not record usage", exc_info=usage_error)

    async def _retry_releases(self) -> None:
        """Drop the locks `release` could not; give up on those that have gone stale."""
        now = asyncio.get_running_loop().time()
        for run_id, pending in list(self._unreleased.items()):
            try:
                await self._release_rows(run_id, pending.usage)
            except Exception:
                if now >= pending.deadline:
                    # Stale by now: the next run takes it over. Only the usage row is lost.
                    del self._unreleased[run_id]
                    log.error("gave up releasing run %s; its lock has gone stale", run_id)
                continue
            del self._unreleased[run_id]
            log.info("released run %s after the database came back", run_id)

    async def _drop_lock(self, run_id: str, usage: dict[str, object] | None) -> None:
        """Drop the run's lock row, and write `usage` with it (one commit).

        Bookkeeping only (as admission's lock row and count): on PostgreSQL its commit
        does not wait for the WAL flush, which was most of a sequential turn's extra time
        there, and it is one statement (statements.py `_releases`). If PostgreSQL itself
        crashes, the last moment of such commits may be lost: a lock row (it goes stale
        in `stale_after`), a count, a usage row. Messages, threads and tasks keep
        synchronous commits.
        """
        release = self._sql.release if usage is None else self._sql.release_with_usage
        if release is not None:  # PostgreSQL
            params = {"run_id": run_id} | prefixed(usage or {}, USAGE_PREFIX)
            async with autocommit_engine(self.engine).connect() as conn:
                await conn.execute(release, params)
            return
        async with writing(self.engine) as conn:
            if usage is not None:
                await conn.execute(self._sql.insert_usage, usage)
            await conn.execute(self._sql.drop_lock, {"run_id": run_id})

    async def request_stop(self, thread_id: str, ctx: RequestContext) -> bool:
        """Ask the thread's active run to stop, wherever it runs; False if none is active."""
        for lease in self._local.values():
            if lease.thread_id == thread_id and lease.user_id == ctx.user_id and lease.task:
                lease.task.cancel()  # it runs here: no need to wait for a poll
        async with writing(self.engine) as conn:
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
        """While this process has runs: cancel those asked to stop, keep the rest alive,
        and drop the locks whose release failed."""
        last_beat = asyncio.get_running_loop().time()
        while self._local or self._unreleased:
            await asyncio.sleep(self.poll_interval)
            if self._unreleased:
                await self._retry_releases()
            run_ids = list(self._local)
            if not run_ids:
                continue
            try:
                async with writing(self.engine) as conn:
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
            except DatabaseUnavailable as exc:
                log.warning("run watcher: database unavailable (%s); retrying", exc.reason)
            except Exception:
                # A database hiccup must not kill the watcher of every run.
                log.exception("run watcher failed; retrying")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
