"""Reading stored thread items back: the SDK's item types, widgets as dynamic widgets.

The SDK's `ThreadItem` union reads a stored widget into its named widget classes
(ListView, Text, ...), which it deprecates: every load of a thread with a task list
would warn once per component. Read as `DynamicWidgetRoot`, the type `WidgetTemplate`
builds, the same JSON gives the same widget with no deprecated class involved.
"""

from __future__ import annotations

from typing import Annotated, Any, Union, get_args

from chatkit.types import ThreadItem, WidgetItem
from chatkit.widgets import DynamicWidgetRoot
from pydantic import Field, TypeAdapter


class StoredWidgetItem(WidgetItem):
    """A widget item as stored: any widget the SDK can send, as plain components."""

    widget: DynamicWidgetRoot


def _with_dynamic_widgets() -> Any:
    # Taken from the SDK's own union, so item types a later SDK adds are read too.
    union, *_ = get_args(ThreadItem)
    members = tuple(StoredWidgetItem if t is WidgetItem else t for t in get_args(union))
    return Annotated[Union[members], Field(discriminator="type")]  # noqa: UP007


item_adapter: TypeAdapter[ThreadItem] = TypeAdapter(_with_dynamic_widgets())
