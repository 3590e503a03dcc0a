"""The simple SSE chat format, for clients that do not speak ChatKit.

In: `{"message": str, "thread_id"?: str}`. Out: `data: {"type": "thinking" | "text" |
"tool_call" | "tool_result" | "error" | "done", ...}` then `data: [DONE]`.
It is a second wire format over the same pipeline: the message becomes a ChatKit
`threads.add_user_message` request on a ChatKit thread, and the ChatKit event stream
is translated on the way out. Conversations started here are ChatKit threads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from ..errors import BadRequest

log = logging.getLogger(__name__)

DEFAULT_ERROR = "An error occurred while generating the response."


class SimpleChatRequest(BaseModel):
    message: str
    thread_id: str | None = None


def json_body(body: bytes) -> Any:
    """The body's JSON value; BadRequest for malformed or absurdly nested JSON."""
    try:
        # pydantic-core's parser, as for ChatKit requests: it refuses nesting past its
        # limit with a ValueError, where json.loads raises RecursionError (a 500).
        return from_json(body)
    except ValueError as exc:
        raise BadRequest(
            f"Request body is not valid JSON: {exc}.", code="invalid_request"
        ) from None


def parse_simple(body: bytes) -> SimpleChatRequest | None:
    """The simple request in `body`, or None when the body is JSON but not one (not an
    object with a `message` and no `type`). BadRequest when it is no JSON or a bad one."""
    data = json_body(body)
    if not isinstance(data, dict) or "message" not in data or "type" in data:
        return None
    if data["message"] is None:
        raise BadRequest("Message is required", code="empty_message")
    try:
        return SimpleChatRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadRequest(
            f"Invalid simple chat request: {where}: {first['msg']}.", code="invalid_request"
        ) from None


def chatkit_body(request: SimpleChatRequest) -> bytes:
    """The ChatKit request a simple one stands for: a new thread, or a message to one."""
    user_input = {
        "content": [{"type": "input_text", "text": request.message}],
        "attachments": [],
        "inference_options": {},
    }
    if request.thread_id is None:
        return json.dumps({"type": "threads.create", "params": {"input": user_input}}).encode()
    return json.dumps(
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": request.thread_id, "input": user_input},
        }
    ).encode()


def _frame(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def _chatkit_events(chunk: bytes) -> list[dict[str, Any]]:
    events = []
    for line in chunk.split(b"\n"):
        if line.startswith(b"data: "):
            events.append(json.loads(line[6:]))
    return events


def _translate(event: dict[str, Any], state: dict[str, str | None]) -> dict[str, Any] | None:
    kind = event.get("type")
    if kind == "thread.item.updated":
        update = event.get("update") or {}
        if update.get("type") == "assistant_message.content_part.text_delta":
            return {"type": "text", "content": update.get("delta", "")}
    elif kind == "thread.item.done":
        item = event.get("item") or {}
        if item.get("type") == "assistant_message":
            state["message_id"] = item.get("id")
    elif kind == "client_effect" and event.get("name") in {"tool_call", "tool_result"}:
        return {"type": event["name"], **(event.get("data") or {})}
    elif kind == "error":
        return {"type": "error", "message": event.get("message") or DEFAULT_ERROR}
    return None


async def translated(
    chatkit_stream: AsyncIterable[bytes], state: dict[str, str | None]
) -> AsyncGenerator[dict[str, Any], None]:
    """The `text`, `tool_call`, `tool_result` and `error` events of a ChatKit SSE byte
    stream, as simple-format dicts; `state["message_id"]` follows the newest reply.

    Other wire formats (chat/seed_frontend.py) translate from these, not from ChatKit.
    """
    async for chunk in chatkit_stream:
        for event in _chatkit_events(chunk):
            simple = _translate(event, state)
            if simple is not None:
                yield simple


async def simple_events(
    chatkit_stream: AsyncIterable[bytes], thread_id: str
) -> AsyncIterator[bytes]:
    """Translate a ChatKit SSE byte stream into the simple format."""
    state: dict[str, str | None] = {"message_id": None}
    yield _frame({"type": "thinking", "content": "Thinking…"})
    try:
        async for simple in translated(chatkit_stream, state):
            yield _frame(simple)
    except Exception:
        # Headers are sent already: say so in the stream and still end it properly.
        log.exception("simple chat stream failed")
        yield _frame({"type": "error", "message": DEFAULT_ERROR})
    yield _frame({"type": "done", "thread_id": thread_id, "message_id": state["message_id"]})
    yield b"data: [DONE]\n\n"
