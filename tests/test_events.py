"""with_fresh_ids: provider ids that are always "__fake_id__" become distinct store ids."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    ClientToolCallItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadStreamEvent,
)

from chatkit_backend.chat.events import with_fresh_ids
from chatkit_backend.chat.store import new_id

FAKE = "__fake_id__"
THREAD = "thr_1"


def message(text: str) -> AssistantMessageItem:
    return AssistantMessageItem(
        id=FAKE,
        thread_id=THREAD,
        created_at=datetime.now(),
        content=[AssistantMessageContent(text=text)] if text else [],
    )


def delta(text: str) -> ThreadItemUpdatedEvent:
    return ThreadItemUpdatedEvent(
        item_id=FAKE, update=AssistantMessageContentPartTextDelta(content_index=0, delta=text)
    )


def provider_stream() -> list[ThreadStreamEvent]:
    """What stream_agent_response yields for a Chat Completions model: every id is fake."""
    tool_call = ClientToolCallItem(
        id=FAKE,
        thread_id=THREAD,
        created_at=datetime.now(),
        call_id="call_1",
        name="show_list",
        arguments={"list": "groceries"},
    )
    return [
        ThreadItemAddedEvent(item=message("")),
        delta("Hel"),
        delta("lo"),
        ThreadItemDoneEvent(item=message("Hello")),
        ThreadItemAddedEvent(item=message("")),
        delta("Wor"),
        delta("ld"),
        ThreadItemDoneEvent(item=message("World")),
        ThreadItemDoneEvent(item=tool_call),
    ]


async def run(events: Sequence[ThreadStreamEvent]) -> list[ThreadStreamEvent]:
    async def source() -> AsyncIterator[ThreadStreamEvent]:
        for event in events:
            yield event

    return [event async for event in with_fresh_ids(source(), new_id)]


def item_id(event: ThreadStreamEvent) -> str:
    if isinstance(event, ThreadItemUpdatedEvent):
        return event.item_id
    assert isinstance(event, ThreadItemAddedEvent | ThreadItemDoneEvent)
    return event.item.id


async def test_every_message_and_tool_call_gets_a_fresh_id() -> None:
    out = await run(provider_stream())

    assert [e.type for e in out] == [e.type for e in provider_stream()]
    ids = [item_id(e) for e in out]
    assert FAKE not in ids

    first, second = ids[0:4], ids[4:8]
    tool_call_id = ids[8]
    # Each message keeps one id from added through its deltas to done ...
    assert len(set(first)) == 1
    assert len(set(second)) == 1
    # ... and the two messages and the tool call never share one.
    assert len({first[0], second[0], tool_call_id}) == 3
    assert first[0].startswith("msg_")
    assert second[0].startswith("msg_")
    assert tool_call_id.startswith("tc_")


async def test_content_and_other_fields_are_untouched() -> None:
    out = await run(provider_stream())
    done = [e.item for e in out if isinstance(e, ThreadItemDoneEvent)]
    assert [m.content[0].text for m in done[:2] if isinstance(m, AssistantMessageItem)] == [
        "Hello",
        "World",
    ]
    deltas = [e.update.delta for e in out if isinstance(e, ThreadItemUpdatedEvent)]
    assert deltas == ["Hel", "lo", "Wor", "ld"]
    tool_call = done[2]
    assert isinstance(tool_call, ClientToolCallItem)
    assert (tool_call.call_id, tool_call.name, tool_call.arguments) == (
        "call_1",
        "show_list",
        {"list": "groceries"},
    )


async def test_each_run_draws_new_ids() -> None:
    first = {item_id(e) for e in await run(provider_stream())}
    second = {item_id(e) for e in await run(provider_stream())}
    assert not first & second
