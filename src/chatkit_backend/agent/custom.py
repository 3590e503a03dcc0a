"""AGENT=package.module:factory: the operator's own Agents SDK agent (agent/setup.py).

The factory is imported and called once at start-up as a check, so a typo, a missing
package or a factory that raises stops the server with one line naming AGENT, instead
of failing every turn later.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from agents import Agent

from ..config import Settings
from .kit import ToolsOnlyKit
from .offline import Planner
from .plain import offline_planner
from .setup import AgentSetup

Factory = Callable[[AgentSetup], Agent[Any]]


class AgentFactoryError(Exception):
    """AGENT names a factory that cannot be imported, called, or does not give an Agent."""


def load_factory(spec: str) -> Factory:
    """The callable `package.module:name` names (the format config.py checks)."""
    module_name, _, attribute = spec.partition(":")
    # As `python -m` and uvicorn's --app-dir do: a module in the directory the server is
    # started from is found, not only installed packages.
    # Appended, not put first: a stray file in that directory named like an installed
    # package (mcp.py, litellm.py) must not replace it for the whole process.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise AgentFactoryError(
            f"AGENT={spec}: cannot import {module_name}: {type(exc).__name__}: {exc}"
        ) from exc
    for name in attribute.split("."):
        if not hasattr(target, name):
            raise AgentFactoryError(f"AGENT={spec}: {module_name} has no {attribute}")
        target = getattr(target, name)
    if not callable(target):
        raise AgentFactoryError(f"AGENT={spec}: {attribute} is not callable")
    factory: Factory = target
    return factory


def build(spec: str, factory: Factory, setup: AgentSetup) -> Agent[Any]:
    """Call the factory; anything but an Agent back is the operator's error, named so."""
    try:
        agent = factory(setup)
    except Exception as exc:
        raise AgentFactoryError(
            f"AGENT={spec}: the factory raised {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(agent, Agent):
        raise AgentFactoryError(
            f"AGENT={spec}: the factory returned {type(agent).__name__}, not an agents.Agent"
        )
    return agent


class FactoryKit(ToolsOnlyKit):
    """An operator's agent, built by their factory for every turn."""

    def __init__(self, spec: str, settings: Settings) -> None:
        self.spec = spec
        self.factory = load_factory(spec)
        self.planner: Planner = offline_planner
        # The check's agent tells which tools a turn may force.
        checked = build(spec, self.factory, AgentSetup.for_check(settings))
        self._tool_names = frozenset(tool.name for tool in checked.tools)

    def build_agent(self, setup: AgentSetup) -> Agent[Any]:
        return build(self.spec, self.factory, setup)

    def tool_names(self) -> frozenset[str]:
        return self._tool_names
