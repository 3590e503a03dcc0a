"""POST /chatkit (ChatKit or the simple format) and POST /api/chat/stream (simple format).

Every check that can fail is made before a stream starts, so a failure is a status
code; errors inside a stream become an `error` event.
"""

from __future__ import annotations

from typing import Annotated

from chatkit.server import NonStreamingResult, StreamingResult
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
from .simple_sse import (
    SimpleChatRequest,
    chatkit_request,
    new_thread,
    parse_simple,
    simple_events,
    validate_message,
)
from .streaming import RunTasks, SSEResponse, detached_stream

router = APIRouter(tags=["chatkit"])

_request_adapter: TypeAdapter[ChatKitReq] = TypeAdapter(ChatKitReq)

Context = Annotated[RequestContext, Depends(current_context)]
Server = Annotated[ChatServer, Depends(get_chat_server)]
Config = Annotated[Settings, Depends(get_settings)]


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


async def process(
    body: bytes, server: ChatServer, ctx: RequestContext, settings: Settings
) -> StreamingResult | NonStreamingResult:
    """Check, then hand a ChatKit request to the SDK."""
    parsed = parse_request(body)
    await preflight(parsed, server.sql_store, ctx, max_chars=settings.max_message_chars)
    try:
        return await server.process(body, ctx)
    except NotFoundError as exc:
        raise NotFound(str(exc) or "Not found.") from None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def sse(
    request: Request,
    stream: StreamingResult | object,
    settings: Settings,
    headers: dict[str, str] | None = None,
) -> SSEResponse:
    run_tasks: RunTasks = request.app.state.run_tasks
    return SSEResponse(
        detached_stream(stream, run_tasks, heartbeat_seconds=settings.heartbeat_seconds),  # type: ignore[arg-type]
        headers=headers,
    )


async def simple_chat(
    simple: SimpleChatRequest,
    request: Request,
    server: ChatServer,
    ctx: RequestContext,
    settings: Settings,
) -> Response:
    validate_message(simple.message, settings.max_message_chars)
    thread_id = simple.thread_id or (await new_thread(server, ctx)).id
    result = await process(chatkit_request(simple.message, thread_id), server, ctx, settings)
    assert isinstance(result, StreamingResult)
    return sse(request, simple_events(result, thread_id), settings, {"X-Thread-Id": thread_id})


@router.post("/chatkit")
async def chatkit(request: Request, ctx: Context, server: Server, settings: Config) -> Response:
    body = await read_body(request, settings.max_body_bytes)
    try:
        result = await process(body, server, ctx, settings)
    except BadRequest:
        # The seeds' clients post {"message": ...} here: the simple format.
        simple = parse_simple(body)
        if simple is None:
            raise
        return await simple_chat(simple, request, server, ctx, settings)
    if isinstance(result, NonStreamingResult):
        return Response(content=result.json, media_type="application/json")
    return sse(request, result, settings)


@router.post("/api/chat/stream", tags=["simple chat"])
async def chat_stream(request: Request, ctx: Context, server: Server, settings: Config) -> Response:
    body = await read_body(request, settings.max_body_bytes)
    simple = parse_simple(body)
    if simple is None:
        raise BadRequest("Message is required", code="empty_message")
    return await simple_chat(simple, request, server, ctx, settings)
