"""The built-in offline model: an Agents SDK `Model` that needs no network or key.

It streams its reply in small deltas as Responses events, the same shapes the
LiteLLM path produces, so everything downstream (event fixes, ids, persistence,
tool calls) runs exactly as it does with a real provider. What it says is decided
by a `Planner`: a plain function from the conversation to text or tool calls.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents import Model, ModelResponse, ModelSettings, ModelTracing, Tool, Usage
from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import TResponseInputItem, TResponseOutputItem, TResponseStreamEvent
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionToolCall,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
    ResponseUsage,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

OFFLINE_MODEL_NAME = "offline"


@dataclass(frozen=True)
class ToolRequest:
    """One function call the planner wants made."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolResult:
    """A tool call of this turn and what it returned."""

    name: str
    arguments: dict[str, Any]
    output: Any


@dataclass(frozen=True)
class Conversation:
    """What the planner sees: the newest user text and this turn's tool results."""

    user_text: str
    tool_results: Sequence[ToolResult] = ()
    tool_names: frozenset[str] = frozenset()
    instructions: str = ""
    # The newest user message's attachments as the model input describes them
    # (attachments/model_input.py): "[Attached file: name (type, size)]\ncontent".
    attachments: Sequence[str] = ()


@dataclass(frozen=True)
class Plan:
    """Text to stream, and/or tool calls to make (the run then calls the model again)."""

    text: str = ""
    tool_calls: Sequence[ToolRequest] = field(default_factory=tuple)


Planner = Callable[[Conversation], Plan]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content or []:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append(part["text"])
    return "".join(parts)


# How attachment parts of a user message begin (attachments/model_input.py).
ATTACHMENT_MARKS = ("[Attached image: ", "[Attached file: ", "[Attachment ")


def _split_attachments(content: Any) -> tuple[str, tuple[str, ...]]:
    """A user message's own text, and its attachment parts' texts."""
    if not isinstance(content, list):
        return _text_of(content), ()
    texts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    attached = tuple(t for t in texts if t.startswith(ATTACHMENT_MARKS))
    return "".join(t for t in texts if not t.startswith(ATTACHMENT_MARKS)), attached


def acknowledge(attachments: Sequence[str]) -> str:
    """What the offline model says it was given: each attachment's name, type and size,
    and a text file's first line, so the whole attachment path can be tried with no key."""
    lines = []
    for part in attachments:
        header, _, body = part.partition("\n")
        line = f"- {header.strip('[]')}"
        first = next((ln.strip() for ln in body.splitlines() if ln.strip()), "")
        if first:
            line += f", first line: “{first[:120]}”"
        lines.append(line)
    return "You attached:\n" + "\n".join(lines)


def _parse_json(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def read_conversation(
    input: str | list[TResponseInputItem], tools: Sequence[Tool], instructions: str | None
) -> Conversation:
    """Find the newest user message and the tool calls answered after it."""
    names = frozenset(getattr(t, "name", "") for t in tools)
    if isinstance(input, str):
        return Conversation(user_text=input, tool_names=names, instructions=instructions or "")
    user_text = ""
    attachments: tuple[str, ...] = ()
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    results: list[ToolResult] = []
    for raw in input:
        item: dict[str, Any] = dict(raw)
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") == "user":
            text, attached = _split_attachments(item.get("content"))
            # Hidden context notes (e.g. "the user cancelled") are not what the user said.
            if not text.startswith("Hidden context for the agent"):
                user_text, attachments, calls, results = text, attached, {}, []
        elif kind == "function_call":
            args = _parse_json(item.get("arguments"))
            calls[str(item.get("call_id"))] = (
                str(item.get("name")),
                args if isinstance(args, dict) else {},
            )
        elif kind == "function_call_output":
            name, args = calls.get(str(item.get("call_id")), ("", {}))
            results.append(ToolResult(name, args, _parse_json(item.get("output"))))
    return Conversation(user_text, tuple(results), names, instructions or "", attachments)


def split_deltas(text: str) -> list[str]:
    """Word-sized pieces (keeping whitespace), like a real token stream."""
    return re.findall(r"\S+\s*|\s+", text) or [text]


def _usage(conversation: Conversation, plan: Plan) -> ResponseUsage:
    # Rough token counts (4 chars a token) so usage accounting has real numbers.
    input_tokens = max(1, len(conversation.user_text) // 4)
    output_tokens = max(1, len(plan.text) // 4) if plan.text else len(plan.tool_calls) * 8
    return ResponseUsage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
        output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
    )


class OfflineModel(Model):
    """A deterministic model: `planner` decides, this class speaks the streaming protocol."""

    def __init__(self, planner: Planner, *, delta_delay: float = 0.01) -> None:
        self.planner = planner
        # A short pause between deltas makes the stream visible in a browser.
        self.delta_delay = delta_delay

    def _plan(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        tools: list[Tool],
    ) -> tuple[Conversation, Plan]:
        conversation = read_conversation(input, tools, system_instructions)
        plan = self.planner(conversation)
        if conversation.attachments and plan.text:
            plan = Plan(f"{acknowledge(conversation.attachments)}\n\n{plan.text}", plan.tool_calls)
        return conversation, plan

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any | None,
    ) -> ModelResponse:
        conversation, plan = self._plan(system_instructions, input, tools)
        usage = _usage(conversation, plan)
        return ModelResponse(
            output=_output_items(plan),
            usage=Usage(
                requests=1,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                total_tokens=usage.total_tokens,
            ),
            response_id=None,
        )

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any | None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        conversation, plan = self._plan(system_instructions, input, tools)
        seq = iter(range(1_000_000))
        response = Response(
            id=f"resp_offline_{uuid.uuid4().hex}",
            created_at=time.time(),
            model=OFFLINE_MODEL_NAME,
            object="response",
            output=[],
            tool_choice="auto",
            tools=[],
            parallel_tool_calls=False,
        )
        yield ResponseCreatedEvent(
            response=response, type="response.created", sequence_number=next(seq)
        )
        outputs = _output_items(plan)
        for index, item in enumerate(outputs):
            if isinstance(item, ResponseOutputMessage):
                async for event in self._stream_message(item, index, seq):
                    yield event
            else:
                assert isinstance(item, ResponseFunctionToolCall)
                yield ResponseOutputItemAddedEvent(
                    item=item.model_copy(update={"arguments": ""}),
                    output_index=index,
                    type="response.output_item.added",
                    sequence_number=next(seq),
                )
                yield ResponseFunctionCallArgumentsDeltaEvent(
                    delta=item.arguments,
                    item_id=item.id or "",
                    output_index=index,
                    type="response.function_call_arguments.delta",
                    sequence_number=next(seq),
                )
                yield ResponseOutputItemDoneEvent(
                    item=item,
                    output_index=index,
                    type="response.output_item.done",
                    sequence_number=next(seq),
                )
        final = response.model_copy(
            update={"output": outputs, "usage": _usage(conversation, plan), "status": "completed"}
        )
        yield ResponseCompletedEvent(
            response=final, type="response.completed", sequence_number=next(seq)
        )

    async def _stream_message(
        self, message: ResponseOutputMessage, index: int, seq: Any
    ) -> AsyncIterator[TResponseStreamEvent]:
        part = message.content[0]
        assert isinstance(part, ResponseOutputText)
        yield ResponseOutputItemAddedEvent(
            item=message.model_copy(update={"content": [], "status": "in_progress"}),
            output_index=index,
            type="response.output_item.added",
            sequence_number=next(seq),
        )
        empty = ResponseOutputText(text="", type="output_text", annotations=[], logprobs=[])
        yield ResponseContentPartAddedEvent(
            content_index=0,
            item_id=message.id,
            output_index=index,
            part=empty,
            type="response.content_part.added",
            sequence_number=next(seq),
        )
        for delta in split_deltas(part.text):
            if self.delta_delay:
                await asyncio.sleep(self.delta_delay)
            yield ResponseTextDeltaEvent(
                content_index=0,
                delta=delta,
                item_id=message.id,
                output_index=index,
                type="response.output_text.delta",
                sequence_number=next(seq),
                logprobs=[],
            )
        yield ResponseContentPartDoneEvent(
            content_index=0,
            item_id=message.id,
            output_index=index,
            part=part,
            type="response.content_part.done",
            sequence_number=next(seq),
        )
        yield ResponseOutputItemDoneEvent(
            item=message,
            output_index=index,
            type="response.output_item.done",
            sequence_number=next(seq),
        )


def _output_items(plan: Plan) -> list[TResponseOutputItem]:
    items: list[TResponseOutputItem] = []
    if plan.text:
        items.append(
            ResponseOutputMessage(
                id=f"msg_offline_{uuid.uuid4().hex}",
                content=[
                    ResponseOutputText(
                        text=plan.text, type="output_text", annotations=[], logprobs=[]
                    )
                ],
                role="assistant",
                type="message",
                status="completed",
            )
        )
    for call in plan.tool_calls:
        items.append(
            ResponseFunctionToolCall(
                id=f"fc_offline_{uuid.uuid4().hex}",
                call_id=f"call_{uuid.uuid4().hex[:24]}",
                name=call.name,
                arguments=json.dumps(call.arguments),
                type="function_call",
                status="completed",
            )
        )
    return items
