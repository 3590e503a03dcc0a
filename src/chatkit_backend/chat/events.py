"""Fixes applied to the event stream of an agent run before ChatKit persists it.

Chat Completions models (LiteLLM, Gemini, Anthropic, local servers) give every
message and function-call item the id "__fake_id__", and `stream_agent_response`
copies it into ChatKit item ids: replies would overwrite each other in the store
and merge in the UI. Each new assistant message and client tool call therefore
gets a fresh store id here, and the later events of that item follow it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from chatkit.types import (
    AssistantMessageItem,
    ClientToolCallItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadStreamEvent,
)

NewId = Callable[[str], str]


async def with_fresh_ids(
    events: AsyncIterator[ThreadStreamEvent], new_id: NewId
) -> AsyncIterator[ThreadStreamEvent]:
    """Yield `events` with store-generated ids for assistant messages and client tool calls.

    `new_id(kind)` returns a new id for the store item kind ("message", "tool_call").
    A provider id is mapped only while its item is open: the next message with the
    same provider id (they are all "__fake_id__") gets a new id of its own.
    """
    open_ids: dict[str, str] = {}
    # The events are new objects made for this run alone, so they are changed in place:
    # a copy per text delta cost about 1 ms a turn (docs/benchmarks.md).
    async for event in events:
        if isinstance(event, ThreadItemUpdatedEvent):
            if event.item_id in open_ids:
                event.item_id = open_ids[event.item_id]
        elif isinstance(event, ThreadItemAddedEvent):
            if isinstance(event.item, AssistantMessageItem):
                fresh = new_id("message")
                open_ids[event.item.id] = fresh
                event.item.id = fresh
        elif isinstance(event, ThreadItemDoneEvent):
            if isinstance(event.item, AssistantMessageItem):
                event.item.id = open_ids.pop(event.item.id, "") or new_id("message")
            elif isinstance(event.item, ClientToolCallItem):
                event.item.id = new_id("tool_call")
        yield event
