"""The ceiling: a bare Starlette SSE endpoint on uvicorn, no SDK, no database, no model.

`POST /chatkit` reads the body and streams CEILING_EVENTS `data:` frames of about
CEILING_EVENT_BYTES bytes each, as fast as it can: what a turn would cost if the
server did nothing but HTTP and SSE framing. Run: uvicorn bench.ceiling:app
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

EVENTS = int(os.environ.get("CEILING_EVENTS", "37"))
EVENT_BYTES = int(os.environ.get("CEILING_EVENT_BYTES", "300"))


def _frame(number: int) -> bytes:
    head = {"type": "thread.item.updated", "n": number, "pad": ""}
    size = len(b"data: " + json.dumps(head).encode() + b"\n\n")
    head["pad"] = "x" * max(0, EVENT_BYTES - size)
    return b"data: " + json.dumps(head).encode() + b"\n\n"


async def chatkit(request: Request) -> Response:
    await request.body()

    async def events() -> AsyncIterator[bytes]:
        for number in range(EVENTS):
            yield _frame(number)

    return StreamingResponse(events(), media_type="text/event-stream")


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[Route("/chatkit", chatkit, methods=["POST"]), Route("/health", health)],
)
