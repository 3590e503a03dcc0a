"""AGENT -> the kit that answers: `todo`, `chat`, or an operator's factory."""

from __future__ import annotations

from chatkit.store import Store

from ..config import Settings
from ..context import RequestContext
from ..tasks.service import TaskService
from .custom import AgentFactoryError, FactoryKit
from .kit import AgentKit
from .plain import PlainKit
from .todo import TodoKit


def make_kit(settings: Settings, tasks: TaskService, store: Store[RequestContext]) -> AgentKit:
    """The kit AGENT names; raises AgentFactoryError for a factory that does not work."""
    if settings.agent == "todo":
        return TodoKit(tasks, store, system_prompt=settings.system_prompt)
    if settings.agent == "chat":
        return PlainKit(system_prompt=settings.system_prompt)
    return FactoryKit(settings.agent, settings)


def agent_problem(settings: Settings) -> str | None:
    """Why AGENT's factory cannot answer, in one line; None when it can (checked by `serve`)."""
    try:
        FactoryKit(settings.agent, settings)
    except AgentFactoryError as exc:
        return str(exc)
    return None
