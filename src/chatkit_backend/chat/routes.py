"""POST /chatkit (ChatKit or the simple format), POST /api/chat/stream (simple format, or
the seed frontend's named events: chat/seed_frontend.py), and POST /api/conversations/{id}/stop.

Every check that can fail (validation, existence, run lock, limits) is made before a
stream starts, so a failure is a status code; errors inside a stream become an
`error` event.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

from chatkit.store import NotFoundError
from chatkit.types import ChatKitReq, ThreadsAddUserMessageReq, ThreadsCreateReq
from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, TypeAdapter, ValidationError

from ..auth import current_context
from ..config import Settings
from ..context import RequestContext
from ..deps import get_admission, get_chat_runtime, get_settings, get_store
from ..errors import BadRequest, NotFound, PayloadTooLarge
from ..logs import bind
from ..runs.admission import Admission
from ..runs.lease import Lease
from ..text_rules import Name
from .preflight import PRODUCING, preflight, thread_id_of
from .runtime import ChatRuntime
from .simple_sse import SimpleChatRequest, chatkit_body, parse_simple, simple_events
from .store import SQLStore, new_id
from .streaming import STREAM_ERROR, SSEResponse, detached_stream

if TYPE_CHECKING:
    # Loaded after start-up with the Agents SDK (chat/runtime.py): types only here.
    from chatkit.server import NonStreamingResult, StreamingResult

    from .server import ChatServer

router = APIRouter(tags=["chatkit"])

_request_adapter: TypeAdapter[ChatKitReq] = TypeAdapter(ChatKitReq)

Context = Annotated[RequestContext, Depends(current_context)]
Runtime = Annotated[ChatRuntime, Depends(get_chat_runtime)]
Store = Annotated[SQLStore, Depends(get_store)]
Config = Annotated[Settings, Depends(get_settings)]
Admit = Annotated[Admission, Depends(get_admission)]


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
        raise BadRequest(invalid_request_detail(exc), code="invalid_request") from None


# What a body without a usable `type` is told: the two things this endpoint reads.
_VALID_BODY = (
    'a ChatKit request {"type": ..., "params": {...}} (for example "threads.create" with '
    '{"input": ...}), or a simple message {"message": "...", "thread_id"?: "..."}'
)


def invalid_request_detail(exc: ValidationError) -> str:
    """The first validation error in words a client can act on."""
    first = exc.errors()[0]  # a ValidationError holds at least one
    kind, ctx = first["type"], first.get("ctx") or {}
    if kind == "json_invalid":
        return f"Request body is not valid JSON: {ctx.get('error', first['msg'])}."
    if kind in {"union_tag_not_found", "dict_type", "model_type"} and not first["loc"]:
        return f"Expected {_VALID_BODY}."
    if kind == "union_tag_invalid":
        valid = str(ctx.get("expected_tags", "")).replace("'", "")
        return f"Unknown request type {ctx.get('tag')!r}. Valid types: {valid}."
    # The first element of the location is the request type the body named.
    where = ".".join(str(p) for p in first["loc"][1:])
    return f"Invalid ChatKit request: {first['msg']}" + (f" at {where}" if where else "") + "."


class Opened:
    """A ChatKit request that passed every check and was handed to the SDK."""

    def __init__(
        self,
        result: StreamingResult | NonStreamingResult,
        thread_id: str | None,
        lease: Lease | None,
    ) -> None:
        self.result = result
        self.thread_id = thread_id
        self.lease = lease


async def claim_attachments(
    parsed: ChatKitReq, thread_id: str | None, server: ChatServer, ctx: RequestContext
) -> list[str]:
    """Tie a new message's attachments to its thread in one compare-and-set, so two
    messages (or a message and a delete) racing for one attachment have one winner:
    the loser gets 409 before its stream starts. Preflight made the same checks without
    writing, for a clear error before admission."""
    if not isinstance(parsed, ThreadsCreateReq | ThreadsAddUserMessageReq):
        return []
    if not parsed.params.input.attachments or thread_id is None:
        return []
    from ..attachments.records import claim_for_thread

    return await claim_for_thread(
        server.sql_store, parsed.params.input.attachments, thread_id, ctx.user_id
    )


async def open_request(
    parsed: ChatKitReq,
    request: Request,
    ctx: RequestContext,
    server: ChatServer,
    admission: Admission,
    settings: Settings,
) -> Opened:
    """Check, admit (lock, limits) and start a ChatKit request."""
    if isinstance(parsed, ThreadsCreateReq):
        ctx = replace(ctx, new_thread_id=new_id("thread"))
    await preflight(
        parsed,
        server.sql_store,
        ctx,
        max_chars=settings.max_message_chars,
        choices=server.turn_choices,
        attachments=server.attachments,
        audio_max_bytes=server.audio_max_bytes,
    )
    thread_id = thread_id_of(parsed) or ctx.new_thread_id
    bind(user_id=ctx.user_id, thread_id=thread_id)
    lease = None
    if isinstance(parsed, PRODUCING) and thread_id is not None:
        lease = await admission.admit(thread_id, ctx, request.headers.get("idempotency-key"))
        ctx = replace(ctx, run=lease)
        bind(run_id=lease.run_id)
    claimed: list[str] = []
    try:
        claimed = await claim_attachments(parsed, thread_id, server, ctx)
        result = await server.process_parsed(parsed, ctx)
    except BaseException as exc:
        if claimed and thread_id is not None:
            from ..attachments.records import release_from_thread

            await release_from_thread(server.sql_store, claimed, thread_id, ctx.user_id)
        if lease is not None:
            await admission.registry.release(lease)
        if isinstance(exc, NotFoundError):
            raise NotFound(str(exc) or "Not found.") from None
        if isinstance(exc, ValueError) and not isinstance(exc, ValidationError):
            raise BadRequest(str(exc)) from None
        raise
    return Opened(result, thread_id, lease)


def run_stream(
    request: Request,
    source: AsyncIterable[bytes],
    opened: Opened,
    error_event: bytes = STREAM_ERROR,
) -> AsyncGenerator[bytes, None]:
    """`source` produced apart from the response, holding the run's lease (chat/streaming.py)."""
    settings: Settings = request.app.state.settings
    return detached_stream(
        source,
        request.app.state.run_tasks,
        heartbeat_seconds=settings.heartbeat_seconds,
        lease=opened.lease,
        registry=request.app.state.admission.registry,
        error_event=error_event,
    )


def sse(
    request: Request,
    stream: AsyncIterable[bytes],
    opened: Opened,
    headers: dict[str, str] | None = None,
) -> SSEResponse:
    return SSEResponse(run_stream(request, stream, opened), headers=headers)


async def simple_chat(
    simple: SimpleChatRequest | None,
    request: Request,
    ctx: RequestContext,
    server: ChatServer,
    admission: Admission,
    settings: Settings,
) -> Response:
    if simple is None:
        raise BadRequest("Message is required", code="empty_message")
    chatkit = chatkit_body(simple)
    opened = await open_request(parse_request(chatkit), request, ctx, server, admission, settings)
    from chatkit.server import StreamingResult  # loaded with the server (chat/runtime.py)

    assert isinstance(opened.result, StreamingResult) and opened.thread_id is not None
    return sse(
        request,
        simple_events(opened.result, opened.thread_id),
        opened,
        {"X-Thread-Id": opened.thread_id},
    )


async def answer_chatkit(
    body: bytes,
    request: Request,
    ctx: RequestContext,
    server: ChatServer,
    admission: Admission,
    settings: Settings,
) -> Response:
    """The answer of the ChatKit endpoint (`/chatkit`, and `/api/chatkit` in seed_frontend)."""
    try:
        parsed = parse_request(body)
    except BadRequest:
        # The seeds' clients post {"message": ...} here: the simple format.
        simple = parse_simple(body)
        if simple is None:
            raise
        return await simple_chat(simple, request, ctx, server, admission, settings)
    opened = await open_request(parsed, request, ctx, server, admission, settings)
    from chatkit.server import NonStreamingResult  # loaded with the server (chat/runtime.py)

    if isinstance(opened.result, NonStreamingResult):
        return Response(content=opened.result.json, media_type="application/json")
    return sse(request, opened.result, opened)


@router.post("/chatkit")
async def chatkit(
    request: Request, ctx: Context, runtime: Runtime, admission: Admit, settings: Config
) -> Response:
    body = await read_body(request, settings.max_body_bytes)
    server = await runtime.server()
    return await answer_chatkit(body, request, ctx, server, admission, settings)


@router.post("/api/chat/stream", tags=["simple chat"])
async def chat_stream(
    request: Request, ctx: Context, runtime: Runtime, admission: Admit, settings: Config
) -> Response:
    body = await read_body(request, settings.max_body_bytes)
    server = await runtime.server()
    # The seed project's frontend sends `conversation_id` and reads named events.
    # (Imported here: that adapter builds on this module.)
    from .seed_frontend import is_seed_request, seed_chat_stream

    if is_seed_request(body):
        return await seed_chat_stream(body, request, ctx, server, admission, settings)
    return await simple_chat(parse_simple(body), request, ctx, server, admission, settings)


class StopResult(BaseModel):
    thread_id: str
    stopping: bool


@router.post("/api/conversations/{thread_id}/stop", tags=["conversations"])
async def stop(
    thread_id: Annotated[Name, Path()], ctx: Context, store: Store, admission: Admit
) -> StopResult:
    """End the thread's active run wherever it runs; the partial reply is kept."""
    try:
        await store.load_thread(thread_id, ctx)
    except NotFoundError:
        raise NotFound(f"Thread {thread_id} not found.", code="thread_not_found") from None
    stopping = await admission.registry.request_stop(thread_id, ctx)
    return StopResult(thread_id=thread_id, stopping=stopping)
