"""Runs the ChatKit event stream apart from the HTTP response that carries it.

The run is its own task writing into a queue; the response only reads. A client
that goes away, a stop request or a shutdown cancels the run task with plain
asyncio cancellation, so the SDK's cleanup (saving the partial reply) runs to the
end instead of being cut off by the HTTP layer's cancel scope. While the model is
silent the response sends `: ping` comments so proxies keep the stream open.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from .. import metrics
from ..runs.lease import Lease
from ..runs.registry import RunRegistry

log = logging.getLogger(__name__)

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    # nginx and similar proxies buffer responses unless told not to.
    "X-Accel-Buffering": "no",
}
PING = b": ping\n\n"
STREAM_ERROR = (
    b"data: "
    + json.dumps({"type": "error", "code": "stream.error", "allow_retry": True}).encode()
    + b"\n\n"
)

_END = object()


class RunTasks:
    """The run tasks of this process, so shutdown can wait for them or stop them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, grace_seconds: float) -> None:
        """Let runs finish for `grace_seconds`, then cancel the rest (partials are kept)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=10)


def detached_stream(
    source: AsyncIterable[bytes],
    tasks: RunTasks,
    *,
    heartbeat_seconds: float,
    lease: Lease | None = None,
    registry: RunRegistry | None = None,
    error_event: bytes = STREAM_ERROR,
) -> AsyncGenerator[bytes, None]:
    """Bytes of `source`, produced by a separate task, with pings while it is silent.

    With a `lease`, the producing task is registered so a stop request from any
    instance can cancel it, and the thread's run lock is released when it ends.
    """

    async def body() -> AsyncGenerator[bytes, None]:
        queue: asyncio.Queue[object] = asyncio.Queue()

        async def produce() -> None:
            metrics.ACTIVE_STREAMS.inc()
            try:
                async for chunk in source:
                    queue.put_nowait(chunk)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Headers are sent already: end with an error event, never a broken stream.
                log.exception("stream failed")
                metrics.ERRORS.labels("stream").inc()
                queue.put_nowait(error_event)
            finally:
                # Whatever fails while the stream closes, its end is queued: otherwise the
                # client would get pings forever.
                try:
                    metrics.ACTIVE_STREAMS.dec()
                    # Release before the client sees the end: its next message must find
                    # the thread free.
                    if lease is not None and registry is not None:
                        with anyio.CancelScope(shield=True):
                            await registry.release(lease)
                except Exception:
                    log.exception("closing the stream failed")
                    metrics.ERRORS.labels("stream_close").inc()
                finally:
                    queue.put_nowait(_END)

        task = asyncio.create_task(produce())
        tasks.add(task)
        if lease is not None and registry is not None:
            registry.attach(lease, task)
        try:
            while True:
                try:
                    # (asyncio.timeout, not wait_for: no task per event.)
                    async with asyncio.timeout(heartbeat_seconds):
                        chunk = await queue.get()
                except TimeoutError:
                    yield PING
                    continue
                if chunk is _END:
                    return
                assert isinstance(chunk, bytes)
                # Events that queued up while the client was being written to (a slow
                # reader, a burst) go out in one write rather than one send each.
                batch = [chunk]
                ended = False
                while not queue.empty():
                    more = queue.get_nowait()
                    if more is _END:
                        ended = True
                        break
                    assert isinstance(more, bytes)
                    batch.append(more)
                yield chunk if len(batch) == 1 else b"".join(batch)
                if ended:
                    return
        finally:
            # Reached on normal end, on client disconnect and on server stop alike.
            if not task.done():
                task.cancel()

    return body()


class SSEResponse(StreamingResponse):
    """A text/event-stream response that notices when the client goes away.

    Starlette skips its disconnect watch on ASGI 2.4 servers and waits for a write
    to fail, but uvicorn drops writes to a closed connection silently: a client that
    pressed Stop would never stop the run. So the watch always runs here.
    """

    media_type = "text/event-stream"

    def __init__(
        self, content: AsyncIterator[bytes], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(content, headers={**SSE_HEADERS, **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def stream() -> None:
                await self.stream_response(send)
                group.cancel_scope.cancel()

            group.start_soon(stream)
            await self.listen_for_disconnect(receive)
            group.cancel_scope.cancel()
