"""Thread items -> model input, in a form every Chat Completions model accepts.

The SDK's default converter sends earlier assistant turns as `output_text` parts,
which the Agents SDK rejects for Chat Completions models ("Unknown content") on
turn 2, and some chat templates (Qwen, llama.cpp) silently answer nothing when
user content is a list of parts. Everything textual is sent as a plain string.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from agents import TResponseInputItem
from chatkit.agents import ThreadItemConverter
from chatkit.types import (
    AssistantMessageItem,
    HiddenContextItem,
    SDKHiddenContextItem,
    TaskItem,
    UserMessageItem,
    UserMessageTagContent,
    WidgetItem,
    WorkflowItem,
)

from .tool_record import TOOL_RECORD

if TYPE_CHECKING:
    from ..attachments.service import Attachments

InputItems = TResponseInputItem | list[TResponseInputItem] | None


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

    def __init__(self, attachments: Attachments | None = None, text_chars: int = 20_000) -> None:
        self.attachments = attachments
        self.text_chars = text_chars

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
            for attachment in item.attachments:
                parts += await attachment_parts(attachment, self.attachments, self.text_chars)
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
