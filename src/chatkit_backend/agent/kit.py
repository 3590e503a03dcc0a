"""What the ChatKit server needs from an agent: how to build it, and its UI hooks.

The server stays generic; the todo assistant (agent/todo.py) is one AgentKit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from agents import Agent
from chatkit.actions import Action
from chatkit.agents import AgentContext
from chatkit.store import Store
from chatkit.types import (
    SyncCustomActionResponse,
    ThreadMetadata,
    ThreadStreamEvent,
    WidgetItem,
)

from ..context import RequestContext


class AgentKit(Protocol):
    def build_agent(self) -> Agent[Any]:
        """The agent answering this turn (called once per turn; may return the same one)."""

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
