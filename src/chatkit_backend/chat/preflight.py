"""Checks made before a ChatKit request runs, so failures get a status code.

The SDK raises most request errors only after a streaming response has started
(HTTP 200 already sent): the connection just breaks. Everything that can be known
up front (the text rules, sizes, existence, ownership, thread state, what is
enabled) is checked here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

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
    UserMessageTagContent,
    WidgetItem,
)
from pydantic import TypeAdapter, ValidationError

from ..agent.catalogue import ModelCatalogue
from ..context import RequestContext
from ..errors import BadRequest, Conflict, NotFound
from ..text_rules import Title, name_problem, unstorable_in
from .store import SQLStore, answer_next_thread_read_from

if TYPE_CHECKING:
    from ..attachments.service import Attachments

_title_adapter: TypeAdapter[str] = TypeAdapter(Title)

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


def model_text(input: UserMessageInput) -> str:
    """The message as the model reads it (chat/history.py): its text, tags as `@name`."""
    return "".join(
        f"@{part.text}" if isinstance(part, UserMessageTagContent) else part.text
        for part in input.content
    )


def message_chars(input: UserMessageInput) -> int:
    """The size a message is limited by: everything of it the model reads or the thread
    stores (text, tags with their data, quoted text), not only its text parts."""
    tag_data = sum(
        len(json.dumps(part.data, ensure_ascii=False))
        for part in input.content
        if isinstance(part, UserMessageTagContent) and part.data
    )
    return len(model_text(input)) + tag_data + len(input.quoted_text or "")


def check_input(input: UserMessageInput, max_chars: int) -> None:
    if not model_text(input).strip() and not input.attachments:
        raise BadRequest("Message is required", code="empty_message")
    size = message_chars(input)
    if size > max_chars:
        raise BadRequest(
            f"Message is too long ({size} characters with its tags and quoted text; "
            f"the limit is {max_chars}).",
            code="message_too_long",
        )


# The ids a request names, refused before any query runs with them.
_ID_PARAMS = ("thread_id", "item_id", "after", "attachment_id")
# items.feedback names items one bind parameter each; a page's worth is plenty.
MAX_FEEDBACK_ITEMS = 100


def _refuse(where: str, problem: str) -> NoReturn:
    raise BadRequest(f"Invalid text at {where}: it {problem}.", code="invalid_text")


def check_text(request: ChatKitReq) -> None:
    """Apply the text rules (text_rules.py) to every string of a ChatKit request."""
    params = getattr(request, "params", None)
    for name in _ID_PARAMS:
        value = getattr(params, name, None)
        if isinstance(value, str) and (problem := name_problem(value)):
            _refuse(f"params.{name}", problem)
    if isinstance(request, ItemsFeedbackReq):
        if len(request.params.item_ids) > MAX_FEEDBACK_ITEMS:
            raise BadRequest(
                f"Feedback names at most {MAX_FEEDBACK_ITEMS} items at once.",
                code="invalid_request",
            )
        for index, item_id in enumerate(request.params.item_ids):
            if problem := name_problem(item_id):
                _refuse(f"params.item_ids.{index}", problem)
    if isinstance(request, ThreadsCreateReq | ThreadsAddUserMessageReq):
        for index, part in enumerate(request.params.input.content):
            if isinstance(part, UserMessageTagContent) and (problem := name_problem(part.id)):
                _refuse(f"params.input.content.{index}.id", problem)
    if isinstance(request, ThreadsUpdateReq):
        try:
            # Stored trimmed, as REST renames store it (chat/conversations.py).
            request.params.title = _title_adapter.validate_python(request.params.title)
        except ValidationError as exc:
            raise BadRequest(
                f"Invalid title: {exc.errors()[0]['msg']}.", code="invalid_title"
            ) from None
    if found := unstorable_in(request.model_dump()):
        _refuse(*found)


# Where a thread remembers the model of its last turn (server-only thread metadata).
REMEMBERED_MODEL = "model"


@dataclass(frozen=True)
class TurnChoices:
    """What a message may choose for its turn: a model, and a tool to force."""

    models: ModelCatalogue
    tools: frozenset[str]


def choose_for_turn(
    input: UserMessageInput, thread: ThreadMetadata | None, choices: TurnChoices
) -> None:
    """Refuse a model or forced tool this server does not offer; otherwise write the
    turn's model into the message, so it is stored with it and the thread keeps it."""
    options = input.inference_options
    if options.model is not None and options.model not in choices.models:
        offered = ", ".join(e.id for e in choices.models.entries)
        raise BadRequest(
            f"Unknown model {options.model!r}. This server offers: {offered}.",
            code="unknown_model",
        )
    if options.tool_choice is not None and options.tool_choice.id not in choices.tools:
        offered = ", ".join(sorted(choices.tools)) or "none"
        raise BadRequest(
            f"Unknown tool {options.tool_choice.id!r}. This assistant's tools: {offered}.",
            code="unknown_tool",
        )
    remembered = thread.metadata.get(REMEMBERED_MODEL) if thread is not None else None
    options.model = choices.models.for_turn(options.model, remembered)


async def check_attachments(
    input: UserMessageInput,
    thread_id: str | None,
    attachments: Attachments | None,
    ctx: RequestContext,
) -> None:
    """Every attachment of a message is the caller's, uploaded, and not in another thread."""
    if not input.attachments:
        return
    if attachments is None:
        raise BadRequest("Attachments are not enabled on this server.", code="not_enabled")
    from ..attachments.records import not_found
    from ..attachments.service import is_uploaded

    limit = attachments.rules.max_per_message
    if len(input.attachments) > limit:
        raise BadRequest(
            f"A message may carry at most {limit} attachments ({len(input.attachments)} sent).",
            code="too_many_attachments",
        )
    if len(set(input.attachments)) != len(input.attachments):
        raise BadRequest("An attachment is listed twice.", code="duplicate_attachment")
    for attachment_id in input.attachments:
        if problem := name_problem(attachment_id):
            _refuse("params.input.attachments", problem)
        try:
            attachment = await attachments.store.load_attachment(attachment_id, ctx)
        except NotFoundError:
            raise not_found(attachment_id) from None
        if not is_uploaded(attachment):
            raise Conflict(
                f"Attachment {attachment_id} has not finished uploading.",
                code="attachment_not_uploaded",
            )
        if attachment.thread_id is not None and attachment.thread_id != thread_id:
            raise Conflict(
                f"Attachment {attachment_id} belongs to another conversation.",
                code="attachment_in_use",
            )


async def _thread(store: SQLStore, thread_id: str, ctx: RequestContext) -> ThreadMetadata:
    try:
        thread = await store.load_thread(thread_id, ctx)
    except NotFoundError:
        raise NotFound(f"Thread {thread_id} not found.", code="thread_not_found") from None
    # The SDK reads the thread again first thing: one query fewer a turn.
    answer_next_thread_read_from(thread, ctx.user_id)
    return thread


async def _item(store: SQLStore, thread_id: str, item_id: str, ctx: RequestContext) -> object:
    try:
        return await store.load_item(thread_id, item_id, ctx)
    except NotFoundError:
        raise NotFound(f"Item {item_id} not found.", code="item_not_found") from None


async def preflight(
    request: ChatKitReq,
    store: SQLStore,
    ctx: RequestContext,
    *,
    max_chars: int,
    choices: TurnChoices,
    attachments: Attachments | None = None,
    audio_max_bytes: int | None = None,
) -> ThreadMetadata | None:
    """Raise an ApiError for a request that cannot succeed; return its thread if any."""
    if (isinstance(request, InputTranscribeReq) and audio_max_bytes is None) or (
        attachments is None and isinstance(request, AttachmentsCreateReq | AttachmentsDeleteReq)
    ):
        raise BadRequest(f"{request.type} is not enabled on this server.", code="not_enabled")
    if isinstance(request, InputTranscribeReq) and audio_max_bytes is not None:
        from ..attachments.transcription import decode_audio

        decode_audio(request.params.audio_base64, request.params.mime_type, audio_max_bytes)
        return None
    check_text(request)
    if isinstance(request, AttachmentsCreateReq) and attachments is not None:
        params = request.params
        attachments.rules.check_declared(params.name, params.size, params.mime_type)
        return None
    if isinstance(request, AttachmentsDeleteReq) and attachments is not None:
        from ..attachments.records import not_found

        try:
            await store.load_attachment(request.params.attachment_id, ctx)
        except NotFoundError:
            raise not_found(request.params.attachment_id) from None
        return None
    if isinstance(request, ThreadsCreateReq):
        check_input(request.params.input, max_chars)
        await check_attachments(request.params.input, None, attachments, ctx)
        choose_for_turn(request.params.input, None, choices)
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
            await check_attachments(request.params.input, thread_id, attachments, ctx)
            choose_for_turn(request.params.input, thread, choices)
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
