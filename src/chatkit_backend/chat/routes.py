"""POST /chatkit: the ChatKit protocol over HTTP, with errors mapped to status codes."""

from __future__ import annotations

import logging
from typing import Annotated

from chatkit.server import NonStreamingResult
from chatkit.store import NotFoundError
from chatkit.types import ChatKitReq
from fastapi import APIRouter, Depends, Request, Response
from pydantic import TypeAdapter, ValidationError

from ..auth import current_context
from ..config import Settings
from ..context import RequestContext
from ..deps import get_chat_server, get_settings
from ..errors import BadRequest, NotFound, PayloadTooLarge
from .preflight import preflight
from .server import ChatServer
from .streaming import RunTasks, SSEResponse, detached_stream

log = logging.getLogger(__name__)

router = APIRouter(tags=["chatkit"])

_request_adapter: TypeAdapter[ChatKitReq] = TypeAdapter(ChatKitReq)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
    return bytes(body)


def parse_request(body: bytes) -> ChatKitReq:
    try:
        return _request_adapter.validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        detail = f"Invalid ChatKit request: {first['msg']}" + (f" at {where}" if where else "")
        raise BadRequest(detail, code="invalid_request") from None


@router.post("/chatkit")
async def chatkit(
    request: Request,
    ctx: Annotated[RequestContext, Depends(current_context)],
    server: Annotated[ChatServer, Depends(get_chat_server)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> Response:
    body = await read_body(request, settings.max_body_bytes)
    parsed = parse_request(body)
    await preflight(parsed, server.sql_store, ctx, max_chars=settings.max_message_chars)
    try:
        result = await server.process(body, ctx)
    except NotFoundError as exc:
        raise NotFound(str(exc) or "Not found.") from None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if isinstance(result, NonStreamingResult):
        return Response(content=result.json, media_type="application/json")
    run_tasks: RunTasks = request.app.state.run_tasks
    return SSEResponse(
        detached_stream(result, run_tasks, heartbeat_seconds=settings.heartbeat_seconds)
    )
