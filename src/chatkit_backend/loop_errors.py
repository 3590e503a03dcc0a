"""Keep one harmless SDK leftover out of the error log.

When a run is stopped, `chatkit.agents._merge_generators` leaves behind the task
that was waiting for the next event; when that task later ends with
StopAsyncIteration, asyncio logs "Task exception was never retrieved" at ERROR on
every stop. That end-of-stream is not an error; everything else still is.
"""

from __future__ import annotations

import asyncio
from typing import Any


def _handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    if isinstance(context.get("exception"), StopAsyncIteration) and "future" in context:
        return
    loop.default_exception_handler(context)


def quiet_sdk_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_exception_handler(_handler)
