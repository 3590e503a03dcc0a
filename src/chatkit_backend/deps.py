"""FastAPI dependencies that hand the app's shared objects to routes (no globals)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from .config import Settings

if TYPE_CHECKING:
    from .chat.runtime import ChatRuntime
    from .chat.store import SQLStore
    from .runs.admission import Admission
    from .runs.registry import RunRegistry


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


def get_store(request: Request) -> SQLStore:
    store: SQLStore = request.app.state.store
    return store


def get_chat_runtime(request: Request) -> ChatRuntime:
    runtime: ChatRuntime = request.app.state.chat
    return runtime


def get_admission(request: Request) -> Admission:
    admission: Admission = request.app.state.admission
    return admission


def get_run_registry(request: Request) -> RunRegistry:
    registry: RunRegistry = request.app.state.admission.registry
    return registry
