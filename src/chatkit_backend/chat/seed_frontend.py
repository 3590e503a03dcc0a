"""The chat wire formats of the seed project's own web frontend (maneeshanif/todo-spec-driven).

Its SSE client posts `{"conversation_id", "message"}` to `/api/chat/stream` and reads
named events (`event: token` + `data: {"content": ...}`, ...); its store may call the
non-streaming `POST /api/chat`; its Next.js ChatKit proxy posts to `/api/chatkit`,
with `?conversation_id=` when a conversation is open. All three are translated at
the edge onto the one ChatKit pipeline (chat/routes.py): the messages become ChatKit
requests and the replies are translated from the ChatKit event stream, through the
simple format's translation (chat/simple_sse.py). A conversation is a ChatKit thread
and its id is the thread id.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Annotated, Any

from chatkit.store import NotFoundError
from chatkit.types import (
    InferenceOptions,
    Page,
    Thread,
    ThreadAddUserMessageParams,
    ThreadCreatedEvent,
    ThreadCreateParams,
    ThreadMetadata,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    UserMessageInput,
    UserMessageTextContent,
)
from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, StrictBool, StrictInt, StringConstraints, ValidationError

from ..context import RequestContext
from ..errors import BadRequest, NotFound, ServiceUnavailable
from ..text_rules import Name
from .routes import (
    Admit,
    Config,
    Context,
    Opened,
    Runtime,
    answer_chatkit,
    open_request,
    parse_request,
    read_body,
    run_stream,
)
from .seed_conversations import SeedToolCall
from .simple_sse import DEFAULT_ERROR, json_body, translated
from .streaming import SSEResponse

if TYPE_CHECKING:
    from chatkit.server import StreamingResult

    from ..config import Settings
    from ..runs.admission import Admission
    from .server import ChatServer

log = logging.getLogger(__name__)

router = APIRouter(tags=["seed frontend"])

# What the seed's own backend says while its agent starts (agents/runner.py there).
THINKING = "Processing your request..."
ERROR_CODE = "stream_error"

ConversationId = Annotated[Name, StringConstraints(min_length=1, max_length=64)]


class SeedChatRequest(BaseModel):
    """The body its SSE client and `chatApi.sendMessage` send (types/chat.ts ChatRequest)."""

    # Its types say number: an integer is looked up like any id (and is not found).
    conversation_id: ConversationId | StrictInt | None = None
    message: str
    # Asks its old backend for lifecycle events; its client never sets it. Accepted, unused.
    verbose: StrictBool = False


class SeedChatResponse(BaseModel):
    """The answer of `POST /api/chat` (types/chat.ts ChatResponse)."""

    conversation_id: str
    message_id: str | None
    response: str
    tool_calls: list[SeedToolCall] | None


# parsing ------------------------------------------------------------------------------


def is_seed_request(body: bytes) -> bool:
    """Whether a `/api/chat/stream` body is the seed frontend's: it names `conversation_id`
    (null for a new conversation); the seeds' documented format uses `thread_id`."""
    data = json_body(body)
    return isinstance(data, dict) and "conversation_id" in data


def parse_seed(body: bytes) -> SeedChatRequest:
    data = json_body(body)
    try:
        return SeedChatRequest.model_validate(data)
    except ValidationError as exc:
        # Reported like any invalid REST body: 422 naming the field.
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def chatkit_request(seed: SeedChatRequest) -> ThreadsCreateReq | ThreadsAddUserMessageReq:
    """The ChatKit request a seed message stands for: a new thread, or a message to one."""
    user_input = UserMessageInput(
        content=[UserMessageTextContent(text=seed.message)],
        attachments=[],
        inference_options=InferenceOptions(),
    )
    if seed.conversation_id is None:
        return ThreadsCreateReq(params=ThreadCreateParams(input=user_input))
    return ThreadsAddUserMessageReq(
        params=ThreadAddUserMessageParams(thread_id=str(seed.conversation_id), input=user_input)
    )


# the named-event stream ------------------------------------------------------------------


def named(event: str, data: dict[str, Any]) -> bytes:
    # One write per event, `event:` and `data:` together: its client forgets the event name
    # at the end of every read, so the two lines must not arrive in different reads.
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def error_frame(message: str = DEFAULT_ERROR) -> bytes:
    return named("error", {"message": message, "code": ERROR_CODE})


def seed_frame(event: dict[str, Any]) -> bytes | None:
    """A simple-format event as the named event its client reads (lib/sse/client.ts)."""
    match event["type"]:
        case "text":
            return named("token", {"content": event["content"]})
        case "tool_call":
            return named(
                "tool_call",
                {"tool": event["name"], "args": event.get("args") or {}, "call_id": event["id"]},
            )
        case "tool_result":
            return named("tool_result", {"call_id": event["id"], "output": event.get("result")})
        case "error":
            return error_frame(event.get("message") or DEFAULT_ERROR)
    return None


async def seed_events(
    chatkit_stream: AsyncIterable[bytes], thread_id: str, agent: str
) -> AsyncIterator[bytes]:
    """A ChatKit SSE byte stream as the seed frontend's named events.

    thinking, agent_updated, then tool_call / tool_result / token as they happen, and
    `done` with the conversation and reply ids. An error ends the turn for its client
    (its onError stops the stream), so no `done` follows one, as with its old backend.
    """
    yield named("thinking", {"content": THINKING, "agent": agent})
    # Its old backend relayed the Agents SDK's agent_updated event at the start of a run.
    yield named("agent_updated", {"agent": agent, "content": ""})
    state: dict[str, str | None] = {"message_id": None}
    failed = False
    try:
        async for event in translated(chatkit_stream, state):
            # After an error the run is still drained (the SDK saves what it has), unseen.
            if failed:
                continue
            failed = event["type"] == "error"
            frame = seed_frame(event)
            if frame is not None:
                yield frame
    except Exception:
        # Headers are sent already: say so in the stream and still end it properly.
        log.exception("seed frontend chat stream failed")
        yield error_frame()
        return
    if not failed:
        yield named("done", {"conversation_id": thread_id, "message_id": state["message_id"]})


def agent_name(server: ChatServer) -> str:
    return server.agent_name


def streamed(opened: Opened) -> tuple[StreamingResult, str]:
    """The ChatKit event stream of a message request, and its thread id."""
    from chatkit.server import StreamingResult  # loaded with the server (chat/runtime.py)

    assert isinstance(opened.result, StreamingResult) and opened.thread_id is not None
    return opened.result, opened.thread_id


async def open_seed(
    body: bytes,
    request: Request,
    ctx: RequestContext,
    server: ChatServer,
    admission: Admission,
    settings: Settings,
) -> tuple[Opened, StreamingResult, str]:
    """The seed message in `body`, checked, admitted and started on the ChatKit pipeline."""
    opened = await open_request(
        chatkit_request(parse_seed(body)), request, ctx, server, admission, settings
    )
    return opened, *streamed(opened)


async def seed_chat_stream(
    body: bytes,
    request: Request,
    ctx: RequestContext,
    server: ChatServer,
    admission: Admission,
    settings: Settings,
) -> Response:
    """`POST /api/chat/stream` for the seed frontend (dispatched from chat/routes.py)."""
    opened, chatkit_stream, thread_id = await open_seed(
        body, request, ctx, server, admission, settings
    )
    events = seed_events(chatkit_stream, thread_id, agent_name(server))
    return SSEResponse(
        run_stream(request, events, opened, error_frame()), headers={"X-Thread-Id": thread_id}
    )


# routes ---------------------------------------------------------------------------------


@router.post("/api/chat")
async def send_message(
    request: Request, ctx: Context, runtime: Runtime, admission: Admit, settings: Config
) -> SeedChatResponse:
    """One message, answered as a whole (its `chatApi.sendMessage`)."""
    body = await read_body(request, settings.max_body_bytes)
    server = await runtime.server()
    opened, chatkit_stream, thread_id = await open_seed(
        body, request, ctx, server, admission, settings
    )
    state: dict[str, str | None] = {"message_id": None}
    text: list[str] = []
    calls: dict[str, SeedToolCall] = {}
    error: str | None = None
    # Read to the end even after an error: the run saves what it has and frees the thread
    # before its stream ends. A client that leaves closes these, which cancels the run.
    async with (
        aclosing(run_stream(request, chatkit_stream, opened)) as chunks,
        aclosing(translated(chunks, state)) as events,
    ):
        async for event in events:
            match event["type"]:
                case "text":
                    text.append(event["content"])
                case "tool_call":
                    calls[event["id"]] = SeedToolCall(
                        id=event["id"], tool=event["name"], arguments=event.get("args") or {}
                    )
                case "tool_result" if event["id"] in calls:
                    calls[event["id"]].result = event.get("result")
                case "error":
                    error = error or event.get("message") or DEFAULT_ERROR
    if error is not None:
        # Nothing was sent yet: the failure is the status. The user's message is kept.
        raise ServiceUnavailable(error, code="model_error")
    return SeedChatResponse(
        conversation_id=thread_id,
        message_id=state["message_id"],
        response="".join(text),
        tool_calls=list(calls.values()) or None,
    )


def thread_created(thread: ThreadMetadata) -> bytes:
    """The `thread.created` event the ChatKit client waits for, naming an existing thread."""
    event = ThreadCreatedEvent(
        thread=Thread(**thread.model_dump(exclude={"metadata"}), items=Page())
    )
    # As the SDK serializes its events (ChatKitServer._serialize).
    data = event.model_dump_json(
        by_alias=True, exclude_none=True, context={"exclude_metadata": True}
    )
    return b"data: " + data.encode() + b"\n\n"


async def after(first: bytes, rest: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


@router.post("/api/chatkit")
async def chatkit_api(
    request: Request,
    ctx: Context,
    runtime: Runtime,
    admission: Admit,
    settings: Config,
    conversation_id: Annotated[
        ConversationId | None,
        Query(description="Continue this conversation: its `threads.create` adds to it."),
    ] = None,
) -> Response:
    """`/chatkit` under the path its Next.js proxy calls (app/api/chatkit/route.ts).

    Its ChatKit page, opened on a conversation, starts as if new: the `threads.create` it
    sends is answered as a message to that conversation, announced as `thread.created`
    with the conversation's id, which is what its old backend did. Other requests ignore
    the query.
    """
    body = await read_body(request, settings.max_body_bytes)
    json_body(body)  # malformed or absurdly nested JSON: 400 before anything else reads it
    server = await runtime.server()
    if conversation_id is not None:
        try:
            parsed = parse_request(body)
        except BadRequest:
            parsed = None  # answered (refused, or the simple format) as on /chatkit
        if isinstance(parsed, ThreadsCreateReq):
            try:
                thread = await server.sql_store.load_thread(conversation_id, ctx)
            except NotFoundError:
                raise NotFound(
                    f"Conversation {conversation_id} not found.", code="thread_not_found"
                ) from None
            continued = ThreadsAddUserMessageReq(
                params=ThreadAddUserMessageParams(thread_id=thread.id, input=parsed.params.input),
                metadata=parsed.metadata,
            )
            opened = await open_request(continued, request, ctx, server, admission, settings)
            chatkit_stream, _ = streamed(opened)
            return SSEResponse(
                run_stream(request, after(thread_created(thread), chatkit_stream), opened)
            )
    return await answer_chatkit(body, request, ctx, server, admission, settings)
