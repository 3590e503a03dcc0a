"""Checks made before a ChatKit request runs, so failures get a status code.

The SDK raises most request errors only after a streaming response has started
(HTTP 200 already sent): the connection just breaks. Everything that can be known
up front (existence, ownership, thread state, what is enabled) is checked here.
"""

from __future__ import annotations

from chatkit.store import NotFoundError
from chatkit.types import (
    AttachmentsCreateReq,
    AttachmentsDeleteReq,
    ChatKitReq,
    ClientToolCallItem,
    InputTranscribeReq,
    ItemsFeedbackReq,
    ItemsListReq,
    StructuredInputItem,
    ThreadMetadata,
    ThreadsAddClientToolOutputReq,
    ThreadsAddStructuredInputReq,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsCustomActionReq,
    ThreadsDeleteReq,
    ThreadsGetByIdReq,
    ThreadsRetryAfterItemReq,
    ThreadsSyncCustomActionReq,
    ThreadsUpdateReq,
    UserMessageInput,
    UserMessageItem,
    UserMessageTextContent,
    WidgetItem,
)

from ..context import RequestContext
from ..errors import BadRequest, Conflict, NotFound
from .store import SQLStore

# Requests that make the agent produce new items (and so need an active thread).
PRODUCING = (
    ThreadsCreateReq,
    ThreadsAddUserMessageReq,
    ThreadsAddClientToolOutputReq,
    ThreadsAddStructuredInputReq,
    ThreadsRetryAfterItemReq,
    ThreadsCustomActionReq,
)


def thread_id_of(request: ChatKitReq) -> str | None:
    params = getattr(request, "params", None)
    value = getattr(params, "thread_id", None)
    return value if isinstance(value, str) else None


def check_input(input: UserMessageInput, max_chars: int) -> None:
    if input.attachments:
        raise BadRequest("Attachments are not enabled on this server.", code="not_enabled")
    text = "".join(p.text for p in input.content if isinstance(p, UserMessageTextContent))
    if not text.strip():
        raise BadRequest("Message is required", code="empty_message")
    if len(text) > max_chars:
        raise BadRequest(
            f"Message is too long ({len(text)} characters; the limit is {max_chars}).",
            code="message_too_long",
        )


async def _thread(store: SQLStore, thread_id: str, ctx: RequestContext) -> ThreadMetadata:
    try:
        return await store.load_thread(thread_id, ctx)
    except NotFoundError:
        raise NotFound(f"Thread {thread_id} not found.", code="thread_not_found") from None


async def _item(store: SQLStore, thread_id: str, item_id: str, ctx: RequestContext) -> object:
    try:
        return await store.load_item(thread_id, item_id, ctx)
    except NotFoundError:
        raise NotFound(f"Item {item_id} not found.", code="item_not_found") from None


async def preflight(
    request: ChatKitReq, store: SQLStore, ctx: RequestContext, *, max_chars: int
) -> ThreadMetadata | None:
    """Raise an ApiError for a request that cannot succeed; return its thread if any."""
    if isinstance(request, AttachmentsCreateReq | AttachmentsDeleteReq | InputTranscribeReq):
        raise BadRequest(f"{request.type} is not enabled on this server.", code="not_enabled")
    if isinstance(request, ThreadsCreateReq):
        check_input(request.params.input, max_chars)
        return None

    thread_id = thread_id_of(request)
    if thread_id is None:
        return None  # threads.list
    thread = await _thread(store, thread_id, ctx)

    if isinstance(request, PRODUCING) and thread.status.type != "active":
        raise Conflict(
            f"This thread is {thread.status.type} and takes no new messages.",
            code="thread_not_active",
        )

    match request:
        case ThreadsAddUserMessageReq():
            check_input(request.params.input, max_chars)
        case ThreadsRetryAfterItemReq():
            item = await _item(store, thread_id, request.params.item_id, ctx)
            if not isinstance(item, UserMessageItem):
                raise BadRequest("Only a user message can be retried.", code="not_a_user_message")
        case ThreadsCustomActionReq() | ThreadsSyncCustomActionReq():
            if request.params.item_id:
                item = await _item(store, thread_id, request.params.item_id, ctx)
                if not isinstance(item, WidgetItem):
                    raise BadRequest("Actions can only come from a widget.", code="not_a_widget")
        case ThreadsAddClientToolOutputReq():
            newest = await store.load_thread_items(thread_id, None, 1, "desc", ctx)
            if not (
                newest.data
                and isinstance(newest.data[0], ClientToolCallItem)
                and newest.data[0].status == "pending"
            ):
                raise Conflict("No client tool call is waiting for output.", code="no_pending_call")
        case ThreadsAddStructuredInputReq():
            item = await _item(store, thread_id, request.params.item_id, ctx)
            if not isinstance(item, StructuredInputItem):
                raise BadRequest("That item is not a structured input.", code="not_structured")
            if item.status != "pending":
                raise Conflict("That input was already answered.", code="already_answered")
        case (
            ThreadsGetByIdReq()
            | ThreadsUpdateReq()
            | ThreadsDeleteReq()
            | ItemsListReq()
            | ItemsFeedbackReq()
        ):
            pass
    return thread
