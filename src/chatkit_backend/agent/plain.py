"""AGENT=chat: a plain assistant with no tools of its own."""

from __future__ import annotations

from datetime import date
from typing import Any

from agents import Agent, RunContextWrapper

from .kit import ToolsOnlyKit
from .offline import Conversation, Plan, Planner
from .setup import AgentSetup, fill_prompt
from .todo import Clock

INSTRUCTIONS = """You are a helpful, concise assistant.
Today's date is {date}. Answer in Markdown when it helps; say so when you do not know."""

# The offline model cannot converse: it says so, plainly, instead of pretending.
OFFLINE_REPLY = (
    "I'm running on the built-in **offline model**, which cannot hold a conversation. "
    "To chat, set `GEMINI_API_KEY`, `OPENAI_API_KEY` or `ANTHROPIC_API_KEY` (or `MODEL` "
    "plus `MODEL_API_BASE` for Ollama, vLLM or any OpenAI-compatible server) and restart "
    "the server."
)


def offline_planner(_conversation: Conversation) -> Plan:
    return Plan(text=OFFLINE_REPLY)


class PlainKit(ToolsOnlyKit):
    """The `chat` assistant: instructions (SYSTEM_PROMPT if set), and no tools."""

    def __init__(self, *, system_prompt: str | None = None, today: Clock = date.today) -> None:
        self.prompt = system_prompt if system_prompt is not None else INSTRUCTIONS
        self.today = today
        self.planner: Planner = offline_planner
        self._agent: Agent[Any] | None = None

    def instructions(self, user_id: str) -> str:
        return fill_prompt(self.prompt, today=self.today(), user_id=user_id)

    def build_agent(self, setup: AgentSetup) -> Agent[Any]:
        if self._agent is None:

            def instructions(ctx: RunContextWrapper[Any], _agent: Agent[Any]) -> str:
                return self.instructions(ctx.context.request_context.user_id)

            self._agent = Agent(name="Assistant", instructions=instructions)
        if setup.tools:
            # The server's own tools (MCP) change as servers come and go: added per turn.
            return self._agent.clone(tools=list(setup.tools))
        return self._agent

    def tool_names(self) -> frozenset[str]:
        return frozenset()
