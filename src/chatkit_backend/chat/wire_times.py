"""ChatKit objects as they are written to the wire: every time aware, in UTC.

The SDK stamps the threads and items it creates with naive *local* `datetime.now()`
and streams them as they are: `"created_at": "2026-12-02T12:55:20.672081"`, which a
browser reads as the viewer's local time. What is read back from the store is UTC
already. Only copies made for writing change: the SDK's own objects keep their
naive times, because its code subtracts them from `datetime.now()` (workflow
durations) and would fail on an aware one.
"""

from __future__ import annotations

from typing import Any, TypeVar

from chatkit.types import (
    Page,
    SyncCustomActionResponse,
    Thread,
    ThreadCreatedEvent,
    ThreadItemAddedEvent,
    ThreadItemBase,
    ThreadItemDoneEvent,
    ThreadItemReplacedEvent,
    ThreadMetadata,
    ThreadUpdatedEvent,
)
from pydantic import BaseModel

from ..timestamps import sdk_time_to_utc

M = TypeVar("M", bound=BaseModel)


def _stamped(obj: M) -> M:
    """A thread or item with `created_at` in UTC: itself when it is already."""
    created = getattr(obj, "created_at")  # noqa: B009 - both kinds have it
    utc = sdk_time_to_utc(created)
    if isinstance(obj, Thread):
        items = _page(obj.items)
        if utc is created and items is obj.items:
            return obj
        return obj.model_copy(update={"created_at": utc, "items": items})
    return obj if utc is created else obj.model_copy(update={"created_at": utc})


def _page(page: Page[Any]) -> Page[Any]:
    data = [with_utc_times(entry) for entry in page.data]
    if all(new is old for new, old in zip(data, page.data, strict=True)):
        return page
    return page.model_copy(update={"data": data})


def with_utc_times(obj: BaseModel) -> BaseModel:
    """`obj` (an event, thread, item, page or action response) with UTC times.

    Text deltas and the other events without a time pass through untouched.
    """
    if isinstance(obj, ThreadItemAddedEvent | ThreadItemDoneEvent | ThreadItemReplacedEvent):
        item = _stamped(obj.item)
        return obj if item is obj.item else obj.model_copy(update={"item": item})
    if isinstance(obj, ThreadCreatedEvent | ThreadUpdatedEvent):
        thread = _stamped(obj.thread)
        return obj if thread is obj.thread else obj.model_copy(update={"thread": thread})
    if isinstance(obj, ThreadMetadata | ThreadItemBase):
        return _stamped(obj)
    if isinstance(obj, Page):
        return _page(obj)
    if isinstance(obj, SyncCustomActionResponse) and obj.updated_item is not None:
        item = _stamped(obj.updated_item)
        if item is not obj.updated_item:
            return obj.model_copy(update={"updated_item": item})
    return obj
