"""Task numbers are never handed out twice, so "#8" in old chat history means one task only."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkit_backend.config import load_settings
from chatkit_backend.context import RequestContext
from chatkit_backend.db import create_engine, migrate
from chatkit_backend.tasks.schemas import TaskCreate
from chatkit_backend.tasks.service import TaskService

from ..databases import sqlite_url

ALICE = RequestContext(user_id="alice")
BOB = RequestContext(user_id="bob")


async def add(service: TaskService, title: str, ctx: RequestContext = ALICE) -> int:
    return (await service.create(ctx, TaskCreate(title=title))).id


async def test_deleting_the_newest_task_does_not_free_its_number(engine: AsyncEngine) -> None:
    service = TaskService(engine)
    first = await add(service, "one")
    newest = await add(service, "two")
    await service.delete(ALICE, newest)

    again = await add(service, "three")
    assert again > newest

    # Not even when the list is empty again, nor for another user.
    await service.delete(ALICE, first)
    await service.delete(ALICE, again)
    assert await add(service, "four", BOB) > again


async def test_a_restart_does_not_free_the_number_either(database_url: str) -> None:
    url = load_settings(database_url=database_url).async_database_url
    engine = create_engine(url)
    try:
        await migrate(engine)
        service = TaskService(engine)
        await add(service, "one")
        newest = await add(service, "two")
        await service.delete(ALICE, newest)
    finally:
        await engine.dispose()

    engine = create_engine(url)
    try:
        assert await add(TaskService(engine), "three") > newest
    finally:
        await engine.dispose()


def _alembic(connection: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", "chatkit_backend:migrations")
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
    connection.commit()


def _indexes(connection: Connection) -> dict[str, list[str | None]]:
    return {
        index["name"] or "": index["column_names"]
        for index in inspect(connection).get_indexes("tasks")
    }


async def test_the_sqlite_migration_keeps_tasks_and_indexes(tmp_path: Path) -> None:
    """A database made before task numbers were kept: its tasks survive the table rebuild."""
    engine = create_engine(load_settings(database_url=sqlite_url(tmp_path)).async_database_url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_alembic, "0003")
            before = await conn.run_sync(_indexes)
        service = TaskService(engine)
        kept = [await add(service, title) for title in ("one", "two", "three")]
        await service.delete(ALICE, kept.pop())
        stored = [(t.id, t.title) for t in (await service.list(ALICE)).items]

        await migrate(engine)

        assert [(t.id, t.title) for t in (await service.list(ALICE)).items] == stored
        async with engine.connect() as conn:
            assert await conn.run_sync(_indexes) == before
            ddl = await conn.scalar(text("SELECT sql FROM sqlite_master WHERE name = 'tasks'"))
        assert "AUTOINCREMENT" in str(ddl)
        # The numbers still in use stay taken after the rebuild.
        assert await add(service, "four") > max(kept)
    finally:
        await engine.dispose()
