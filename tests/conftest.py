"""Shared fixtures: databases (SQLite file and PostgreSQL), engines, contexts."""

from __future__ import annotations

import os

# Before anything imports litellm or the Agents SDK: no network at import time.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkit_backend.agent.titles import TITLE_PROMPT
from chatkit_backend.config import Settings, load_settings
from chatkit_backend.db import create_engine, migrate

from .databases import postgres_database, sqlite_url
from .live import ChatKitClient, live_server

# Registered as hooks by being here: in CI a skip is a failure (tests/optional.py).
from .optional import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401
from .pgbouncer import PgBouncer
from .scripted_provider import ScriptedProvider, Text


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database as the DATABASE_URL a user would write."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        async with postgres_database() as url:
            yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated async engine on `database_url`."""
    settings = load_settings(database_url=database_url)
    eng = create_engine(settings.async_database_url)
    await migrate(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture(scope="session")
def pgbouncer() -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of the tests' PostgreSQL (tests/pgbouncer.py)."""
    with PgBouncer() as bouncer:
        yield bouncer


@pytest.fixture
def provider() -> Iterator[ScriptedProvider]:
    """The scripted OpenAI-compatible provider; title requests get a fixed title."""
    with ScriptedProvider() as scripted:
        scripted.route(is_title_request, Text("Scripted title"))
        yield scripted


def is_title_request(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or []
    return bool(messages) and messages[0].get("content") == TITLE_PROMPT


# The two ways a server reaches an OpenAI-compatible provider (agent/models.py).
DIRECT = "openai/scripted"  # the OpenAI client, through the Agents SDK's Chat Completions model
VIA_LITELLM = "litellm/openai/scripted"  # LiteLLM, as for Gemini, Anthropic and the rest


def scripted_settings(
    database_url: str, provider: ScriptedProvider, *, model: str = DIRECT, **extra: Any
) -> Settings:
    """Settings for a server answering with the scripted provider."""
    return load_settings(
        database_url=database_url,
        model=model,
        model_api_base=provider.base_url,
        model_api_key="test-key",
        **extra,
    )


@pytest.fixture
def model_name() -> str:
    """MODEL of the live server; parametrize it to run a module on both routes."""
    return DIRECT


@pytest.fixture
def server_options() -> dict[str, Any]:
    """Settings a test wants different from the defaults (override, or parametrize it)."""
    return {}


@pytest.fixture
def server_url(
    database_url: str, provider: ScriptedProvider, model_name: str, server_options: dict[str, Any]
) -> Iterator[str]:
    """A live server on 127.0.0.1 whose model is the scripted provider."""
    settings = scripted_settings(database_url, provider, model=model_name, **server_options)
    with live_server(settings) as url:
        yield url


@pytest.fixture
async def client(server_url: str) -> AsyncIterator[ChatKitClient]:
    chat = ChatKitClient(server_url)
    try:
        yield chat
    finally:
        await chat.aclose()
