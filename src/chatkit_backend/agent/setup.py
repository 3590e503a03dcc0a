"""What an agent factory is given (AGENT=package.module:factory): small, documented, stable.

A factory is a plain function `factory(setup: AgentSetup) -> agents.Agent`. It is called
once at start-up as a check (`setup.startup_check` is True, with placeholder ids: a
factory that fails stops start-up), then once per turn with the real user and thread.
The agent's own `model` is not used: each turn runs on the model the user chose (MODELS).
Function tools receive `ctx.context`, a `chatkit.agents.AgentContext` whose
`request_context.user_id` is the signed-in user and whose `stream_widget(...)` shows a
widget in the chat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from ..config import Settings

if TYPE_CHECKING:
    from agents import Tool

STARTUP_CHECK_ID = "startup-check"


@dataclass(frozen=True)
class AgentSetup:
    """The turn an agent is built for."""

    user_id: str
    thread_id: str
    # The server's settings (read-only): SYSTEM_PROMPT and the rest.
    settings: Settings
    # Tools this server configures for every agent; a factory adds them to its own.
    tools: tuple[Tool, ...] = field(default_factory=tuple)
    today: date = field(default_factory=date.today)
    startup_check: bool = False

    @classmethod
    def for_check(cls, settings: Settings, **extra: Any) -> AgentSetup:
        """The setup of the start-up check: placeholder ids, nothing user-specific."""
        return cls(STARTUP_CHECK_ID, STARTUP_CHECK_ID, settings, startup_check=True, **extra)


def fill_prompt(prompt: str, *, today: date, user_id: str) -> str:
    """SYSTEM_PROMPT with {date} and {user_id} filled in; any other braces stay as written."""
    return prompt.replace("{date}", today.isoformat()).replace("{user_id}", user_id)
