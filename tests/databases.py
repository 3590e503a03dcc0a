"""Throw-away databases for tests: a SQLite file, or a fresh PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from .optional import require

PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("TEST_PG_DB", "test")


async def admin_connection() -> asyncpg.Connection:
    """A connection to the server's admin database (raises when PostgreSQL is down)."""
    return await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB, timeout=5
    )


@asynccontextmanager
async def throwaway_postgres(
    prefix: str, admin: asyncpg.Connection | None = None
) -> AsyncIterator[str]:
    """Create a uniquely named database, yield its plain postgresql:// URL, drop it.

    `admin`, if given, is an open admin connection to create it with (and is closed).
    """
    admin = admin or await admin_connection()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        # The plain form the seeds write; the app must accept it unchanged.
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        admin = await admin_connection()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A throw-away database for one test; skipped (failed in CI) without PostgreSQL."""
    try:
        admin = await admin_connection()
    except (OSError, asyncpg.PostgresError) as exc:
        require(False, f"PostgreSQL unreachable on {PG_HOST}:{PG_PORT}: {exc}")
        raise  # not reached: require skips or fails
    async with throwaway_postgres("ckb_test", admin) as url:
        yield url


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'chatkit.db'}"
