"""REST /api/conversations: list, search, read, rename, delete and export the user's threads.

A conversation is a thread; its messages are the thread's user and assistant
messages. Tool calls, recorded as hidden items, are attached to the assistant
message that follows them in the same turn. Workflows (the live view of those
same tool calls), widgets and hidden items are not messages and are not shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from chatkit.store import NotFoundError
from chatkit.types import (
    AssistantMessageItem,
    HiddenContextItem,
    ThreadItem,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTagContent,
)
from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from ..auth import current_context
from ..context import RequestContext
from ..db import MAX_SQL_INT
from ..deps import get_store
from ..errors import NotFound
from ..text_rules import Name, Title
from ..timestamps import UtcDatetime
from .preview import plain_text
from .store import SQLStore
from .tool_record import TOOL_RECORD

PREVIEW_CHARS = 120


# response and request models ----------------------------------------------


class Conversation(BaseModel):
    """One thread as listed: when it was active, how long, and how it ends."""

    id: str
    title: str | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    message_count: int = Field(description="User and assistant messages.")
    preview: str | None = Field(
        description=f"The first {PREVIEW_CHARS} characters of the newest message, as plain "
        "text (an assistant's Markdown without its markup); null when there is none."
    )


class ToolCall(BaseModel):
    id: str = Field(description="The call id the model gave the call.")
    name: str
    arguments: Any
    result: Any


class MessageAttachment(BaseModel):
    id: str
    name: str
    mime_type: str
    size: int | None = Field(default=None, description="Bytes, as uploaded.")
    url: str | None = Field(
        default=None,
        description="A download link, signed and short-lived (no bearer needed); absent "
        "when attachments are not set up.",
    )


class Message(BaseModel):
    id: str
    role: Literal["user", "assistant"]
    content: str
    created_at: UtcDatetime
    # Absent, not empty, on messages without attachments.
    attachments: list[MessageAttachment] | None = Field(
        default=None, exclude_if=lambda files: not files
    )
    # Absent, not empty, on messages without tool calls.
    tool_calls: list[ToolCall] | None = Field(default=None, exclude_if=lambda calls: not calls)
    model: str | None = Field(
        default=None,
        exclude_if=lambda model: model is None,
        description="The model that wrote an assistant message (absent on user messages, "
        "and on replies older than the model picker).",
    )


class ConversationDetail(Conversation):
    messages: list[Message]


class TitleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title


class Deleted(BaseModel):
    status: Literal["deleted"] = "deleted"
    id: str


# items -> messages ----------------------------------------------------------


def message_text(item: UserMessageItem | AssistantMessageItem) -> str:
    """The text of a message as the user saw it; tags read `@name`, as in the model's history."""
    return "".join(
        f"@{part.text}" if isinstance(part, UserMessageTagContent) else part.text
        for part in item.content
    )


def preview_of(item: ThreadItem | None) -> str | None:
    if not isinstance(item, UserMessageItem | AssistantMessageItem):
        return None
    # Replies are Markdown (clients render them so); what users type is shown as typed.
    if isinstance(item, AssistantMessageItem):
        return plain_text(message_text(item), PREVIEW_CHARS)
    # One line for a list row: newlines and runs of spaces become single spaces.
    return " ".join(message_text(item).split())[:PREVIEW_CHARS]


def tool_call_of(item: HiddenContextItem) -> ToolCall | None:
    content = item.content
    if not (isinstance(content, dict) and content.get("kind") == TOOL_RECORD):
        return None
    call_id, name = content.get("call_id"), content.get("name")
    if not (isinstance(call_id, str) and isinstance(name, str)):
        return None
    return ToolCall(
        id=call_id, name=name, arguments=content.get("arguments"), result=content.get("output")
    )


def attachments_of(
    item: UserMessageItem, link: Callable[[str], str] | None
) -> list[MessageAttachment] | None:
    files = [
        MessageAttachment(
            id=a.id,
            name=a.name,
            mime_type=a.mime_type,
            size=size if isinstance(size := (a.metadata or {}).get("size"), int) else None,
            url=link(a.id) if link else None,
        )
        for a in item.attachments
    ]
    return files or None


def messages_of(
    items: Sequence[ThreadItem], link: Callable[[str], str] | None = None
) -> list[Message]:
    """User and assistant messages in order, tool calls on the reply that follows them;
    `link` makes an attachment's download URL."""
    messages: list[Message] = []
    calls: list[ToolCall] = []
    # The model of the turn: preflight writes it into the user's message.
    model: str | None = None
    for item in items:
        if isinstance(item, UserMessageItem):
            # A new turn: calls of a turn that ended without a reply (stopped) have no
            # message to belong to and are left out rather than put on the wrong one.
            calls = []
            model = item.inference_options.model
            messages.append(
                Message(
                    id=item.id,
                    role="user",
                    content=message_text(item),
                    created_at=item.created_at,
                    attachments=attachments_of(item, link),
                )
            )
        elif isinstance(item, AssistantMessageItem):
            messages.append(
                Message(
                    id=item.id,
                    role="assistant",
                    content=message_text(item),
                    created_at=item.created_at,
                    tool_calls=calls or None,
                    model=model,
                )
            )
            calls = []
        elif isinstance(item, HiddenContextItem) and (call := tool_call_of(item)):
            calls.append(call)
    return messages


def summary_of(
    thread: ThreadMetadata, updated_at: datetime, count: int, newest: ThreadItem | None
) -> Conversation:
    return Conversation(
        id=thread.id,
        title=thread.title,
        created_at=thread.created_at,
        updated_at=updated_at,
        message_count=count,
        preview=preview_of(newest),
    )


# reading and writing as the user ---------------------------------------------


async def list_conversations(
    store: SQLStore, ctx: RequestContext, *, limit: int, offset: int, q: str | None
) -> list[Conversation]:
    """A page of the user's conversations, newest activity first: two queries in all."""
    threads = await store.search_threads(ctx, limit=limit, offset=offset, text=q)
    stats = await store.message_stats([thread.id for thread, _ in threads], ctx)
    return [
        summary_of(thread, updated_at, *stats.get(thread.id, (0, None)))
        for thread, updated_at in threads
    ]


async def get_conversation(
    store: SQLStore, ctx: RequestContext, thread_id: str
) -> ConversationDetail:
    thread, updated_at = await store.load_thread_activity(thread_id, ctx)
    items = await store.load_all_thread_items(thread_id, ctx)
    link = store.attachment_link
    messages = messages_of(items, (lambda a: link(a, ctx)) if link else None)
    # Same numbers as the list computes in SQL: counted and previewed over the same items.
    newest = next(
        (i for i in reversed(items) if isinstance(i, UserMessageItem | AssistantMessageItem)),
        None,
    )
    summary = summary_of(thread, updated_at, len(messages), newest)
    return ConversationDetail(**summary.model_dump(), messages=messages)


async def get_summary(store: SQLStore, ctx: RequestContext, thread_id: str) -> Conversation:
    thread, updated_at = await store.load_thread_activity(thread_id, ctx)
    stats = await store.message_stats([thread_id], ctx)
    return summary_of(thread, updated_at, *stats.get(thread_id, (0, None)))


async def rename(store: SQLStore, ctx: RequestContext, thread_id: str, title: str) -> Conversation:
    # Through the ChatKit store, so the stored ThreadMetadata (what ChatKit clients
    # read) changes with the indexed title column.
    thread = await store.load_thread(thread_id, ctx)
    await store.save_thread(thread.model_copy(update={"title": title}), ctx)
    return await get_summary(store, ctx, thread_id)


def to_markdown(conversation: ConversationDetail) -> str:
    title = " ".join((conversation.title or "Untitled conversation").split())
    lines = [f"# {title}", ""]
    for message in conversation.messages:
        who = "User" if message.role == "user" else "Assistant"
        lines += [f"**{who}** · {_time(message.created_at)}", ""]
        if message.tool_calls:
            lines.append("Tool calls:")
            lines += [
                f"- {_code(call.name)} {_code(_json(call.arguments))} → {_code(_json(call.result))}"
                for call in message.tool_calls
            ]
            lines.append("")
        if message.attachments:
            lines.append("Attachments:")
            lines += [
                f"- {_code(f.name)} ({f.mime_type}"
                + (f", {f.size} bytes" if f.size is not None else "")
                + ")"
                + (f" <{f.url}>" if f.url else "")
                for f in message.attachments
            ]
            lines.append("")
        lines += [message.content, ""]
    return "\n".join(lines)


def _time(moment: datetime) -> str:
    # RFC 3339 in UTC, like the JSON: a reader or a script knows the instant exactly.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _code(text: str) -> str:
    """`text` as inline code, whatever backticks it contains (CommonMark)."""
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def attachment(thread_id: str, suffix: str) -> dict[str, str]:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", thread_id)[:80]
    return {"Content-Disposition": f'attachment; filename="conversation-{safe}.{suffix}"'}


# routes ------------------------------------------------------------------------


async def not_found_as_404() -> AsyncIterator[None]:
    # Another user's thread raises the same NotFoundError as a missing one.
    try:
        yield
    except NotFoundError:
        raise NotFound("Conversation not found") from None


Context = Annotated[RequestContext, Depends(current_context)]
Store = Annotated[SQLStore, Depends(get_store)]
ThreadId = Annotated[Name, Path()]

router = APIRouter(
    prefix="/api/conversations",
    tags=["conversations"],
    dependencies=[Depends(not_found_as_404)],
)


@router.get("")
async def list_route(
    ctx: Context,
    store: Store,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    # SQL takes OFFSET as a 64-bit integer: a larger one is a database error.
    offset: Annotated[int, Query(ge=0, le=MAX_SQL_INT)] = 0,
    q: Annotated[
        Name | None, Query(max_length=200, description="Text in the title or the messages.")
    ] = None,
) -> list[Conversation]:
    return await list_conversations(
        store, ctx, limit=limit, offset=offset, q=(q or "").strip() or None
    )


# Declared before /{thread_id}, which would otherwise read "recent" as an id.
@router.get("/recent/first")
async def most_recent(ctx: Context, store: Store) -> Conversation | None:
    page = await list_conversations(store, ctx, limit=1, offset=0, q=None)
    return page[0] if page else None


@router.get("/{thread_id}")
async def get_route(thread_id: ThreadId, ctx: Context, store: Store) -> ConversationDetail:
    return await get_conversation(store, ctx, thread_id)


@router.patch("/{thread_id}")
async def rename_route(
    thread_id: ThreadId, change: TitleUpdate, ctx: Context, store: Store
) -> Conversation:
    return await rename(store, ctx, thread_id, change.title)


@router.delete("/{thread_id}")
async def delete_route(thread_id: ThreadId, ctx: Context, store: Store) -> Deleted:
    await store.delete_thread(thread_id, ctx)
    return Deleted(id=thread_id)


@router.get(
    "/{thread_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/json": {}, "text/markdown": {}}}},
)
async def export_route(
    thread_id: ThreadId,
    ctx: Context,
    store: Store,
    export_format: Annotated[Literal["json", "markdown"], Query(alias="format")] = "json",
) -> Response:
    conversation = await get_conversation(store, ctx, thread_id)
    if export_format == "markdown":
        return Response(
            to_markdown(conversation),
            media_type="text/markdown; charset=utf-8",
            headers=attachment(thread_id, "md"),
        )
    return Response(
        conversation.model_dump_json(),
        media_type="application/json",
        headers=attachment(thread_id, "json"),
    )
