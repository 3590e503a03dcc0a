"""What the ChatKit server needs from an agent: how to build it, and its UI hooks.

The server stays generic; the todo assistant (agent/todo.py), the plain `chat` assistant
(agent/plain.py) and an operator's factory (agent/custom.py) are each an AgentKit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from agents import Agent
from chatkit.actions import Action
from chatkit.agents import AgentContext
from chatkit.store import Store
from chatkit.types import (
    NoticeEvent,
    SyncCustomActionResponse,
    ThreadMetadata,
    ThreadStreamEvent,
    WidgetItem,
)

from ..context import RequestContext
from .offline import Planner
from .setup import AgentSetup

NO_ACTIONS = "This assistant's widgets have no actions."


class AgentKit(Protocol):
    # What the offline model says for this agent (no API key configured).
    planner: Planner

    def build_agent(self, setup: AgentSetup) -> Agent[Any]:
        """The agent answering this turn (called once per turn; may return the same one)."""

    def tool_names(self) -> frozenset[str]:
        """The tools a turn may force (ChatKit's inference_options.tool_choice)."""

    def new_context(
        self, thread: ThreadMetadata, store: Store[RequestContext], ctx: RequestContext
    ) -> AgentContext[RequestContext]:
        """The run context tools receive as `ctx.context`."""

    def after_run(self, context: AgentContext[RequestContext]) -> AsyncIterator[ThreadStreamEvent]:
        """Events to stream once the agent has finished its reply (e.g. widgets)."""

    def action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        ctx: RequestContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        """Handle a widget action (threads.custom_action)."""

    async def sync_action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        ctx: RequestContext,
    ) -> SyncCustomActionResponse:
        """Handle a widget action answered in one JSON response."""


class ToolsOnlyKit:
    """The hooks of an agent whose only UI is what its tools stream: no actions."""

    def new_context(
        self, thread: ThreadMetadata, store: Store[RequestContext], ctx: RequestContext
    ) -> AgentContext[RequestContext]:
        return AgentContext(thread=thread, store=store, request_context=ctx)

    async def after_run(
        self, context: AgentContext[RequestContext]
    ) -> AsyncIterator[ThreadStreamEvent]:
        return
        yield  # an async generator with nothing to say

    async def action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        ctx: RequestContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        yield NoticeEvent(level="warning", message=NO_ACTIONS)

    async def sync_action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        ctx: RequestContext,
    ) -> SyncCustomActionResponse:
        raise ValueError(NO_ACTIONS)
