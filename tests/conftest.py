"""Shared fixtures: databases (SQLite file and PostgreSQL), engines, contexts."""

from __future__ import annotations

import os

# Before anything imports litellm or the Agents SDK: no network at import time.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkit_backend.config import load_settings
from chatkit_backend.db import create_engine, migrate

from .databases import postgres_database, sqlite_url


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
