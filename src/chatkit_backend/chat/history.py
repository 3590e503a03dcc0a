"""Thread items -> model input, in a form every Chat Completions model accepts.

The SDK's default converter sends earlier assistant turns as `output_text` parts,
which the Agents SDK rejects for Chat Completions models ("Unknown content") on
turn 2, and some chat templates (Qwen, llama.cpp) silently answer nothing when
user content is a list of parts. Everything textual is sent as a plain string.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from agents import TResponseInputItem
from chatkit.agents import ThreadItemConverter
from chatkit.types import (
    AssistantMessageItem,
    HiddenContextItem,
    SDKHiddenContextItem,
    TaskItem,
    ThreadItem,
    UserMessageItem,
    UserMessageTagContent,
    WidgetItem,
    WorkflowItem,
)

from .tool_record import TOOL_RECORD

if TYPE_CHECKING:
    from ..attachments.service import Attachments

InputItems = TResponseInputItem | list[TResponseInputItem] | None

# The ids of the images the request being converted shows (None: outside to_agent_input).
_shown_images: ContextVar[set[str] | None] = ContextVar("shown_images", default=None)


def _user(text: str) -> TResponseInputItem:
    return {"role": "user", "content": text}


def _hidden(text: str) -> TResponseInputItem:
    return _user(
        "Hidden context for the agent (not shown to the user):\n"
        f"<HiddenContext>\n{text}\n</HiddenContext>"
    )


class HistoryConverter(ThreadItemConverter):
    """ThreadItemConverter whose messages are plain strings (a list of parts only when
    the message carries attachments: images need their own part)."""

    def __init__(
        self,
        attachments: Attachments | None = None,
        text_chars: int = 20_000,
        image_bytes: int = 20 * 1024 * 1024,
    ) -> None:
        self.attachments = attachments
        self.text_chars = text_chars
        self.image_bytes = image_bytes

    async def to_agent_input(
        self, thread_items: Sequence[ThreadItem] | ThreadItem
    ) -> list[TResponseInputItem]:
        # The images this request shows are chosen over all its items, newest first; one
        # converter serves concurrent turns, so the choice lives in this task's context.
        items = list(thread_items) if isinstance(thread_items, Sequence) else [thread_items]
        from ..attachments.model_input import images_within_budget

        newest_first = (
            attachment
            for item in reversed(items)
            if isinstance(item, UserMessageItem)
            for attachment in reversed(item.attachments)
        )
        token = _shown_images.set(images_within_budget(newest_first, self.image_bytes))
        try:
            return await super().to_agent_input(items)
        finally:
            _shown_images.reset(token)

    async def user_message_to_input(
        self, item: UserMessageItem, is_last_message: bool = True
    ) -> InputItems:
        text = "".join(
            f"@{part.text}" if isinstance(part, UserMessageTagContent) else part.text
            for part in item.content
        )
        out = [_user(text)]
        if item.attachments and self.attachments is not None:
            from ..attachments.model_input import attachment_parts

            parts: list[dict[str, Any]] = [{"type": "input_text", "text": text}] if text else []
            shown = _shown_images.get()
            for attachment in item.attachments:
                parts += await attachment_parts(
                    attachment,
                    self.attachments,
                    self.text_chars,
                    show_image=shown is None or attachment.id in shown,
                )
            message: Any = {"role": "user", "content": parts}
            out = [message]
        if item.quoted_text and is_last_message:
            out.append(_user(f"The user is referring to this in particular:\n{item.quoted_text}"))
        return out

    async def assistant_message_to_input(self, item: AssistantMessageItem) -> InputItems:
        text = "".join(part.text for part in item.content)
        if not text.strip():
            return None
        return {"role": "assistant", "content": text}

    async def hidden_context_to_input(self, item: HiddenContextItem) -> InputItems:
        content = item.content
        if isinstance(content, dict) and content.get("kind") == TOOL_RECORD:
            # A tool call of an earlier turn, replayed as the call and output it was.
            return [
                {
                    "type": "function_call",
                    "call_id": content["call_id"],
                    "name": content["name"],
                    "arguments": json.dumps(content["arguments"]),
                },
                {
                    "type": "function_call_output",
                    "call_id": content["call_id"],
                    "output": json.dumps(content["output"]),
                },
            ]
        return _hidden(content if isinstance(content, str) else json.dumps(content))

    async def sdk_hidden_context_to_input(self, item: SDKHiddenContextItem) -> InputItems:
        return _hidden(item.content)

    async def task_to_input(self, item: TaskItem) -> InputItems:
        task = item.task
        text = ": ".join(
            t for t in (getattr(task, "title", None), getattr(task, "content", None)) if t
        )
        if not text:
            return None
        return _user(f"A message was displayed to the user that this task was performed: {text}")

    async def workflow_to_input(self, item: WorkflowItem) -> InputItems:
        # Workflows here show tool activity; the tool calls themselves are replayed from
        # their hidden records, so repeating the workflow's text would say it twice.
        return None

    async def widget_to_input(self, item: WidgetItem) -> InputItems:
        return _user(
            f"A widget (id {item.id}) was shown to the user: "
            + (item.copy_text or item.widget.model_dump_json(exclude_unset=True, exclude_none=True))
        )
