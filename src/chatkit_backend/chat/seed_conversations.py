"""REST /api/chat/conversations in the shape the seed project's frontend reads.

Its conversation sidebar (lib/api/chat.ts, stores/conversation-store.ts) lists pages
as `{conversations, total, page, page_size}`, opens one with its `messages`, renames
with PUT and deletes expecting 204. The queries are REST /api/conversations' own
(chat/conversations.py); only the shape differs. Ids are thread ids: its code only
passes them back, compares them with each other and uses them as keys and in URLs,
so strings work wherever its types say number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict

from ..auth import current_context
from ..context import RequestContext
from ..deps import get_store
from ..text_rules import Title
from . import conversations
from .store import SQLStore

# As REST /api/conversations allows at once; its old backend allowed the same.
MAX_PAGE_SIZE = 100
# Far beyond any sidebar; keeps the offset a small number for both databases.
MAX_PAGE = 10_000


class SeedToolCall(BaseModel):
    """types/chat.ts ToolCall: its message list shows `tool`, and an error from `result`."""

    id: str
    tool: str
    arguments: Any
    result: Any = None


class SeedMessage(BaseModel):
    """types/chat.ts Message."""

    id: str
    conversation_id: str
    role: Literal["user", "assistant"]
    content: str
    tool_calls: list[SeedToolCall] | None
    created_at: datetime


class SeedConversation(BaseModel):
    """types/chat.ts Conversation (with `messages` when one is opened)."""

    id: str
    user_id: str
    title: str | None
    created_at: datetime
    updated_at: datetime
    message_count: int
    preview: str | None
    messages: list[SeedMessage] | None = None


class SeedConversationPage(BaseModel):
    """lib/api/chat.ts ConversationListResponse."""

    conversations: list[SeedConversation]
    total: int
    page: int
    page_size: int


class SeedTitleUpdate(BaseModel):
    """types/chat.ts ConversationUpdate."""

    model_config = ConfigDict(extra="forbid")

    title: Title


# conversions -----------------------------------------------------------------------------


def seed_message(message: conversations.Message, conversation_id: str) -> SeedMessage:
    calls = [
        SeedToolCall(id=c.id, tool=c.name, arguments=c.arguments, result=c.result)
        for c in message.tool_calls or ()
    ]
    return SeedMessage(
        id=message.id,
        conversation_id=conversation_id,
        role=message.role,
        content=message.content,
        tool_calls=calls or None,
        created_at=message.created_at,
    )


def seed_conversation(
    conversation: conversations.Conversation, ctx: RequestContext
) -> SeedConversation:
    return SeedConversation(
        id=conversation.id,
        user_id=ctx.user_id,
        title=conversation.title,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        message_count=conversation.message_count,
        preview=conversation.preview,
    )


# routes ----------------------------------------------------------------------------------


Context = Annotated[RequestContext, Depends(current_context)]
Store = Annotated[SQLStore, Depends(get_store)]
# The same id rule as /api/conversations: a NUL or control character is a 422, not a query.
ConversationId = conversations.ThreadId

router = APIRouter(
    prefix="/api/chat/conversations",
    tags=["seed frontend"],
    dependencies=[Depends(conversations.not_found_as_404)],
)


@router.get("")
async def list_route(
    ctx: Context,
    store: Store,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
) -> SeedConversationPage:
    """The user's conversations, newest activity first."""
    found = await conversations.list_conversations(
        store, ctx, limit=page_size, offset=(page - 1) * page_size, q=None
    )
    return SeedConversationPage(
        conversations=[seed_conversation(c, ctx) for c in found],
        total=await store.count_threads(ctx),
        page=page,
        page_size=page_size,
    )


@router.get("/{conversation_id}")
async def get_route(
    conversation_id: ConversationId, ctx: Context, store: Store
) -> SeedConversation:
    detail = await conversations.get_conversation(store, ctx, conversation_id)
    found = seed_conversation(detail, ctx)
    found.messages = [seed_message(m, detail.id) for m in detail.messages]
    return found


@router.put("/{conversation_id}")
async def rename_route(
    conversation_id: ConversationId, change: SeedTitleUpdate, ctx: Context, store: Store
) -> SeedConversation:
    renamed = await conversations.rename(store, ctx, conversation_id, change.title)
    return seed_conversation(renamed, ctx)


@router.delete("/{conversation_id}", status_code=204, response_class=Response)
async def delete_route(conversation_id: ConversationId, ctx: Context, store: Store) -> Response:
    await store.delete_thread(conversation_id, ctx)
    return Response(status_code=204)
