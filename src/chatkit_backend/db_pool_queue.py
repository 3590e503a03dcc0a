"""The PostgreSQL pool's queue of idle connections, first come first served.

SQLAlchemy's asyncio queue (an `asyncio.Queue`) lets a new check-out take a connection
just returned even while others wait for one, and a waiter woken for a connection that
was taken so goes back to the end of the line. On a busy server that starves some
requests: with 200 streams starting at once, admissions (each a new request's first
check-out) waited 0.3 s at the median and over 1.5 s at the 90th percentile, while the
check-outs of streams already running, arriving just as a connection came back, hardly
waited. Here a returned connection goes to the longest waiter, and nobody takes one
past a waiter.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

from sqlalchemy.util import await_only
from sqlalchemy.util.queue import Empty, Full, QueueCommon

_T = TypeVar("_T")


class FairAsyncQueue(QueueCommon[_T], Generic[_T]):
    """What QueuePool needs of its queue (SQLAlchemy's QueueCommon), in strict order.

    Called from SQLAlchemy's synchronous pool code inside its greenlet, so a wait goes
    through `await_only`, as SQLAlchemy's own AsyncAdaptedQueue does.
    """

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        self.maxsize = maxsize
        self.use_lifo = use_lifo
        self._items: deque[_T] = deque()
        self._waiters: deque[asyncio.Future[_T]] = deque()

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: _T) -> None:
        if not self._hand_to_waiter(item):
            if self.full():
                raise Full()
            self._items.append(item)

    def _hand_to_waiter(self, item: _T) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            # Skipped: a waiter that timed out or was cancelled, or one of a loop that was
            # closed (its task will never run again).
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(item)
                return True
        return False

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        # The pool returns connections without blocking; it never has more than maxsize
        # to keep (the others are overflow, closed on Full).
        self.put_nowait(item)

    def get_nowait(self) -> _T:
        if not self._items:
            raise Empty()
        return self._items.pop() if self.use_lifo else self._items.popleft()

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        if self._items or not block:
            return self.get_nowait()  # (items and waiters never coexist: see put_nowait)
        try:
            return await_only(self._wait(seconds=timeout))
        except TimeoutError:
            raise Empty() from None

    async def _wait(self, *, seconds: float | None) -> _T:
        # Made here, in the waiting task, so no waiter is queued that nobody awaits.
        waiter: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(seconds):
                return await waiter
        except BaseException:
            # Timed out or cancelled: if a connection was handed over in the meantime,
            # pass it on rather than lose it: to the next waiter, or back among the idle
            # ones even past maxsize (it is counted in the pool's overflow, so a later
            # return that finds the queue full closes one).
            if waiter.done() and not waiter.cancelled():
                item = waiter.result()
                if not self._hand_to_waiter(item):
                    self._items.append(item)
            else:
                waiter.cancel()
            raise
